"""A fingerprint of the data a model was trained on: rows and a hash of each split.

Computed in `setup` from the split arrays (inputs as stored, labels as int64) of in-memory
datamodules, and from the labels and the sample list (file paths) of dataset-backed ones; saved in
every checkpoint (the datamodule's `state_dict`). `eval.py`
rebuilds the split from the checkpoint's data config and compares: if the file changed (rows
added, removed or reordered), the rebuilt "test" split may hold rows the model trained on, so the
evaluation is refused unless the user names a test file or says `allow_changed_data=true`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SPLITS = ("train", "val", "test")
STATE_KEY = "data_fingerprint"


def split_fingerprint(splits: Any) -> dict[str, dict[str, Any]]:
    """{split: {"rows": n, "sha256": hex}} of `splits.x_<split>` / `splits.y_<split>` (any dtype)."""
    out: dict[str, dict[str, Any]] = {}
    for name in SPLITS:
        x = np.asarray(getattr(splits, f"x_{name}"))
        y = np.ascontiguousarray(getattr(splits, f"y_{name}"), dtype=np.int64)
        digest = hashlib.sha256()
        digest.update(f"{x.dtype}{x.shape}".encode())
        if x.dtype == object:  # e.g. file names: hash their text, not the object pointers
            digest.update("\n".join(map(str, x.ravel())).encode())
        else:
            digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(y.tobytes())
        out[name] = {"rows": int(len(y)), "sha256": digest.hexdigest()}
    return out


SAMPLE_LISTS = ("paths", "files", "samples", "imgs")  # torchvision's datasets keep `samples`/`imgs`


def sample_list(dataset: Any) -> list[str] | None:
    """What names each sample of a per-sample dataset (e.g. its file paths), if it keeps a list of
    them; None otherwise. Read from the list, never by loading a sample."""
    from torch.utils.data import ConcatDataset, Subset

    if isinstance(dataset, Subset):
        parent = sample_list(dataset.dataset)
        return None if parent is None else [parent[int(i)] for i in dataset.indices]
    if isinstance(dataset, ConcatDataset):
        parts = [sample_list(part) for part in dataset.datasets]
        return None if any(p is None for p in parts) else [item for part in parts for item in part]
    for name in SAMPLE_LISTS:
        value = getattr(dataset, name, None)
        if isinstance(value, (list, tuple)) and len(value) == len(dataset):
            return [str(item[0] if isinstance(item, tuple) else item) for item in value]
    return None


def saved_fingerprint(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fingerprint Lightning saved with the datamodule's state (under the datamodule's class name)."""
    for value in checkpoint.values():
        if isinstance(value, Mapping) and isinstance(value.get(STATE_KEY), Mapping):
            return dict(value[STATE_KEY])
    return None


def changed_splits(
    saved: Mapping[str, Any], now: Mapping[str, Any], names: Sequence[str] = SPLITS
) -> list[str]:
    """Descriptions of the splits whose rows or content differ, e.g. "test (45 rows, was 45)"."""
    changes = []
    for name in names:
        before, after = saved.get(name), now.get(name)
        if before is None or after is None:
            continue
        if before != after:
            changes.append(f"{name} ({after['rows']} rows, was {before['rows']})")
    return changes
