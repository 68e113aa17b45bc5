"""Probabilities for the real class frequencies: prior correction, then temperature scaling.

Training with class weights, a prior-corrected loss or a class-balanced sampler teaches the model a
different class prior than the data's, so its softmax overstates the rare classes. The calibrated
probabilities are `softmax(z / T + b)`:

- `b` undoes the prior the training changed. Closed form (Bayes' rule with the training prior):
  weighted cross entropy with weights w learns p_w(c|x) ∝ w_c p(c|x), so b = -log w; the loss adds
  the shift it declares (`ImbalanceLoss.prior_shift`: 0 for cross entropy, tau log pi for logit
  adjustment, which learns z + tau log pi ≈ log p(c|x)); a sampler with p(class) ∝ n^q shows the
  prior pi^q, so b += (1 - q) log pi. A loss that declares no closed form (None, the default of a
  fork's loss) gets `b` fitted on validation together with T (bias + temperature scaling).
- The closed form holds for a model that reaches the weighted optimum. A network that fits its
  training split closely (few rare samples, many epochs) loses much of the weights' effect (Byrd &
  Lipton 2019), and the closed form then over-corrects. `calibration=auto` therefore fits both on
  validation, the closed form (1 parameter: T) and the fitted bias (C parameters, started from the
  closed form), and keeps the one with the lower BIC (validation NLL + parameters/2 * log n): the
  closed form unless validation clearly says the model departed from it. `closed_form` and
  `fitted` force one of them.
- `T` (temperature) is fitted on the validation logits by minimising the negative log-likelihood
  with `b` fixed, so T restores the scale of the logits and b then shifts them in log-probability
  units (dividing b by T would weaken the prior correction).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from imbalanced.longtail.losses import ImbalanceLoss, log_prior

CALIBRATIONS = ("auto", "closed_form", "fitted", "none")
TEMPERATURE_RANGE = (0.05, 20.0)


def closed_form_prior_shift(
    loss: ImbalanceLoss | None,
    class_weights: Tensor,
    class_counts: Tensor,
    sampler_q: float | None = None,
) -> Tensor | None:
    """The bias b that maps the trained logits back to the data's prior; None when not known.

    `loss` is the training criterion; its declared `prior_shift` says what it did to the prior.
    """
    weights = class_weights.detach().double().cpu()
    if loss is None or not bool((weights > 0).all()):
        return None  # unknown loss, or a class weighted 0 was never learned: nothing to undo in closed form
    log_pi = log_prior(class_counts.detach().cpu()).double()
    declared = loss.prior_shift(log_pi)
    if declared is None:
        return None
    shift = declared.detach().double().cpu() - weights.log()
    if sampler_q is not None:
        shift = shift + (1.0 - float(sampler_q)) * log_pi
    return shift - shift.mean()  # softmax ignores a common offset


@contextmanager
def _one_thread() -> Iterator[None]:
    """torch's CPU thread pool for the duration of a fit on a few small tensors: one thread.

    Each of L-BFGS's hundreds of tiny operations wakes every intra-op thread; on busy cores
    (DataLoader workers decoding images, other jobs) each wake-up waits for a time slice: on a busy
    2-core machine a fit on 11 validation rows took about 1 s with 2 threads, 0.14 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_calibration(
    logits: Tensor, labels: Tensor, shift: Tensor | None, max_iter: int = 100, start: Tensor | None = None
) -> tuple[float, Tensor, float]:
    """Fit T (and b when `shift` is None, from `start`) on validation logits by NLL; returns
    (T, b, mean NLL).

    Deterministic (float64 on the CPU, L-BFGS), so every DDP rank fitting the same gathered logits
    gets the same result.
    """
    with _one_thread():
        return _fit_calibration(logits, labels, shift, max_iter, start)


def _fit_calibration(
    logits: Tensor, labels: Tensor, shift: Tensor | None, max_iter: int, start: Tensor | None
) -> tuple[float, Tensor, float]:
    z = logits.detach().double().cpu()
    y = labels.detach().long().cpu()
    num_classes = z.shape[1]
    log_t = torch.zeros((), dtype=torch.float64)
    params = [log_t]
    if shift is None:
        initial = torch.zeros(num_classes, dtype=torch.float64) if start is None else start.double().cpu()
        free_bias = (initial[1:] - initial[0]).clone()
        params.append(free_bias)
    low, high = (math.log(v) for v in TEMPERATURE_RANGE)
    rows = torch.arange(len(y))

    def temperature() -> float:  # the clamp to TEMPERATURE_RANGE
        return math.exp(min(max(float(log_t), low), high))

    def bias() -> Tensor:
        if shift is not None:
            return shift.double()
        return torch.cat([torch.zeros(1, dtype=torch.float64), free_bias])

    def nll_and_gradients() -> Tensor:
        """The mean NLL, with its gradients written to the parameters' `.grad` by hand: autograd's
        bookkeeping cost more than the arithmetic on these small tensors, at every L-BFGS step."""
        scaled = z / temperature()
        log_p = torch.log_softmax(scaled + bias(), dim=1)
        loss = -log_p[rows, y].mean()
        residual = log_p.exp_()  # d loss / d logits = (softmax - onehot) / n
        residual[rows, y] -= 1.0
        residual /= len(y)
        inside = low <= float(log_t) <= high  # the clamp passes no gradient outside the range
        log_t.grad = -(residual * scaled).sum() if inside else torch.zeros((), dtype=torch.float64)
        if shift is None:
            free_bias.grad = residual.sum(0)[1:]
        return loss

    optimizer = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")
    initial_nll = nll_and_gradients().item()
    optimizer.step(nll_and_gradients)
    final = nll_and_gradients()
    if not torch.isfinite(final) or final.item() > initial_nll:  # never worse than the start
        log_t.zero_()
        if shift is None:
            free_bias.copy_(initial[1:] - initial[0])
        final = nll_and_gradients()
    fitted = bias().clone()
    return temperature(), fitted - fitted.mean(), float(final)


def fit_prior_and_temperature(
    logits: Tensor, labels: Tensor, closed_form: Tensor | None, mode: str = "auto"
) -> tuple[str, float, Tensor]:
    """(method, T, b) for `calibration=mode` (auto | closed_form | fitted); see the module doc."""
    n, num_classes = logits.shape
    candidates: dict[str, tuple[float, Tensor, float]] = {}
    if closed_form is not None and mode in ("auto", "closed_form"):
        candidates["closed_form"] = fit_calibration(logits, labels, closed_form)
    if mode in ("auto", "fitted") or closed_form is None:
        candidates["fitted"] = fit_calibration(logits, labels, None, start=closed_form)
    parameters = {"closed_form": 1, "fitted": num_classes}

    def bic(method: str) -> float:
        return n * candidates[method][2] + 0.5 * parameters[method] * math.log(max(n, 1))

    method = min(candidates, key=bic)
    temperature, shift, _ = candidates[method]
    return method, temperature, shift


def calibrated_logits(logits: Tensor, temperature: float, shift: Tensor) -> Tensor:
    """z / T + b (float32), whose softmax is the calibrated probability."""
    logits = logits.float()
    return logits / temperature + shift.to(device=logits.device, dtype=logits.dtype)
