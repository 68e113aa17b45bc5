"""`model=torchvision`: any `torchvision.models` classification architecture by name.

torchvision is the `vision` extra, imported when this backbone is built. The architecture is built
with `num_classes` and no weights (nothing is downloaded); `weights=FILE` names a state_dict file of
the user's, loaded by `load_initial_weights()` when training starts (the train task calls it; a
checkpoint holds the trained weights, so eval/predict never read the file). The file is read with
`weights_only=True`; layers whose shape differs (a 1000-class head for a 5-class problem) keep their
fresh initialization, and keys the architecture does not have are an error.

Inputs with other than 3 channels: 1 channel is repeated to 3 (pretrained filters still apply);
other counts go through a learned 1x1 convolution to 3 channels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from imbalanced.errors import UserError
from imbalanced.value_checks import check_file, check_int, fail

log = logging.getLogger(__name__)


def _classification_models() -> list[str]:
    try:
        import torchvision.models as models
    except (ImportError, RuntimeError) as error:  # RuntimeError: a torchvision built for another torch
        raise UserError(
            f"model=torchvision needs torchvision installed for this torch ({error}); install the "
            "`vision` extra together with torch, e.g. pip install torch torchvision && "
            "pip install -e '.[vision]'"
        ) from None
    return sorted(models.list_models(module=models))


class TorchvisionBackbone(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        arch: str = "resnet18",
        weights: str | None = None,
        options: Mapping[str, Any] | None = None,
        image_size: Sequence[int] | int | None = None,
    ) -> None:
        super().__init__()
        check_int("model.backbone.in_channels", in_channels, minimum=1)
        names = _classification_models()
        if arch not in names:
            close = [n for n in names if str(arch).lower()[:4] in n][:8] or names[:8]
            raise fail(
                "model.backbone.arch",
                arch,
                f"a torchvision.models classification architecture, e.g. {', '.join(close)} "
                f"({len(names)} in all: torchvision.models.list_models())",
            )
        import torchvision.models as models

        kwargs = dict(options or {})
        if image_size is not None and arch.startswith("vit_"):  # ViTs are built for one input size
            size = [image_size] * 2 if isinstance(image_size, int) else list(image_size)
            if size[0] != size[1]:
                raise UserError(f"model.backbone.arch={arch} needs square images; set data.image_size=N")
            kwargs.setdefault("image_size", int(size[0]))
        try:
            self.net = models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
        except (TypeError, ValueError) as error:
            raise UserError(
                f"model.backbone.arch={arch} cannot be built with options {kwargs}: {error}"
            ) from None
        self.adapter: nn.Module | None = (
            None if in_channels in (1, 3) else nn.Conv2d(in_channels, 3, kernel_size=1)
        )
        self.in_channels = int(in_channels)
        self.weights = weights

    def forward(self, x: Tensor) -> Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        elif self.adapter is not None:
            x = self.adapter(x)
        out = self.net(x)
        # a few architectures (googlenet, inception_v3) return a named tuple while training
        return out.logits if hasattr(out, "logits") else out

    def load_initial_weights(self) -> None:
        """Load `weights` (the architecture's state_dict, possibly with another head) into the net."""
        if self.weights is None:
            return
        # checked here, not in __init__: a checkpoint rebuilds this backbone without the file
        check_file("model.backbone.weights", self.weights)
        try:
            state = torch.load(Path(self.weights).expanduser(), map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - not a torch file, or Python objects beyond tensors
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise UserError(
                f"model.backbone.weights={self.weights} is not readable as tensors with "
                f"weights_only=True ({first})"
            ) from None
        if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]
        if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
            raise UserError(f"model.backbone.weights={self.weights} is not a state_dict (a dict of tensors)")
        own = self.net.state_dict()
        unknown = [k for k in state if k not in own]
        if unknown:
            raise UserError(
                f"model.backbone.weights={self.weights} does not fit torchvision's architecture: "
                f"{len(unknown)} key(s) it lacks, e.g. {unknown[:3]}"
            )
        kept = [k for k, v in state.items() if own[k].shape != v.shape]
        self.net.load_state_dict({k: v for k, v in state.items() if k not in kept}, strict=False)
        missing = [k for k in own if k not in state]
        log.info(
            "loaded %s: %d tensors; freshly initialized: %s",
            self.weights,
            len(state) - len(kept),
            ", ".join(kept + missing) or "none",
        )
