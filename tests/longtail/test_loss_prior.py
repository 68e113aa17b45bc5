"""Each loss declares how it treats the class prior; calibration, warnings, the binary check and
`class_weights=auto` read that declaration, so a fork's loss is treated like the built-in ones."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from imbalanced.errors import UserError
from imbalanced.longtail.calibration import closed_form_prior_shift
from imbalanced.longtail.decision import DecisionSettings
from imbalanced.longtail.losses import (
    LDAM,
    BalancedSoftmax,
    BinaryCrossEntropy,
    CrossEntropy,
    Focal,
    ImbalanceLoss,
    LogitAdjusted,
    log_prior,
)
from imbalanced.longtail.prediction_policy import PredictionPolicy
from imbalanced.longtail.rare_event import check_rare_event_data, rare_event_settings
from imbalanced.longtail.techniques import ImbalanceWarning, check_techniques, choose_class_weights
from imbalanced.longtail.weights import compute_class_weights

COUNTS = torch.tensor([700.0, 250.0, 50.0])
SRC = Path(__file__).resolve().parents[2] / "src" / "imbalanced"


# ---- a fork's own losses ---------------------------------------------------------------------------
class HalfAdjusted(ImbalanceLoss):
    """A fork's loss: CE(z + 0.5 log pi, y), declaring the shift it trains into the logits."""

    corrects_prior = True

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        prior = log_prior(class_counts).to(logits.device)
        return F.cross_entropy(logits.float() + 0.5 * prior, targets, reduction="none")

    def prior_shift(self, log_prior: Tensor) -> Tensor:
        return 0.5 * log_prior


class Undeclared(ImbalanceLoss):
    """A fork's loss that declares nothing: the safe defaults apply."""

    def per_sample(self, logits: Tensor, targets: Tensor, class_counts: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), targets, reduction="none")


class PairOnly(Undeclared):
    binary_only = True


def _target(loss: type) -> str:
    return f"loss._target_={__name__}.{loss.__name__}"


# ---- the declarations of the built-in losses ----------------------------------------------------
def test_built_in_losses_declare_how_they_treat_the_prior():
    log_pi = log_prior(COUNTS).double()
    zeros = torch.zeros(3, dtype=torch.float64)
    for loss in (CrossEntropy(), BinaryCrossEntropy(), Focal(gamma=0.0)):
        torch.testing.assert_close(loss.prior_shift(log_pi), zeros)
    torch.testing.assert_close(LogitAdjusted(tau=0.7).prior_shift(log_pi), 0.7 * log_pi)
    torch.testing.assert_close(BalancedSoftmax().prior_shift(log_pi), log_pi)
    assert Focal(gamma=2.0).prior_shift(log_pi) is None and LDAM().prior_shift(log_pi) is None
    assert [loss.corrects_prior for loss in (LogitAdjusted(), BalancedSoftmax(), LogitAdjusted(tau=0))] == [
        True,
        True,
        False,
    ]
    assert not any(loss.corrects_prior for loss in (CrossEntropy(), Focal(), LDAM(), BinaryCrossEntropy()))
    assert BinaryCrossEntropy().binary_only and not CrossEntropy().binary_only


def test_the_base_class_defaults_are_the_safe_ones():
    loss = Undeclared()
    assert loss.prior_shift(log_prior(COUNTS)) is None  # unknown: calibration fits the bias
    assert not loss.corrects_prior and not loss.binary_only


# ---- calibration reads the declaration ----------------------------------------------------------------
def test_a_forks_loss_gets_its_calibration_from_its_declared_shift():
    weights = torch.tensor([1.0, 2.0, 4.0])
    shift = closed_form_prior_shift(HalfAdjusted(), weights, COUNTS, sampler_q=0.5)
    pi = COUNTS.numpy() / COUNTS.numpy().sum()
    by_hand = 0.5 * np.log(pi) - np.log(weights.numpy()) + (1 - 0.5) * np.log(pi)
    np.testing.assert_allclose(shift.numpy(), by_hand - by_hand.mean(), rtol=1e-6)
    assert closed_form_prior_shift(Undeclared(), weights, COUNTS) is None


def test_the_declared_shift_maps_the_learned_logits_back_to_the_data_prior():
    labels = torch.repeat_interleave(torch.arange(3), COUNTS.long())
    bias = torch.zeros(3, requires_grad=True)  # an intercept-only model trained with the fork's loss
    optimizer = torch.optim.LBFGS([bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = HalfAdjusted()(bias.expand(len(labels), 3), labels, torch.ones(3), COUNTS)
        loss.backward()
        return loss

    optimizer.step(closure)
    prior = COUNTS / COUNTS.sum()
    assert not torch.allclose(bias.detach().softmax(-1), prior, atol=1e-2)
    shift = closed_form_prior_shift(HalfAdjusted(), torch.ones(3), COUNTS)
    torch.testing.assert_close((bias.detach() + shift.float()).softmax(-1), prior, atol=1e-4, rtol=1e-4)


def test_the_policy_takes_the_closed_form_of_the_criterion_and_fits_an_undeclared_one():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    logits = torch.randn(600, 3, generator=generator)
    policy = PredictionPolicy(3)
    policy.configure(DecisionSettings(), "closed_form", None)
    policy.fit(logits, labels, COUNTS, torch.ones(3), HalfAdjusted())
    assert policy.calibration_method == "closed_form"
    expected = closed_form_prior_shift(HalfAdjusted(), torch.ones(3), COUNTS).float()
    torch.testing.assert_close(policy.shift, expected)
    policy.fit(logits, labels, COUNTS, torch.ones(3), Undeclared())
    assert policy.calibration_method == "fitted"


# ---- warnings and checks read the declaration --------------------------------------------------------
def test_a_forks_prior_correcting_loss_gets_the_double_correction_warning(compose_cfg):
    with pytest.warns(ImbalanceWarning, match="loss HalfAdjusted already corrects for the class prior"):
        check_techniques(compose_cfg(_target(HalfAdjusted), "class_weights=balanced"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_techniques(compose_cfg(_target(Undeclared), "class_weights=balanced"))
        check_techniques(compose_cfg(_target(HalfAdjusted)))  # auto: no weights on top


def test_a_forks_binary_only_loss_is_refused_on_multiclass_data(compose_cfg):
    settings = rare_event_settings(compose_cfg(_target(PairOnly)))
    with pytest.raises(
        UserError,
        match=rf"loss._target_={__name__}.PairOnly needs a binary problem; "
        "this data has 5 classes",
    ):
        check_rare_event_data(settings, SimpleNamespace(num_classes=5))
    assert rare_event_settings(compose_cfg(_target(Undeclared))).binary_loss is None


BUILT_IN_LOSSES = ("CrossEntropy", "BinaryCrossEntropy", "Focal", "LogitAdjusted", "BalancedSoftmax", "LDAM")
READERS = [
    SRC / "longtail" / name
    for name in ("calibration.py", "decision.py", "techniques.py", "rare_event.py", "prediction_policy.py")
]


@pytest.mark.parametrize("path", READERS + sorted((SRC / "tasks").glob("*.py")), ids=lambda p: p.name)
def test_no_module_that_reads_the_declarations_names_a_built_in_loss(path):
    named = re.findall(rf"\b({'|'.join(BUILT_IN_LOSSES)})\b", path.read_text())
    assert named == [], f"{path.name} names {sorted(set(named))}: read the loss's declaration instead"


# ---- class_weights: auto ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "strategy", "reason"),
    [
        ([], "balanced", "loss CrossEntropy does not correct the class prior"),
        (["loss=focal"], "balanced", "loss Focal does not correct the class prior"),
        (["loss=ldam"], "balanced", "loss LDAM does not correct the class prior"),
        (["loss=logit_adjusted"], "none", "loss LogitAdjusted corrects the class prior itself"),
        (["loss=logit_adjusted", "loss.tau=0"], "balanced", "loss LogitAdjusted does not correct"),
        (["loss=balanced_softmax"], "none", "loss BalancedSoftmax corrects the class prior itself"),
        ([_target(HalfAdjusted)], "none", "loss HalfAdjusted corrects the class prior itself"),
        ([_target(Undeclared)], "balanced", "loss Undeclared does not correct the class prior"),
        (["loss=logit_adjusted", "drw_start_epoch=3"], "balanced", "drw_start_epoch=3 re-weights"),
        (["posthoc_tau=1"], "none", "posthoc_tau=1.0 corrects the class prior after training"),
        (["sampler=class_balanced"], "none", "sampler.q=0.0 already rebalances the classes"),
        (["sampler=instance"], "balanced", "loss CrossEntropy does not correct"),  # q=1: the data's own
    ],
)
def test_auto_reads_the_losss_declaration(compose_cfg, overrides, strategy, reason):
    choice = choose_class_weights(compose_cfg(*overrides))
    assert (choice.requested, choice.strategy) == ("auto", strategy)
    assert choice.reason.startswith(reason)
    assert choice.config == {"_target_": f"imbalanced.longtail.weights.{strategy}", "_partial_": True}
    with warnings.catch_warnings():  # auto never corrects the prior twice
        warnings.simplefilter("error")
        check_techniques(compose_cfg(*overrides))


@pytest.mark.parametrize("strategy", ["balanced", "none", "inverse", "effective_number"])
def test_an_explicit_strategy_wins(compose_cfg, strategy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImbalanceWarning)  # logit_adjusted + balanced warns (below)
        choice = choose_class_weights(compose_cfg("loss=logit_adjusted", f"class_weights={strategy}"))
    assert (choice.requested, choice.strategy, choice.reason) == (strategy, strategy, "set explicitly")
    assert choice.config["_target_"] == f"imbalanced.longtail.weights.{strategy}"


def test_an_explicit_double_correction_still_warns(compose_cfg):
    with pytest.warns(ImbalanceWarning, match="loss LogitAdjusted already corrects"):
        check_techniques(compose_cfg("loss=logit_adjusted", "class_weights=balanced"))


def test_the_datamodule_gets_the_strategy_auto_chose(compose_cfg):
    from imbalanced.from_config import build_datamodule

    for overrides, strategy in (([], "balanced"), (["loss=logit_adjusted"], "none")):
        datamodule = build_datamodule(compose_cfg("data.n_samples=600", *overrides))
        datamodule.setup("fit")
        statistics = datamodule.class_statistics
        assert statistics.strategy == strategy
        expected = compute_class_weights(statistics.counts, strategy)
        np.testing.assert_allclose(statistics.weights, expected)


def test_auto_left_unresolved_is_refused_naming_the_strategies():
    with pytest.raises(UserError) as error:
        compute_class_weights([5, 3], {"_target_": "imbalanced.longtail.weights.auto", "_partial_": True})
    assert str(error.value).startswith(
        "class_weights=auto is chosen from the loss by train.py; a datamodule "
        "built elsewhere needs a strategy: none, balanced"
    )


AUTO_RUN = [
    "loss=logit_adjusted",
    "data.n_samples=600",
    "refit_with_validation=false",
    "callbacks.progress_bar.refresh_rate=0",
]


def _auto_run(run_dir: Path, monkeypatch, *overrides: str) -> dict:
    from inprocess import run_app

    from conftest import read_json

    code = run_app("train.py", *AUTO_RUN, *overrides, run_dir=run_dir, monkeypatch=monkeypatch)
    assert code == 0
    return read_json(run_dir / "class_weights.json")


def test_class_weights_json_and_the_log_say_what_auto_chose_and_why(tmp_path, monkeypatch):
    report = _auto_run(tmp_path / "run", monkeypatch, "trainer.max_epochs=1")
    reason = "loss LogitAdjusted corrects the class prior itself"
    assert (report["strategy"], report["requested"], report["reason"]) == ("none", "auto", reason)
    assert report["weights"] == [1.0] * 5 and len(report["counts"]) == len(report["class_names"]) == 5
    assert f"class_weights=none (requested auto: {reason})" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.slow
def test_a_resumed_auto_run_resolves_the_same_weights(tmp_path, monkeypatch):
    first = _auto_run(tmp_path / "run", monkeypatch, "trainer.max_epochs=1")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    resumed = _auto_run(tmp_path / "resumed", monkeypatch, "trainer.max_epochs=2", f"ckpt_path={last}")
    assert resumed == first  # the resume check compared the checkpoint's class weights with these


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"reduction": "mean"},
            "loss has no _target_; allowed: a loss=OPTION of configs/loss/ or a "
            "loss._target_ naming an ImbalanceLoss subclass",
        ),
        (
            {"_target_": "torch.nn.CrossEntropyLoss"},
            "loss._target_=torch.nn.CrossEntropyLoss is not an "
            "ImbalanceLoss; allowed: a subclass of "
            "imbalanced.longtail.losses.ImbalanceLoss (it declares "
            "how it treats the prior)",
        ),
    ],
)
def test_a_loss_that_cannot_declare_its_prior_is_refused(config, message):
    from imbalanced.longtail.losses import build_loss

    with pytest.raises(UserError) as error:
        build_loss(config)
    assert str(error.value) == message  # the whole line: what is wrong and what is allowed
    assert type(build_loss(None)) is CrossEntropy  # no config: the model's default loss
