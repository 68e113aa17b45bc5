"""Rare events: threshold rules, prior correction and temperature, metrics, loss=bce."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from imbalanced.errors import UserError
from imbalanced.longtail.calibration import closed_form_prior_shift, fit_calibration
from imbalanced.longtail.decision import (
    DecisionSettings,
    check_rule_for_data,
    choose_threshold,
    decision_settings,
    positive_class,
)
from imbalanced.longtail.losses import (
    LDAM,
    BalancedSoftmax,
    BinaryCrossEntropy,
    CrossEntropy,
    Focal,
    LogitAdjusted,
    log_prior,
)
from imbalanced.longtail.prediction_policy import PredictionPolicy
from imbalanced.metrics import RareEventMetrics
from imbalanced.reporting.plots import reliability_bins


def _scores(n: int = 400, positives: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=bool)
    labels[:positives] = True
    margins = rng.normal(size=n) + 2.0 * labels
    return np.round(margins, 2), labels  # rounded: ties between samples are exercised too


def _brute_force(margins: np.ndarray, labels: np.ndarray):
    """Every threshold `margin >= t` over the distinct margins (and 'nothing positive')."""
    rows = []
    for t in [np.inf, *np.unique(margins)]:
        flagged = margins >= t
        tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
        fn = int((~flagged & labels).sum())
        rows.append(
            {
                "t": t,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "precision": tp / (tp + fp) if tp + fp else None,
                "recall": tp / (tp + fn),
                "f1": 2 * tp / (2 * tp + fp + fn),
            }
        )
    return rows


def _flagged_by(choice, margins):
    return margins >= choice.cut


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_rule_picks_the_best_validation_threshold(seed):
    margins, labels = _scores(seed=seed)
    rows = _brute_force(margins, labels)
    settings = DecisionSettings(cost_fn=20.0, cost_fp=1.0)

    best_f1 = choose_threshold(margins, labels, settings, "max_f1")
    assert best_f1.f1 == pytest.approx(max(r["f1"] for r in rows))
    assert f1_score(labels, _flagged_by(best_f1, margins)) == pytest.approx(best_f1.f1)

    cheapest = choose_threshold(margins, labels, settings, "cost")
    assert cheapest.cost == pytest.approx(min(20 * r["fn"] + r["fp"] for r in rows))

    recall_at = choose_threshold(margins, labels, DecisionSettings(target=0.9), "recall_at")
    feasible = [r for r in rows if r["recall"] >= 0.9]
    assert recall_at.recall >= 0.9
    assert recall_at.precision == pytest.approx(max(r["precision"] for r in feasible))
    assert recall_score(labels, _flagged_by(recall_at, margins)) == pytest.approx(recall_at.recall)

    precision_at = choose_threshold(margins, labels, DecisionSettings(target=0.8), "precision_at")
    feasible = [r for r in rows if r["precision"] is not None and r["precision"] >= 0.8]
    assert precision_at.reachable and precision_at.precision >= 0.8
    assert precision_at.recall == pytest.approx(max(r["recall"] for r in feasible))
    assert precision_score(labels, _flagged_by(precision_at, margins)) == pytest.approx(
        precision_at.precision
    )


def test_cuts_lie_between_validation_scores_and_costs_move_them():
    margins, labels = _scores()
    choice = choose_threshold(margins, labels, DecisionSettings(), "max_f1")
    assert not np.isclose(margins, choice.cut).any()  # no validation sample sits on the threshold
    cheap_misses = choose_threshold(margins, labels, DecisionSettings(cost_fn=1, cost_fp=50), "cost")
    costly_misses = choose_threshold(margins, labels, DecisionSettings(cost_fn=50, cost_fp=1), "cost")
    assert costly_misses.cut < cheap_misses.cut  # expensive misses flag more samples


def test_unreachable_operating_point_reports_the_best_reachable():
    labels = np.array([True, False, True, False, False, False])
    margins = np.array([0.9, 1.0, 0.5, 0.4, 0.3, 0.2])  # a negative scores highest
    choice = choose_threshold(margins, labels, DecisionSettings(target=0.95), "precision_at")
    assert not choice.reachable
    assert choice.precision == pytest.approx(2 / 3)
    assert "at most precision 0.6667" in choice.note
    policy = PredictionPolicy(2)
    policy.configure(DecisionSettings(rule="precision_at", target=0.95), "none", None)
    logits = torch.tensor(np.stack([np.zeros(6), margins], axis=1), dtype=torch.float32)
    policy.fit(logits, torch.tensor(labels.astype(int)), torch.tensor([90.0, 10.0]), torch.ones(2), None)
    message = policy.unreachable_message()
    assert message.startswith("decision.rule=precision_at decision.target=0.95 is not reachable")
    assert "\n" not in message
    assert choose_threshold(margins, np.zeros(6, bool), DecisionSettings(), "max_f1") is None


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"rule": "best"}, "decision.rule='best' is invalid; allowed: one of auto, argmax"),
        ({"rule": "cost", "cost_fn": 0}, "decision.cost_fn=0 is invalid; allowed: a finite number > 0"),
        ({"rule": "cost", "cost_fp": -1.0}, "decision.cost_fp=-1.0 is invalid"),
        ({"rule": "recall_at"}, "decision.target=None is invalid for decision.rule=recall_at"),
        ({"rule": "precision_at", "target": 1.5}, "decision.target=1.5 is invalid"),
    ],
)
def test_bad_decision_settings_are_one_line_errors(node, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        decision_settings(node)


def test_rules_checked_against_the_data():
    with pytest.raises(UserError, match="decision.rule=max_f1 needs a binary problem; this data has 5"):
        check_rule_for_data(DecisionSettings(rule="max_f1"), 5, None, 1)
    with pytest.raises(UserError, match="validation split has 0 of 3 samples in the minority class"):
        check_rule_for_data(DecisionSettings(rule="cost"), 2, np.array([0, 0, 0]), 1)
    check_rule_for_data(DecisionSettings(rule="auto"), 5, None, 1)  # auto is argmax for 5 classes
    assert DecisionSettings().resolved_rule(2) == "max_f1"
    assert DecisionSettings().resolved_rule(3) == "argmax"
    assert positive_class([90, 10]) == 1 and positive_class([5, 95]) == 0 and positive_class([4, 4]) == 1


# ---- prior correction ---------------------------------------------------------------------------
COUNTS = torch.tensor([900.0, 90.0, 10.0])


def _intercept_only(loss, weights: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The logits a feature-free model learns under `loss`: its minimiser, by L-BFGS."""
    bias = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.LBFGS([bias], max_iter=200, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = loss(bias.expand(len(labels), 3), labels, weights, COUNTS)
        value.backward()
        return value

    optimizer.step(closure)
    return bias.detach()


def _labels(counts: torch.Tensor) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(3), counts.long())


@pytest.mark.parametrize(
    ("loss", "weights"),
    [
        (CrossEntropy(), 1000.0 / (3 * COUNTS)),  # balanced weights
        (LogitAdjusted(tau=0.5), torch.ones(3)),
        (BalancedSoftmax(), torch.ones(3)),
        (LogitAdjusted(tau=1.0), torch.tensor([1.0, 2.0, 5.0])),
    ],
)
def test_closed_form_correction_recovers_the_data_prior(loss, weights):
    labels = _labels(COUNTS)
    learned = _intercept_only(loss, weights, labels)
    prior = COUNTS / COUNTS.sum()
    assert not torch.allclose(learned.softmax(-1), prior, atol=1e-2)  # training changed the prior
    shift = closed_form_prior_shift(loss, weights, COUNTS)
    torch.testing.assert_close((learned + shift.float()).softmax(-1), prior, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("q", [0.0, 0.5])
def test_closed_form_correction_undoes_class_balanced_sampling(q):
    shown = (COUNTS / COUNTS.sum()) ** q  # a sampler with p(class) ∝ n^q shows the prior pi^q
    sampled = torch.round(shown / shown.sum() * 3000)
    learned = _intercept_only(CrossEntropy(), torch.ones(3), _labels(sampled))
    shift = closed_form_prior_shift(CrossEntropy(), torch.ones(3), COUNTS, sampler_q=q)
    torch.testing.assert_close(
        (learned + shift.float()).softmax(-1), COUNTS / COUNTS.sum(), atol=2e-3, rtol=1e-2
    )


def test_losses_without_closed_form_get_the_prior_fitted():
    assert closed_form_prior_shift(Focal(gamma=2.0), torch.ones(3), COUNTS) is None
    assert closed_form_prior_shift(LDAM(), torch.ones(3), COUNTS) is None
    focal_zero = closed_form_prior_shift(Focal(gamma=0.0), torch.ones(3), COUNTS)
    torch.testing.assert_close(focal_zero, torch.zeros(3, dtype=torch.float64))
    # a model whose logits overstate the rare classes by a constant: the fitted bias undoes it
    generator = torch.Generator().manual_seed(0)
    labels = _labels(COUNTS)
    true_logits = torch.randn(len(labels), 3, generator=generator) * 0.3 + log_prior(COUNTS)
    true_logits[torch.arange(len(labels)), labels] += 1.0
    skewed = true_logits - 2.0 * log_prior(COUNTS)
    temperature, bias, _ = fit_calibration(skewed, labels, None)
    fitted = (skewed / temperature + bias).softmax(-1).mean(0)
    torch.testing.assert_close(fitted.float(), COUNTS / COUNTS.sum(), atol=5e-3, rtol=0.05)


def test_temperature_undoes_overconfidence():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4000, 3, generator=generator) * 2.0
    labels = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)  # calibrated
    temperature, shift, _ = fit_calibration(3.0 * logits, labels, torch.zeros(3, dtype=torch.float64))
    assert temperature == pytest.approx(3.0, rel=0.1)
    torch.testing.assert_close(shift, torch.zeros(3, dtype=torch.float64))


# ---- the policy: probabilities, decisions, thresholds, checkpoint state ---------------------------
def _fitted_binary_policy(
    rule: str = "max_f1", calibration: str = "auto"
) -> tuple[PredictionPolicy, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    labels = (torch.rand(3000, generator=generator) < 0.02).long()
    logits = torch.randn(3000, 2, generator=generator)
    logits[:, 1] += 2.5 * labels + 3.0  # trained with weights: the positive class is overstated
    policy = PredictionPolicy(2)
    policy.configure(DecisionSettings(rule=rule), calibration, None)
    counts, weights = torch.tensor([2940.0, 60.0]), torch.tensor([0.51, 25.0])
    policy.fit(logits, labels, counts, weights, CrossEntropy())
    return policy, counts


@pytest.mark.parametrize("shift", [None, "closed"])
def test_the_fit_stops_where_autograd_sees_a_flat_likelihood(shift):
    # the fit computes its gradients by hand: at its result autograd must find no descent left
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 12, (300,), generator=generator)
    logits = torch.randn(300, 12, generator=generator)
    logits[torch.arange(300), labels] += 3.0
    overconfident = 2.5 * logits
    fixed = None if shift is None else torch.linspace(-1, 1, 12, dtype=torch.float64)
    temperature, bias, nll = fit_calibration(overconfident, labels, fixed)
    log_t = torch.tensor(temperature, dtype=torch.float64).log().requires_grad_(True)
    free = bias.clone().requires_grad_(True)
    loss = F.cross_entropy(overconfident.double() / log_t.exp() + free, labels)
    loss.backward()
    assert loss.item() == pytest.approx(nll, abs=1e-9)
    assert abs(float(log_t.grad)) < 1e-4
    if shift is None:
        assert float(free.grad.abs().max()) < 1e-4


@pytest.mark.parametrize("calibration", ["auto", "none"])
def test_binary_decision_is_the_written_probability_against_the_threshold(calibration):
    policy, counts = _fitted_binary_policy(calibration=calibration)
    assert policy.cut is not None and policy.calibrated() == (calibration == "auto")
    logits = torch.randn(500, 2, generator=torch.Generator().manual_seed(3)) * 3
    probability = policy.probabilities(logits, counts, 0.0)[:, 1]
    decided = policy.decision_logits(logits, counts, 0.0).argmax(-1) == 1
    threshold = policy.threshold(counts, 0.0)
    away = (probability - threshold).abs() > 1e-5  # float32 rounding right at the threshold
    assert torch.equal(decided[away], (probability >= threshold)[away])
    assert decided.any() and not decided.all()


def test_calibration_none_changes_probabilities_not_decisions():
    policy, counts = _fitted_binary_policy()
    logits = torch.randn(200, 2, generator=torch.Generator().manual_seed(4)) * 3
    decided = policy.decision_logits(logits, counts, 0.0).argmax(-1)
    calibrated = policy.probabilities(logits, counts, 0.0)
    policy.calibration = "none"
    torch.testing.assert_close(policy.probabilities(logits, counts, 0.0), logits.softmax(-1))
    assert not torch.allclose(calibrated, logits.softmax(-1))
    assert torch.equal(policy.decision_logits(logits, counts, 0.0).argmax(-1), decided)


def test_threshold_override_and_checkpoint_state_round_trip():
    policy, counts = _fitted_binary_policy()
    policy.set_threshold(0.3, counts, 0.0)
    assert policy.threshold(counts, 0.0) == pytest.approx(0.3)
    restored = PredictionPolicy(2)
    restored.load_state_dict(policy.state_dict())
    assert restored.state_dict() == policy.state_dict()
    with pytest.raises(UserError, match=r"decision.threshold=1.5 is invalid; allowed: a probability"):
        policy.set_threshold(1.5, counts, 0.0)
    with pytest.raises(UserError, match="decision.threshold=0.3 needs a binary problem"):
        PredictionPolicy(3).set_threshold(0.3, COUNTS, 0.0)
    old = PredictionPolicy(2)
    old.load_state_dict(None)  # a checkpoint from before the policy: raw softmax and argmax
    logits = torch.randn(5, 2)
    torch.testing.assert_close(old.probabilities(logits, counts, 0.0), logits.softmax(-1))
    assert torch.equal(old.decision_logits(logits, counts, 0.0), logits)


def _weighted_model_logits(n: int, weights: torch.Tensor, follows_weights: bool, seed: int = 5):
    """Labels drawn from a known posterior; logits of a model trained with `weights` that reached
    the weighted optimum (log posterior + log w) or ignored the weights (log posterior)."""
    generator = torch.Generator().manual_seed(seed)
    log_posterior = (torch.randn(n, 3, generator=generator) * 1.5 + log_prior(COUNTS)).log_softmax(-1)
    labels = torch.multinomial(log_posterior.exp(), 1, generator=generator).squeeze(1)
    return log_posterior + (weights.log() if follows_weights else 0.0), labels


def test_auto_calibration_keeps_the_closed_form_unless_validation_contradicts_it():
    weights = 1000.0 / (3 * COUNTS)
    for follows, expected in ((True, "closed_form"), (False, "fitted")):
        logits, labels = _weighted_model_logits(6000, weights, follows)
        policy = PredictionPolicy(3)
        policy.fit(logits, labels, COUNTS, weights, CrossEntropy())
        assert policy.calibration_method == expected
        calibrated = policy.probabilities(logits, COUNTS, 0.0).mean(0)
        observed = torch.bincount(labels, minlength=3) / len(labels)
        torch.testing.assert_close(calibrated, observed, atol=0.01, rtol=0.1)
    policy.configure(DecisionSettings(), "closed_form", None)  # forced: the closed form, even so
    policy.fit(logits, labels, COUNTS, weights, CrossEntropy())
    assert policy.calibration_method == "closed_form"


def test_multiclass_decisions_stay_the_argmax_of_the_adjusted_logits():
    policy = PredictionPolicy(3)
    weights = 1000.0 / (3 * COUNTS)
    logits, labels = _weighted_model_logits(600, weights, True)
    policy.fit(logits, labels, COUNTS, weights, CrossEntropy())
    assert policy.calibrated() and policy.cut is None
    assert torch.equal(policy.decision_logits(logits, COUNTS, 0.0), logits)
    assert policy.threshold(COUNTS, 0.0) is None


# ---- metrics --------------------------------------------------------------------------------------
def test_binary_rare_event_metrics_match_scikit_learn():
    generator = torch.Generator().manual_seed(6)
    labels = (torch.rand(800, generator=generator) < 0.05).long()
    probs = torch.rand(800, generator=generator) * 0.5 + 0.4 * labels
    probabilities = torch.stack([1 - probs, probs], dim=1)
    raw = torch.stack([1 - probs.sqrt(), probs.sqrt()], dim=1)
    decisions = (probs >= 0.4).long()
    metrics = RareEventMetrics(2, prefix="test/")
    for part in torch.split(torch.arange(800), 300):  # several updates, like batches
        metrics.update(probabilities[part], raw[part], decisions[part], labels[part], positive=1)
    values = {k: float(v) for k, v in metrics.compute().items()}
    y, p = labels.numpy(), probs.numpy()
    assert values["test/average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-5)
    assert values["test/roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-5)
    assert values["test/brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-6)
    assert values["test/brier_raw"] == pytest.approx(brier_score_loss(y, raw[:, 1].numpy()), abs=1e-6)
    for name, reference in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        assert values[f"test/{name}"] == pytest.approx(reference(y, decisions.numpy()), abs=1e-6)
    assert values["test/ece"] == pytest.approx(reliability_bins(probabilities.numpy(), y)["ece"], abs=1e-5)
    assert values["test/ece_raw"] == pytest.approx(reliability_bins(raw.numpy(), y)["ece"], abs=1e-5)


def test_binary_metrics_follow_the_minority_class_whatever_its_index():
    labels = torch.tensor([0, 1, 1, 1, 1, 1, 1, 1])  # class 0 is the rare one
    probabilities = torch.tensor([[0.9, 0.1]] + [[0.2, 0.8]] * 6 + [[0.6, 0.4]])
    metrics = RareEventMetrics(2, prefix="val/")
    metrics.update(probabilities, probabilities, probabilities.argmax(-1), labels, positive=0)
    values = metrics.compute()
    assert float(values["val/recall"]) == 1.0 and float(values["val/precision"]) == 0.5
    assert float(values["val/average_precision"]) == pytest.approx(
        average_precision_score(labels.numpy() == 0, probabilities[:, 0].numpy())
    )


def test_multiclass_metrics_are_macro_one_vs_rest():
    generator = torch.Generator().manual_seed(7)
    labels = torch.randint(0, 4, (500,), generator=generator)
    probabilities = (torch.randn(500, 4, generator=generator) + 2 * F.one_hot(labels, 4)).softmax(-1)
    metrics = RareEventMetrics(4, prefix="test/")
    metrics.update(probabilities, probabilities, probabilities.argmax(-1), labels, positive=3)
    values = {k: float(v) for k, v in metrics.compute().items()}
    onehot = F.one_hot(labels, 4).numpy()
    assert values["test/average_precision"] == pytest.approx(
        average_precision_score(onehot, probabilities.numpy(), average="macro"), abs=1e-5
    )
    assert values["test/roc_auc"] == pytest.approx(
        roc_auc_score(labels.numpy(), probabilities.numpy(), multi_class="ovr", average="macro"), abs=1e-5
    )
    brier = ((probabilities.numpy() - onehot) ** 2).sum(1).mean()
    assert values["test/brier"] == pytest.approx(brier, abs=1e-6)
    assert "test/precision" not in values  # precision/recall/F1 at the threshold: binary only


# ---- loss=bce -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_pos_weight_equals_two_class_weighted_cross_entropy(reduction):
    generator = torch.Generator().manual_seed(8)
    logits = torch.randn(64, 2, generator=generator) * 2
    targets = (torch.rand(64, generator=generator) < 0.2).long()
    weights = torch.tensor([0.6, 3.0])
    bce = BinaryCrossEntropy(reduction=reduction)(logits, targets, weights, torch.ones(2))
    ce = CrossEntropy(reduction=reduction)(logits, targets, weights, torch.ones(2))
    torch.testing.assert_close(bce, ce)
    # PyTorch's own BCEWithLogitsLoss(pos_weight) divides by the batch size instead of the weights
    torch_bce = torch.nn.BCEWithLogitsLoss(pos_weight=weights[1] / weights[0])(
        logits[:, 1] - logits[:, 0], targets.float()
    )
    if reduction == "mean":
        factor = len(targets) * weights[0] / weights[targets].sum()
        torch.testing.assert_close(torch_bce * factor, ce)


def test_bce_and_weighted_cross_entropy_train_to_the_same_decisions():
    generator = torch.Generator().manual_seed(9)
    x = torch.randn(2000, 3, generator=generator)
    y = ((x @ torch.tensor([1.5, -1.0, 0.5]) + 0.8 * torch.randn(2000, generator=generator)) > 2.0).long()
    weights = torch.tensor([0.55, 5.0])  # balanced-style

    def train(loss_fn):
        w = torch.zeros(3, 2, requires_grad=True)
        b = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
        )

        def closure():
            optimizer.zero_grad()
            value = loss_fn(x @ w + b)
            value.backward()
            return value

        optimizer.step(closure)
        logits = (x @ w + b).detach()
        return logits[:, 1] - logits[:, 0]

    bce = torch.nn.BCEWithLogitsLoss(pos_weight=weights[1] / weights[0])
    margin_bce = train(lambda z: bce(z[:, 1] - z[:, 0], y.float()))
    margin_ce = train(lambda z: F.cross_entropy(z, y, weight=weights))
    torch.testing.assert_close(margin_bce, margin_ce, atol=1e-3, rtol=1e-3)
    assert torch.equal(margin_bce >= 0, margin_ce >= 0)


def test_bce_refuses_more_than_two_classes():
    with pytest.raises(UserError, match="loss=bce needs a two-class model"):
        BinaryCrossEntropy()(
            torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.ones(3), torch.ones(3)
        )


def test_a_resumed_run_keeps_its_own_settings_and_eval_takes_the_checkpoints():
    trained, _ = _fitted_binary_policy(rule="max_f1")
    state = trained.state_dict()
    resumed = PredictionPolicy(2)
    resumed.configure(DecisionSettings(rule="cost", cost_fn=9.0), "none", 0.5)  # the new run's config
    resumed.load_state_dict(state)
    assert resumed.settings.rule == "cost" and resumed.calibration == "none" and resumed.sampler_q == 0.5
    assert resumed.cut == trained.cut  # the fitted state until the next validation epoch refits it
    evaluating = PredictionPolicy(2)  # eval.py / predict.py: nothing configured
    evaluating.load_state_dict(state)
    assert evaluating.settings.rule == "max_f1" and evaluating.calibrated()
