"""Losses for imbalanced classification.

Every loss takes logits and integer targets plus the LightningModule's `class_weights` and
`class_counts` buffers, and reduces like PyTorch's own losses:

- `mean`: sum_i w_{y_i} * l_i / sum_i w_{y_i}  (what `F.cross_entropy(weight=w)` does: it divides by
  the summed weights of the batch's targets, not by the batch size),
- `sum`: sum_i w_{y_i} * l_i,
- `none`: the per-sample weighted losses w_{y_i} * l_i; the LightningModule tracks them per class
  and turns them into the training scalar with `normalize(...)`: `weight_sum` (default, equals
  `mean`) or `batch_size` (divides by the number of samples).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imbalanced.errors import UserError
from imbalanced.value_checks import check_choice, check_number

REDUCTIONS = ("mean", "sum", "none")
NORMALIZATIONS = ("weight_sum", "batch_size")
# the loss of a model given no `loss` config
DEFAULT_LOSS = {"_target_": "imbalanced.longtail.losses.CrossEntropy", "reduction": "mean"}


class ImbalanceLoss(nn.Module):
    """Base class: subclasses implement `per_sample` (unweighted per-sample losses).

    Each loss also declares how it treats the class prior. Calibration, `class_weights: auto`, the
    double-correction warnings and the two-class check read these declarations and never a loss's
    class name, so a fork's loss declares them too (the defaults are the safe ones):

    - `prior_shift(log_prior) -> Tensor | None`: the bias, in log-probability units, that maps the
      logits a model learns with this loss (and uniform class weights) back to the data's prior:
      softmax(z + shift) estimates p(c|x). `log_prior` is log(n_c / N) of the training split.
      0 for plain cross entropy, tau * log_prior for CE(z + tau * log_prior). None (the default):
      not known in closed form, so calibration fits the bias on validation.
    - `corrects_prior` (bool): the loss itself corrects for the class prior, so re-weighting on top
      of it corrects twice: `class_weights: auto` picks no weights, and an explicit re-weighting
      strategy is warned about. Default False.
    - `binary_only` (bool): the loss needs exactly two classes (refused on other data before
      training). Default False.
    """

    binary_only: bool = False

    def __init__(self, reduction: str = "mean", normalize: str = "weight_sum") -> None:
        super().__init__()
        check_choice("loss.reduction", reduction, REDUCTIONS)
        check_choice("loss.normalize", normalize, NORMALIZATIONS)
        self.reduction = reduction
        self.normalization = normalize

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        raise NotImplementedError

    def prior_shift(self, log_prior: Tensor) -> Tensor | None:
        """The bias that undoes the prior this loss builds into the logits; None: unknown."""
        return None

    @property
    def corrects_prior(self) -> bool:
        """Whether the loss itself corrects for the class prior (no re-weighting needed)."""
        return False

    def forward(self, logits: Tensor, targets: Tensor, class_weights: Tensor, class_counts: Tensor) -> Tensor:
        sample_weights = class_weights[targets]
        weighted = self.per_sample(logits, targets, class_counts) * sample_weights
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / _nonzero(sample_weights.sum())

    def normalize(self, weighted: Tensor, targets: Tensor, class_weights: Tensor) -> Tensor:
        """Turn `reduction="none"` output into a scalar with the configured normalization."""
        if self.normalization == "batch_size":
            return weighted.sum() / weighted.numel()
        return weighted.sum() / _nonzero(class_weights[targets].sum())


def _nonzero(total: Tensor) -> Tensor:
    """A batch whose targets all have class weight 0 (manual weights) has weight sum 0: its weighted
    loss is 0 and contributes nothing, instead of 0/0 = NaN."""
    return torch.where(total > 0, total, torch.ones_like(total))


class CrossEntropy(ImbalanceLoss):
    """(Weighted) cross entropy; `mean` and `sum` use PyTorch's fused kernel."""

    def prior_shift(self, log_prior: Tensor) -> Tensor:
        return torch.zeros_like(log_prior)  # learns the training prior as it is

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, reduction="none")

    def forward(self, logits: Tensor, targets: Tensor, class_weights: Tensor, class_counts: Tensor) -> Tensor:
        if self.reduction == "none":
            return super().forward(logits, targets, class_weights, class_counts)
        # Logits may be bf16 under mixed precision; the weights stay float32.
        total = F.cross_entropy(logits.float(), targets, weight=class_weights.float(), reduction="sum")
        if self.reduction == "sum":
            return total
        # = PyTorch's weighted mean, without its 0/0 when every target of the batch has weight 0
        return total / _nonzero(class_weights.float()[targets].sum())


class BinaryCrossEntropy(ImbalanceLoss):
    """`loss=bce`: BCEWithLogits on the margin z_1 - z_0 of a two-class head, pos_weight = w_1 / w_0.

    Per sample, w_0 * BCE(z_1 - z_0, y; pos_weight=w_1/w_0) = w_y * CE(z, y) (softmax over two
    logits is the sigmoid of their difference), so with this module's reductions (`mean` divides by
    the summed weights, like every loss here) it equals two-class weighted cross entropy and takes
    the same decisions. PyTorch's own `BCEWithLogitsLoss(pos_weight)` divides by the batch size
    instead: the same loss up to a positive factor per batch, with the same minimiser.
    """

    binary_only = True

    def prior_shift(self, log_prior: Tensor) -> Tensor:
        return torch.zeros_like(log_prior)  # two-class cross entropy: the training prior as it is

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        margin = _two_class_margin(logits)
        return F.binary_cross_entropy_with_logits(margin, targets.float(), reduction="none")

    def forward(self, logits: Tensor, targets: Tensor, class_weights: Tensor, class_counts: Tensor) -> Tensor:
        weights = class_weights.float()
        margin = _two_class_margin(logits)
        weighted = weights[0] * F.binary_cross_entropy_with_logits(
            margin, targets.float(), pos_weight=weights[1] / weights[0], reduction="none"
        )
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / weights[targets].sum()


def _two_class_margin(logits: Tensor) -> Tensor:
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise UserError(f"loss=bce needs a two-class model; the logits have shape {tuple(logits.shape)}")
    logits = logits.float()
    return logits[:, 1] - logits[:, 0]


def per_class_mean(values: Tensor, targets: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Sums and counts of `values` per target class (for per-class loss tracking)."""
    sums = torch.zeros(num_classes, dtype=torch.float32, device=values.device)
    sums.index_add_(0, targets, values.detach().float())
    counts = torch.bincount(targets, minlength=num_classes).float()
    return sums, counts


# ---- long-tail losses --------------------------------------------------------------------
def log_prior(class_counts: Tensor) -> Tensor:
    """log(pi_c) with pi_c = n_c / N from the training counts (float32).

    A class with no training sample is counted as 1 so its log prior stays finite (it would
    otherwise become -inf in the losses and +inf after post-hoc adjustment).
    """
    counts = class_counts.float().clamp_min(1.0)
    if not bool((class_counts.float() > 0).any()):
        raise RuntimeError(
            "class_counts are all zero: the module was not set up from data (or loaded from a "
            "checkpoint without counts); logit adjustment needs the training counts"
        )
    return counts.log() - counts.sum().log()


class Focal(ImbalanceLoss):
    """Focal loss (Lin et al. 2017): (1 - p_t)^gamma * CE. gamma=0 is cross entropy.

    The class weights act as the paper's alpha_t when a `class_weights` strategy is set.
    """

    def __init__(self, gamma: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_number("loss.gamma", gamma, low=0.0)  # 0 is plain cross entropy
        self.gamma = float(gamma)

    def prior_shift(self, log_prior: Tensor) -> Tensor | None:
        # gamma=0 is cross entropy; gamma > 0 reshapes the probabilities in no closed form
        return torch.zeros_like(log_prior) if self.gamma == 0 else None

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
        if self.gamma == 0:
            return -log_p
        return -((1.0 - log_p.exp()).clamp_min(0.0) ** self.gamma) * log_p


class LogitAdjusted(ImbalanceLoss):
    """Logit-adjusted cross entropy (Menon et al. 2021): CE(logits + tau * log(pi), y).

    pi are the training priors n_c / N from the `class_counts` buffer. tau=0 is cross entropy,
    tau=1 is balanced softmax. At prediction time the raw logits are used (no adjustment).
    """

    def __init__(self, tau: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_number("loss.tau", tau, low=0.0)  # 0 is plain cross entropy, 1 the paper's
        self.tau = float(tau)
        self._prior: Tensor | None = None
        self._prior_key: tuple | None = None

    def prior_shift(self, log_prior: Tensor) -> Tensor:
        # the model learns z with z + tau * log(pi) ≈ log p(c|x)
        return self.tau * log_prior

    @property
    def corrects_prior(self) -> bool:
        return self.tau > 0

    def _log_prior(self, class_counts: Tensor, device: torch.device) -> Tensor:
        # The counts change only when the buffer is filled (setup, checkpoint load): recompute then,
        # not every step, since log_prior's check reads a value back from the device.
        key = (class_counts.data_ptr(), class_counts._version, device)
        if key != self._prior_key:
            self._prior, self._prior_key = log_prior(class_counts).to(device), key
        return self._prior

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        logits = logits.float()
        if self.tau:
            logits = logits + self.tau * self._log_prior(class_counts, logits.device)
        return F.cross_entropy(logits, targets, reduction="none")


class BalancedSoftmax(LogitAdjusted):
    """Balanced softmax (Ren et al. 2020): CE(logits + log(n_c), y), i.e. logit adjustment, tau=1."""

    def __init__(self, **kwargs) -> None:
        super().__init__(tau=1.0, **kwargs)


def ldam_margins(class_counts: Tensor, max_margin: float = 0.5) -> Tensor:
    """LDAM margins (Cao et al. 2019): m_c = C / n_c^(1/4), scaled so the largest equals max_margin."""
    raw = 1.0 / class_counts.float().clamp_min(1.0) ** 0.25
    return raw * (max_margin / raw.max())


class LDAM(ImbalanceLoss):
    """Label-distribution-aware margin loss (Cao et al. 2019): CE(s * (z - m_y * onehot(y)), y).

    The paper (and its official code) applies the margin to cosine logits of a normalized linear
    layer, z in [-1, 1], then scales by s. Use it with `model=mlp_cosine` (a `NormedLinear` head)
    for that exact setting; with a plain linear head the margin acts on unbounded logits and
    `scale` should be lowered (e.g. loss.scale=1). Combine with DRW (`drw_start_epoch`) for LDAM-DRW.
    """

    def __init__(self, max_margin: float = 0.5, scale: float = 30.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_number("loss.max_margin", max_margin, low=0.0, low_open=True)  # the paper: 0.5
        check_number("loss.scale", scale, low=0.0, low_open=True)  # the paper: 30, with cosine logits
        self.max_margin = float(max_margin)
        self.scale = float(scale)

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        logits = logits.float()
        margins = ldam_margins(class_counts.to(logits.device), self.max_margin)[targets]
        shifted = logits.scatter_add(1, targets[:, None], -margins[:, None])
        return F.cross_entropy(self.scale * shifted, targets, reduction="none")


def posthoc_adjust(logits: Tensor, class_counts: Tensor, tau: float) -> Tensor:
    """Post-hoc logit adjustment (Menon et al. 2021): logits - tau * log(pi). tau=0 returns logits."""
    if not tau:
        return logits
    return logits - tau * log_prior(class_counts).to(device=logits.device, dtype=logits.dtype)


def build_loss(config: Mapping[str, Any] | None) -> ImbalanceLoss:
    """The loss a `loss` config describes (the model's default for none); its constructor checks
    the settings.

    Built with the class itself rather than Hydra's `instantiate`, so a refused setting raises the
    constructor's own one-line UserError.
    """
    from hydra.utils import get_class

    config = config or DEFAULT_LOSS
    target = config.get("_target_")
    if not target:
        raise UserError(
            "loss has no _target_; allowed: a loss=OPTION of configs/loss/ or a "
            "loss._target_ naming an ImbalanceLoss subclass"
        )
    loss = get_class(str(target))(**{k: v for k, v in config.items() if not str(k).startswith("_")})
    if not isinstance(loss, ImbalanceLoss):
        raise UserError(
            f"loss._target_={target} is not an ImbalanceLoss; allowed: a subclass of "
            "imbalanced.longtail.losses.ImbalanceLoss (it declares how it treats the prior)"
        )
    return loss
