"""Probabilities for the real class frequencies: prior correction, then temperature scaling.

Training with class weights, a prior-corrected loss or a class-balanced sampler teaches the model a
different class prior than the data's, so its softmax overstates the rare classes. The calibrated
probabilities are `softmax(z / T + b)`:

- `b` undoes the prior the training changed. Closed form (Bayes' rule with the training prior):
  weighted cross entropy with weights w learns p_w(c|x) ∝ w_c p(c|x), so b = -log w; logit
  adjustment with tau learns z + tau log pi ≈ log p(c|x), so b += tau log pi (balanced softmax:
  tau = 1); a sampler with p(class) ∝ n^q shows the prior pi^q, so b += (1 - q) log pi. Losses
  without a closed form (focal with gamma > 0, LDAM, a fork's own loss) get `b` fitted on validation
  together with T (bias + temperature scaling).
- `T` (temperature) is fitted on the validation logits by minimising the negative log-likelihood
  with `b` fixed, so T restores the scale of the logits and b then shifts them in log-probability
  units (dividing b by T would weaken the prior correction).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from imbalanced.imbalance.losses import log_prior

CALIBRATIONS = ("auto", "none")
TEMPERATURE_RANGE = (0.05, 20.0)
# losses whose effect on the prior is known in closed form
PLAIN_LOSSES = ("CrossEntropy", "BinaryCrossEntropy")
ADJUSTED_LOSSES = ("LogitAdjusted", "BalancedSoftmax")


def _loss_name(loss_config: Mapping[str, Any] | None) -> str:
    return str((loss_config or {}).get("_target_", "")).rsplit(".", 1)[-1]


def closed_form_prior_shift(
    loss_config: Mapping[str, Any] | None,
    class_weights: Tensor,
    class_counts: Tensor,
    sampler_q: float | None = None,
) -> Tensor | None:
    """The bias b that maps the trained logits back to the data's prior; None when not known."""
    name = _loss_name(loss_config)
    settings = loss_config or {}
    weights = class_weights.detach().double().cpu()
    if not bool((weights > 0).all()):
        return None  # a class weighted 0 was never learned: nothing to undo in closed form
    log_pi = log_prior(class_counts.detach().cpu()).double()
    shift = -weights.log()
    if name in PLAIN_LOSSES or (name == "Focal" and float(settings.get("gamma", 2.0)) == 0.0):
        pass
    elif name == "BalancedSoftmax":
        shift = shift + log_pi
    elif name == "LogitAdjusted":
        shift = shift + float(settings.get("tau", 1.0)) * log_pi
    else:
        return None
    if sampler_q is not None:
        shift = shift + (1.0 - float(sampler_q)) * log_pi
    return shift - shift.mean()  # softmax ignores a common offset


def fit_calibration(
    logits: Tensor, labels: Tensor, shift: Tensor | None, max_iter: int = 100
) -> tuple[float, Tensor]:
    """Fit T (and b when `shift` is None) on validation logits by NLL; returns (T, b).

    Deterministic (float64 on the CPU, L-BFGS), so every DDP rank fitting the same gathered logits
    gets the same result.
    """
    z = logits.detach().double().cpu()
    y = labels.detach().long().cpu()
    num_classes = z.shape[1]
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    params = [log_t]
    if shift is None:
        free_bias = torch.zeros(num_classes - 1, dtype=torch.float64, requires_grad=True)
        params.append(free_bias)
    low, high = (torch.tensor(v, dtype=torch.float64).log() for v in TEMPERATURE_RANGE)

    def bias() -> Tensor:
        if shift is not None:
            return shift.double()
        return torch.cat([torch.zeros(1, dtype=torch.float64), free_bias])

    def nll() -> Tensor:
        return F.cross_entropy(z / log_t.clamp(low, high).exp() + bias(), y)

    optimizer = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    start = nll().item()
    optimizer.step(closure)
    with torch.no_grad():
        if not torch.isfinite(nll()) or nll().item() > start:  # never worse than T=1 with b
            log_t.zero_()
            if shift is None:
                free_bias.zero_()
        temperature = float(log_t.clamp(low, high).exp())
        fitted = bias().detach().clone()
    return temperature, fitted - fitted.mean()


def calibrated_logits(logits: Tensor, temperature: float, shift: Tensor) -> Tensor:
    """z / T + b (float32), whose softmax is the calibrated probability."""
    logits = logits.float()
    return logits / temperature + shift.to(device=logits.device, dtype=logits.dtype)
