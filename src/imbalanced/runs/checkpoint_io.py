"""Checkpoints written like every other output: beside their target, fsynced, renamed.

Lightning's `TorchCheckpointIO` saves through fsspec's transaction, which writes the temporary file
in the system temp folder and then moves it: across file systems that move is a copy, so a full
disk mid-copy leaves a cut-off `last.ckpt` that no longer loads. Here a local checkpoint is
serialized in memory and written with `atomic_write` (runs/atomic_writes.py): the temporary file is
in the checkpoint's own folder, and a failed write keeps the previous checkpoint and is one
`error:` line. Remote paths (`s3://...`) keep Lightning's writer.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from imbalanced.runs.atomic_writes import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with atomic_write(str(path).removeprefix("file://"), "wb") as handle:
            handle.write(buffer.getbuffer())
