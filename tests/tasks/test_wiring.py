"""The wiring between the pieces: each test fails if one line of glue is changed the way a bug would
(a mutation check found these gaps). Fast: no Hydra, tiny tensors, at most one fit step."""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.sampling import ClassAwareBatchSampler
from imbalanced.data.splitting import spare_rare_classes, stratified_split
from imbalanced.data.tables.synthetic import SyntheticDataModule
from imbalanced.errors import UserError
from imbalanced.longtail.losses import CrossEntropy, Focal
from imbalanced.longtail.weights import compute_class_weights

BACKBONE = {"_target_": "imbalanced.models.MLP", "hidden_sizes": [16], "in_features": 5}
COUNTS = np.array([60, 25, 10, 5])


def statistics(strategy: str = "balanced") -> ClassStatistics:
    labels = np.repeat(np.arange(4), COUNTS)
    return ClassStatistics.from_labels(labels, ["a", "b", "c", "d"], {"strategy": strategy})


def model_with(loss: dict, seed: int = 0) -> ImbalancedClassifier:
    torch.manual_seed(seed)
    return ImbalancedClassifier(num_classes=4, backbone=BACKBONE, loss=loss, class_statistics=statistics())


def batch(n: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=generator)
    y = torch.randint(0, 4, (n,), generator=generator)
    return x, y


# ---- the training step's normalization ---------------------------------------------------------
def _loss_and_grads(model: ImbalancedClassifier, data) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss = model.training_step(data, 0)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("target", ["CrossEntropy", "Focal"])
def test_reduction_none_with_weight_sum_steps_like_reduction_mean(target):
    """One training step: the same loss and the same gradients (weighted, non-uniform weights)."""
    data = batch()
    loss = {"_target_": f"imbalanced.longtail.losses.{target}"}
    mean_loss, mean_grads = _loss_and_grads(model_with({**loss, "reduction": "mean"}), data)
    none_loss, none_grads = _loss_and_grads(
        model_with({**loss, "reduction": "none", "normalize": "weight_sum"}), data
    )
    torch.testing.assert_close(none_loss, mean_loss)
    for none_grad, mean_grad in zip(none_grads, mean_grads, strict=True):
        torch.testing.assert_close(none_grad, mean_grad)


def test_reduction_none_with_batch_size_divides_by_the_number_of_samples():
    data = batch()
    model = model_with(
        {
            "_target_": "imbalanced.longtail.losses.CrossEntropy",
            "reduction": "none",
            "normalize": "batch_size",
        }
    )
    x, y = data
    with torch.no_grad():
        expected = (F.cross_entropy(model(x), y, reduction="none") * model.class_weights[y]).mean()
    torch.testing.assert_close(model.training_step(data, 0).detach(), expected)


def test_the_training_step_adjusts_logits_by_the_modules_training_prior():
    """loss=logit_adjusted reads the class_counts buffer: CE(z + tau * log(n_c / N), y), weighted."""
    x, y = batch()
    model = model_with({"_target_": "imbalanced.longtail.losses.LogitAdjusted", "tau": 1.0})
    with torch.no_grad():
        prior = torch.as_tensor(COUNTS / COUNTS.sum(), dtype=torch.float32)
        expected = F.cross_entropy(model(x) + torch.log(prior), y, weight=model.class_weights)
        torch.testing.assert_close(model.training_step((x, y), 0), expected)
        torch.testing.assert_close(model.training_step((x, y, y.roll(3), 1.0), 0), expected)  # MixUp, lam=1


# ---- the losses against their formulas (not against the function they call) --------------------
def test_cross_entropy_sum_and_mean_follow_the_weighted_formula():
    x, y = batch()
    logits = torch.randn(len(y), 4, generator=torch.Generator().manual_seed(3))
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    counts = torch.tensor(COUNTS, dtype=torch.float32)
    per_sample = -torch.log_softmax(logits, -1)[torch.arange(len(y)), y] * weights[y]
    torch.testing.assert_close(CrossEntropy("sum")(logits, y, weights, counts), per_sample.sum())
    torch.testing.assert_close(
        CrossEntropy("mean")(logits, y, weights, counts), per_sample.sum() / weights[y].sum()
    )
    focal_zero = Focal(gamma=0.0, reduction="sum")(logits, y, weights, counts)
    torch.testing.assert_close(focal_zero, per_sample.sum())


def test_bce_per_sample_is_two_class_cross_entropy():
    """What MixUp/CutMix batches train on with loss=bce: sigmoid of the margin = two-class softmax."""
    from imbalanced.longtail.losses import BinaryCrossEntropy

    generator = torch.Generator().manual_seed(4)
    logits, y = torch.randn(32, 2, generator=generator) * 3, torch.randint(0, 2, (32,), generator=generator)
    per_sample = BinaryCrossEntropy().per_sample(logits, y, torch.tensor([20.0, 5.0]))
    torch.testing.assert_close(per_sample, F.cross_entropy(logits, y, reduction="none"))


def test_loss_settings_are_refused_by_name_and_any_positive_scale_is_taken():
    from imbalanced.longtail.losses import LDAM, LogitAdjusted

    cases = [
        (lambda: LogitAdjusted(tau=-1), "loss.tau=-1 is invalid; allowed: a finite number in [0, inf)"),
        (lambda: LDAM(max_margin=0), "loss.max_margin=0 is invalid; allowed: a finite number in (0, inf)"),
        (lambda: LDAM(scale=0), "loss.scale=0 is invalid; allowed: a finite number in (0, inf)"),
    ]
    for build, message in cases:
        with pytest.raises(UserError) as error:
            build()
        assert str(error.value) == message
    assert LDAM(scale=0.5).scale == 0.5  # the paper uses 30 with cosine logits; smaller is allowed


def test_the_training_prior_of_one_sample_classes_and_the_name_of_no_strategy():
    """log pi_c = log(n_c / N) also for n_c = 1; a run without class_weights reports strategy none."""
    from imbalanced.longtail.losses import log_prior
    from imbalanced.longtail.weights import strategy_name

    torch.testing.assert_close(log_prior(torch.tensor([9.0, 1.0])), torch.log(torch.tensor([0.9, 0.1])))
    torch.testing.assert_close(log_prior(torch.tensor([1.0, 1.0])), torch.log(torch.tensor([0.5, 0.5])))
    with pytest.raises(RuntimeError, match="^class_counts are all zero: the module was not set up from data"):
        log_prior(torch.zeros(3))
    assert strategy_name(None) == "none" and strategy_name({"beta": 0.9}) == "none"


# ---- per-class training loss -------------------------------------------------------------------
def test_class_loss_is_the_mean_weighted_loss_of_each_class():
    """`train/class_loss/<i>` after a one-step epoch = mean over class i's samples of w_i * CE."""
    x, y = batch(n=48)
    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy", "reduction": "none"})
    before = copy.deepcopy(model)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=len(y)))
    with torch.no_grad():
        weighted = F.cross_entropy(before(x), y, reduction="none") * before.class_weights[y]
    for index in range(4):
        logged = trainer.callback_metrics[f"train/class_loss/{index}"]
        torch.testing.assert_close(logged, weighted[y == index].mean(), rtol=1e-5, atol=1e-6)


def test_a_mixup_batch_trains_on_the_mixed_weighted_loss_and_tracks_each_class_share():
    """A MixUp/CutMix batch (x, y_a, y_b, lam): the loss mixes both targets' weighted losses."""
    x, y_a = batch(n=48)
    y_b, lam = y_a.roll(5), 0.25
    loss = {"_target_": "imbalanced.longtail.losses.CrossEntropy", "reduction": "none"}
    model = model_with(loss)
    before = copy.deepcopy(model)
    with torch.no_grad():
        logits, w = before(x), before.class_weights
        part_a = lam * w[y_a] * F.cross_entropy(logits, y_a, reduction="none")
        part_b = (1 - lam) * w[y_b] * F.cross_entropy(logits, y_b, reduction="none")
        expected = (part_a + part_b).sum() / (lam * w[y_a] + (1 - lam) * w[y_b]).sum()
    torch.testing.assert_close(
        model_with({**loss, "reduction": "mean"}).training_step((x, y_a, y_b, lam), 0), expected
    )
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    one_batch = DataLoader([0], batch_size=1, collate_fn=lambda _: (x, y_a, y_b, lam))  # as mixing serves it
    trainer.fit(model, train_dataloaders=one_batch)
    for index in range(4):
        share = lam * (y_a == index).sum() + (1 - lam) * (y_b == index).sum()
        mean = (part_a[y_a == index].sum() + part_b[y_b == index].sum()) / share
        torch.testing.assert_close(
            trainer.callback_metrics[f"train/class_loss/{index}"], mean, rtol=1e-5, atol=1e-6
        )


def test_class_loss_is_logged_per_epoch_for_the_classes_the_epoch_saw():
    """A class absent from the epoch gets no value (not 0/0); a one-sample class gets its loss."""
    x, y = batch(n=48)
    y = torch.where(y == 2, 0, y)  # class 2 absent
    y[(y == 3).nonzero()[1:]] = 1  # class 3: one sample
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1e-9}  # two epochs of the same model
    loss = {"_target_": "imbalanced.longtail.losses.CrossEntropy", "reduction": "none"}
    model = ImbalancedClassifier(
        num_classes=4, backbone=BACKBONE, loss=loss, optimizer=sgd, class_statistics=statistics()
    )
    with torch.no_grad():
        weighted = F.cross_entropy(model(x), y, reduction="none") * model.class_weights[y]
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=len(y))
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)  # validated after each epoch
    logged = {key for key in trainer.callback_metrics if key.startswith("train/class_loss/")}
    assert logged == {"train/class_loss/0", "train/class_loss/1", "train/class_loss/3"}
    # the scalars a run's metrics.csv / plots read, under their names
    assert {"train/loss_epoch", "val/balanced_accuracy", "val/average_precision", "val/brier"} <= set(
        trainer.callback_metrics
    )
    for index in (0, 1, 3):  # as logged at the end of the second epoch
        torch.testing.assert_close(
            trainer.callback_metrics[f"train/class_loss/{index}"],
            weighted[y == index].mean(),
            rtol=1e-5,
            atol=1e-6,
        )


def test_the_test_epoch_logs_each_classs_recall_under_its_index():
    """`test/recall/<i>` (metrics.json's per-class list) = recall of class i, with the macro averages."""
    x, y = batch(n=64)
    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"}).eval()
    trainer = L.Trainer(
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1
    )
    trainer.test(model, DataLoader(TensorDataset(x, y), batch_size=16), verbose=False)
    with torch.no_grad():
        predicted = model(x).argmax(-1)
    recalls = [float((predicted[y == c] == c).float().mean()) for c in range(4)]
    logged = trainer.callback_metrics
    assert sorted(k for k in logged if "/recall/" in k) == [f"test/recall/{c}" for c in range(4)]
    for c in range(4):
        assert float(logged[f"test/recall/{c}"]) == pytest.approx(recalls[c])
    assert float(logged["test/balanced_accuracy"]) == pytest.approx(sum(recalls) / 4)
    assert float(logged["test/accuracy"]) == pytest.approx(float((predicted == y).float().mean()))


def test_a_binary_test_epoch_scores_the_minority_class_and_keeps_the_outputs_for_the_plots():
    from sklearn.metrics import average_precision_score, recall_score

    stats = ClassStatistics.from_labels(np.repeat([0, 1], [10, 90]), ["rare", "common"], {"strategy": "none"})
    model = ImbalancedClassifier(num_classes=2, backbone=BACKBONE, class_statistics=stats).eval()
    model.posthoc_tau = 1.0
    x, _ = batch(n=64)
    y = (torch.arange(64) % 4 != 0).long()  # the rare class 0 is a quarter of the test split
    trainer = L.Trainer(
        logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1
    )
    trainer.test(model, DataLoader(TensorDataset(x, y), batch_size=16), verbose=False)
    with torch.no_grad():
        adjusted = model(x) - torch.log(torch.tensor([0.1, 0.9]))
    probabilities = torch.softmax(adjusted, -1).numpy()
    for key in ("probabilities", "raw_probabilities"):  # uncalibrated: both are the adjusted softmax
        np.testing.assert_allclose(model.test_outputs[key], probabilities, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.test_outputs["labels"], y.numpy())
    rare, logged = (y == 0).numpy(), trainer.callback_metrics
    assert float(logged["test/average_precision"]) == pytest.approx(
        average_precision_score(rare, probabilities[:, 0]), abs=1e-5
    )
    decided_rare = (adjusted.argmax(-1) == 0).numpy()
    assert float(logged["test/recall"]) == pytest.approx(recall_score(rare, decided_rare))


# ---- what predict.py writes: probabilities and decisions of predict_step -------------------------
def test_predict_step_writes_adjusted_probabilities_and_decisions_for_any_batch_form():
    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"}).eval()
    model.posthoc_tau = 1.0
    x, y = batch()
    with torch.no_grad():
        logits = model(x)
        adjusted = logits - torch.log(torch.as_tensor(COUNTS / COUNTS.sum(), dtype=torch.float32))
        for form in (x, (x, y), [x]):  # a bare tensor, a labelled batch, a one-item list
            torch.testing.assert_close(model.predict_step(form, 0), torch.softmax(adjusted, -1))
        model.predict_decisions = True
        written = model.predict_step((x, y), 0)
    assert sorted(written) == ["prediction", "probabilities"]
    torch.testing.assert_close(written["probabilities"], torch.softmax(adjusted, -1))
    assert torch.equal(written["prediction"], adjusted.argmax(-1))
    assert not torch.equal(written["prediction"], logits.argmax(-1))  # tau=1 moves decisions here


def test_a_binary_model_predicts_with_the_minority_class_as_positive():
    stats = ClassStatistics.from_labels(np.repeat([0, 1], [10, 90]), ["rare", "common"], {"strategy": "none"})
    model = ImbalancedClassifier(num_classes=2, backbone=BACKBONE, class_statistics=stats).eval()
    x, _ = batch()
    with torch.no_grad():
        torch.testing.assert_close(model.predict_step(x, 0), torch.softmax(model(x), -1))
    report = model.prediction_policy.report(model.class_names, model.class_counts, 0.0)
    assert report["positive_class"] == "rare"


# ---- the optimizer and scheduler settings reach the optimizer Lightning steps ---------------------
def test_configure_optimizers_builds_the_configured_optimizer_and_schedule():
    sgd = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.05, "momentum": 0.9}
    step = {"_target_": "torch.optim.lr_scheduler.StepLR", "_partial_": True, "step_size": 2}
    model = ImbalancedClassifier(num_classes=4, backbone=BACKBONE, optimizer=sgd, scheduler=step)
    built = model.configure_optimizers()
    optimizer, schedule = built["optimizer"], built["lr_scheduler"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert [group["lr"] for group in optimizer.param_groups] == [0.05]
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    assert isinstance(schedule["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert schedule["scheduler"].optimizer is optimizer and schedule["interval"] == "epoch"
    plain = ImbalancedClassifier(num_classes=4, backbone=BACKBONE).configure_optimizers()
    assert isinstance(plain, torch.optim.AdamW)  # the default: AdamW, constant learning rate


def test_a_schedule_without_a_length_takes_the_trainers_run_length(monkeypatch):
    from types import SimpleNamespace

    cosine = {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "_partial_": True, "T_max": None}
    model = ImbalancedClassifier(num_classes=4, backbone=BACKBONE, scheduler=cosine)
    trainer = SimpleNamespace(
        estimated_stepping_batches=30, num_training_batches=10, accumulate_grad_batches=1, max_epochs=3
    )
    monkeypatch.setattr(model, "_trainer", trainer)
    assert model.configure_optimizers()["lr_scheduler"]["scheduler"].T_max == 3  # trainer.max_epochs


# ---- DDP: every rank must train with the same class weights --------------------------------------
def test_fit_refuses_ranks_whose_class_weights_differ(monkeypatch, caplog):
    from types import SimpleNamespace

    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"})
    monkeypatch.setattr(model, "_trainer", SimpleNamespace(world_size=2, global_rank=0))
    weights = model.class_weights.clone()
    monkeypatch.setattr(model, "all_gather", lambda tensor: torch.stack([tensor, weights]))
    with caplog.at_level("INFO", logger="imbalanced.classifier"):
        model.on_fit_start()  # two ranks, the same weights
    assert f"rank 0 class_weights [{', '.join(f'{w:.4g}' for w in weights.tolist())}]" in caplog.messages
    monkeypatch.setattr(model, "all_gather", lambda tensor: torch.stack([tensor, weights * 2]))
    with pytest.raises(RuntimeError) as error:
        model.on_fit_start()
    assert str(error.value) == (
        f"class weights differ across DDP ranks: {torch.stack([weights, weights * 2]).tolist()}; the data "
        "split must be deterministic (set data.seed) so every rank sees the same training split"
    )


def test_nan_validation_logits_stop_fit_naming_epoch_step_and_learning_rate(monkeypatch):
    """Checked before ModelCheckpoint can save the model (the run test: test_wiring_runs.py)."""
    from types import SimpleNamespace

    from imbalanced.errors import NonFiniteLossError

    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    trainer = SimpleNamespace(world_size=1, optimizers=[optimizer], current_epoch=3, global_step=7)
    monkeypatch.setattr(model, "_trainer", trainer)
    x, y = batch()
    logits = model(x).detach()
    logits[0, 0] = float("nan")
    model._val_outputs = [(logits, y)]
    largest = max(float(p.detach().abs().max()) for p in model.parameters())
    with pytest.raises(NonFiniteLossError) as error:
        model.on_validation_epoch_end()
    assert str(error.value).startswith(
        "the model gives NaN/inf validation logits at epoch 3 (global step 7) although the training loss was "
        f"finite; training stopped before any checkpoint of this state was saved. Likely cause: the weights "
        f"grew to |w|={largest:.3g}: the learning rate optimizer.lr=0.05 is too high"
    )


# ---- data splitting and sampling ---------------------------------------------------------------
def _labels(n_per_class=(400, 120, 40, 20)):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = np.arange(len(y), dtype=np.float64)[:, None]
    return x, y


def test_every_split_keeps_the_class_shares_of_the_whole_set():
    x, y = _labels()
    parts = stratified_split(x, y, 0.2, 0.3, seed=0)  # not 0.25: scikit-learn's default test_size
    whole = np.bincount(y) / len(y)
    for labels in parts[1::2]:
        np.testing.assert_allclose(np.bincount(labels, minlength=4) / len(labels), whole, atol=0.01)
    assert sum(len(labels) for labels in parts[1::2]) == len(y)
    assert len(parts[5]) == pytest.approx(0.3 * len(y), abs=2)
    assert len(parts[3]) == pytest.approx(0.2 * len(y), abs=2)


def test_the_split_follows_the_seed():
    x, y = _labels()
    same = stratified_split(x, y, 0.2, 0.2, seed=7), stratified_split(x, y, 0.2, 0.2, seed=7)
    other = stratified_split(x, y, 0.2, 0.2, seed=8)
    for a, b in zip(*same, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(same[0][0], other[0][0])  # training rows
    assert not np.array_equal(same[0][4], other[4])  # test rows


def test_the_sampler_setting_reaches_the_training_loader():
    """sampler.q=0 draws every class about equally often; without a sampler, the data's own shares."""
    kwargs = dict(n_samples=2000, n_features=5, num_classes=4, imbalance_ratio=20, batch_size=50)
    balanced = SyntheticDataModule(sampler={"q": 0.0}, **kwargs)
    plain = SyntheticDataModule(**kwargs)
    shares = {}
    for name, datamodule in (("balanced", balanced), ("plain", plain)):
        datamodule.setup("fit")
        labels = torch.cat([y for _, y in datamodule.train_dataloader()])
        shares[name] = torch.bincount(labels, minlength=4).double() / len(labels)
    assert isinstance(balanced.batch_plan("train", train=True), ClassAwareBatchSampler)
    assert shares["balanced"].min() > 0.2 and shares["balanced"].max() < 0.3
    assert shares["plain"].min() < 0.05  # the rare class keeps its small share


# ---- class-weight strategies that need every class -----------------------------------------
@pytest.mark.parametrize("strategy", ["balanced", "inverse", "inverse_sqrt", "effective_number"])
def test_strategies_that_divide_by_counts_name_the_empty_class(strategy):
    with pytest.raises(UserError, match=rf"class_weights={strategy} needs every class .* \['rare'\] have 0"):
        compute_class_weights([50, 0, 3], strategy, class_names=["common", "rare", "third"])
    assert np.all(compute_class_weights([50, 0, 3], "none") == 1.0)


# ---- settings checked before any data --------------------------------------------------------------
DOUBLE_PRIOR = [
    (["loss=balanced_softmax", "class_weights=balanced"], "loss BalancedSoftmax already corrects"),
    (["loss=logit_adjusted", "class_weights=inverse"], "loss LogitAdjusted already corrects"),
    (["sampler=class_balanced", "class_weights=balanced"], "sampler.q=0.0 already rebalances the classes"),
    (["sampler=sqrt", "class_weights=inverse_sqrt"], "sampler.q=0.5 already rebalances the classes"),
    (["posthoc_tau=1", "class_weights=balanced"], "posthoc_tau=1.0 corrects the prior of a model already"),
    (["posthoc_tau=1", "class_weights=none", "loss=logit_adjusted"], "posthoc_tau=1.0 corrects the prior"),
    (["posthoc_tau=1", "class_weights=none", "sampler=class_balanced"], "posthoc_tau=1.0 corrects the"),
    (["drw_start_epoch=2", "class_weights=none"], "drw_start_epoch is set but class_weights=none"),
]
SINGLE_PRIOR = [
    ["loss=logit_adjusted", "class_weights=none"],
    ["loss=logit_adjusted", "loss.tau=0", "class_weights=balanced"],  # tau=0 is plain cross entropy
    ["loss=ldam", "class_weights=effective_number", "drw_start_epoch=3"],  # LDAM-DRW
    ["loss=balanced_softmax", "class_weights=balanced", "drw_start_epoch=3"],
    ["sampler=instance", "class_weights=balanced"],  # q=1: the data's own frequencies
    ["sampler=class_balanced", "class_weights=manual", "class_weights.weights=[1,2,3,4,5]"],
    ["posthoc_tau=1", "class_weights=none"],
]


@pytest.mark.parametrize(("overrides", "warning"), DOUBLE_PRIOR)
def test_correcting_the_prior_twice_warns(compose_cfg, overrides, warning):
    from imbalanced.longtail.techniques import ImbalanceWarning, check_techniques

    with pytest.warns(ImbalanceWarning, match=warning):
        check_techniques(compose_cfg(*overrides))


@pytest.mark.parametrize("overrides", SINGLE_PRIOR)
def test_one_prior_correction_does_not_warn(compose_cfg, overrides):
    import warnings

    from imbalanced.longtail.techniques import check_techniques

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_techniques(compose_cfg(*overrides))


@pytest.mark.parametrize(
    ("precision", "mixed", "limit"), [("16-true", "16-mixed", 2048), ("bf16-true", "bf16-mixed", 256)]
)
def test_half_true_precision_is_refused_with_the_mixed_alternative(compose_cfg, precision, mixed, limit):
    from imbalanced.runs.config_checks import check_config

    with pytest.raises(
        UserError,
        match=rf"trainer.precision={precision} is not supported.*above {limit} "
        rf"would be rounded; use trainer.precision={mixed}",
    ):
        check_config(compose_cfg(f"trainer.precision={precision}"))


# ---- deferred re-weighting: the buffer the loss reads, epoch by epoch -----------------------------
def test_drw_writes_uniform_then_the_strategys_weights_into_the_buffer_and_restores_them():
    from types import SimpleNamespace

    from imbalanced.longtail.drw import DeferredReweighting

    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"})
    strategy = model.class_weights.clone()
    assert not torch.allclose(strategy, torch.ones(4))
    drw = DeferredReweighting(start_epoch=2)
    drw.on_fit_start(SimpleNamespace(), model)
    seen = []
    for epoch in range(4):
        drw.on_train_epoch_start(SimpleNamespace(current_epoch=epoch), model)
        seen.append(model.class_weights.clone())
    for epoch in (0, 1):
        torch.testing.assert_close(seen[epoch], torch.ones(4))
    for epoch in (2, 3):
        torch.testing.assert_close(seen[epoch], strategy)
    drw.on_train_epoch_start(SimpleNamespace(current_epoch=0), model)
    drw.on_train_end(SimpleNamespace(), model)
    torch.testing.assert_close(model.class_weights, strategy)  # what the checkpoint and eval see
    # a resumed run restores the strategy's weights from the callback state, not from the buffer
    resumed = DeferredReweighting(start_epoch=2)
    resumed.load_state_dict(drw.state_dict())
    model.class_weights.fill_(1.0)
    resumed.on_fit_start(SimpleNamespace(), model)
    resumed.on_train_epoch_start(SimpleNamespace(current_epoch=3), model)
    torch.testing.assert_close(model.class_weights, strategy)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=f"drw_start_epoch={bad!r} must be an integer >= 0"):
            DeferredReweighting(bad)
    assert DeferredReweighting(0).weights_for_epoch(0, strategy) is strategy  # from the first epoch
    assert DeferredReweighting(3).state_dict() == {"start_epoch": 3, "strategy_weights": None}


def test_drw_logs_its_schedule(caplog):
    import logging
    from types import SimpleNamespace

    from imbalanced.longtail.drw import DeferredReweighting

    model = model_with({"_target_": "imbalanced.longtail.losses.CrossEntropy"})
    with caplog.at_level(logging.INFO, logger="imbalanced.longtail.drw"):
        DeferredReweighting(2).on_fit_start(SimpleNamespace(), model)
    expected = [round(w, 4) for w in model.class_weights.tolist()]
    (message,) = [r.getMessage() for r in caplog.records if r.name == "imbalanced.longtail.drw"]
    assert message.startswith("DRW: uniform class weights until epoch 2, then [")
    logged = [round(float(w), 4) for w in message.split("[")[1].rstrip("]").split(",")]
    assert logged == expected


# ---- loss defaults (the papers') and LDAM's margins ------------------------------------------------
def test_loss_defaults_are_the_papers():
    from imbalanced.longtail.losses import LDAM, LogitAdjusted, ldam_margins

    assert Focal().gamma == 2.0 and LogitAdjusted().tau == 1.0
    assert LDAM().max_margin == 0.5 and LDAM().scale == 30.0
    torch.testing.assert_close(ldam_margins(torch.tensor([16.0, 1.0])), torch.tensor([0.25, 0.5]))
    with pytest.raises(UserError, match=r"loss.gamma=-1 is invalid"):
        Focal(gamma=-1)


def test_ldam_per_sample_is_the_margin_shifted_scaled_cross_entropy():
    from imbalanced.longtail.losses import LDAM, ldam_margins

    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 2, 1, 0])
    counts = torch.tensor([81.0, 16.0, 1.0])
    margins = ldam_margins(counts, 0.4)
    shifted = logits.clone()
    shifted[torch.arange(6), targets] -= margins[targets]
    expected = F.cross_entropy(2.0 * shifted, targets, reduction="none")
    loss = LDAM(max_margin=0.4, scale=2.0, reduction="none")
    torch.testing.assert_close(loss(logits, targets, torch.ones(3), counts), expected)


# ---- class-weight settings: the boundary values and the whole message ------------------------------
def test_manual_weights_accept_zero_for_a_class_and_refuse_each_bad_list_with_its_message():
    given = compute_class_weights([5, 3, 2], "manual", weights=[0, 1, 2.5])
    np.testing.assert_array_equal(given, [0, 1, 2.5])
    cases = [
        (
            None,
            "class_weights=manual needs a list: class_weights.weights=[w0,w1,...], one non-negative "
            "number per class",
        ),
        ("1,2,3", "class_weights=manual needs a list"),
        (["a", 1, 2], "class_weights.weights=['a', 1, 2] must be a list of numbers"),
        (
            [1, -0.5, 2],
            "class_weights.weights=[1.0, -0.5, 2.0] has negative or non-finite values [-0.5]; "
            "every weight must be a finite number >= 0",
        ),
        ([0, 0, 0], "class_weights.weights are all zero; at least one must be > 0"),
        (
            [1, 2],
            "class_weights.weights has 2 values but the data has 3 classes; give exactly one weight "
            "per class",
        ),
    ]
    for weights, message in cases:
        with pytest.raises(UserError) as error:
            compute_class_weights([5, 3, 2], "manual", weights=weights)
        assert str(error.value).startswith(message)  # the message starts with the setting it names


def test_effective_number_weights_and_beta_bounds():
    counts = np.array([1000.0, 100.0, 10.0])
    beta = 0.99
    raw = (1 - beta) / (1 - beta**counts)
    np.testing.assert_allclose(
        compute_class_weights(counts, "effective_number", beta=beta), raw * 3 / raw.sum(), rtol=1e-12
    )
    np.testing.assert_allclose(compute_class_weights(counts, "effective_number", beta=0), [1, 1, 1])
    for beta, message in [
        (1, "class_weights.beta=1 is outside [0, 1); use e.g. 0.999"),
        (-0.01, "class_weights.beta=-0.01 is outside [0, 1)"),
        (True, "class_weights.beta=True must be a number in [0, 1)"),
        ("0.9", "class_weights.beta='0.9' must be a number in [0, 1)"),
    ]:
        with pytest.raises(UserError) as error:
            compute_class_weights(counts, "effective_number", beta=beta)
        assert message in str(error.value)


# ---- boundaries the surviving mutants showed ---------------------------------------------------
def test_a_class_with_one_training_sample_is_weighted():
    weights = compute_class_weights([50, 1, 9], "balanced")
    np.testing.assert_allclose(weights, 60 / (3 * np.array([50, 1, 9])))


def test_per_class_loss_sums_cover_classes_absent_from_the_batch():
    from imbalanced.longtail.losses import per_class_mean

    sums, counts = per_class_mean(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0, 0, 1]), num_classes=4)
    torch.testing.assert_close(sums, torch.tensor([3.0, 4.0, 0.0, 0.0]))
    torch.testing.assert_close(counts, torch.tensor([2.0, 1.0, 0.0, 0.0]))


def test_focal_with_gamma_one_modulates_cross_entropy():
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    log_p = logits.log_softmax(-1)[torch.arange(8), targets]
    expected = -(1 - log_p.exp()) * log_p
    got = Focal(gamma=1.0, reduction="none")(logits, targets, torch.ones(3), torch.ones(3))
    torch.testing.assert_close(got, expected)


def test_sampler_probabilities_count_a_single_sample_class_and_default_to_class_balanced():
    from imbalanced.data.sampling import class_probabilities

    torch.testing.assert_close(
        class_probabilities(torch.tensor([1, 4, 0]), 0.5),
        torch.tensor([1 / 3, 2 / 3, 0.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        class_probabilities(torch.tensor([1, 4]), 0.0), torch.tensor([0.5, 0.5], dtype=torch.float64)
    )
    assert ClassAwareBatchSampler(torch.tensor([0, 0, 1]), batch_size=2).q == 0.0


def test_a_fixed_order_sampler_repeats_epoch_zeros_draw():
    """debug=overfit (shuffle off): every epoch draws the same batches; otherwise each epoch its own."""
    labels = torch.tensor([0] * 30 + [1] * 5)
    orders = {}
    for shuffle in (True, False):
        sampler = ClassAwareBatchSampler(labels, batch_size=7, q=0.0, seed=3)
        sampler.shuffle = shuffle
        orders[shuffle] = []
        for epoch in (0, 1):
            sampler.set_epoch(epoch)
            orders[shuffle].append(torch.cat([torch.as_tensor(b) for b in sampler]))
    assert torch.equal(orders[False][0], orders[False][1])
    assert not torch.equal(orders[True][0], orders[True][1])
    assert torch.equal(orders[True][0], orders[False][0])  # epoch 0's draw


@pytest.mark.parametrize("key", ["val_fraction", "test_fraction"])
@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1])
def test_split_fractions_are_open_intervals_named_by_key(key, value):
    x, y = _labels()
    fractions = {"val_fraction": 0.2, "test_fraction": 0.2, key: value}
    with pytest.raises(
        UserError,
        match=rf"^data\.{key}={value!r} is invalid; allowed: a finite number in "
        r"\(0, 1\)$",
    ):
        stratified_split(x, y, fractions["val_fraction"], fractions["test_fraction"], seed=0)


def test_split_fractions_must_leave_a_training_split():
    x, y = _labels()
    with pytest.raises(
        UserError,
        match=r"data.val_fraction \+ data.test_fraction = 1 is invalid; allowed: "
        r"a sum < 1",
    ):
        stratified_split(x, y, 0.5, 0.5, seed=0)
    assert len(stratified_split(x, y, 0.45, 0.45, seed=0)[0]) > 0


# ---- split floor (moved here from test_quality_defaults.py: mutmut selects this file) ----------
def test_floor_moves_validation_rows_of_rare_classes_only():
    y = np.repeat(np.arange(3), [200, 12, 3])
    x = np.arange(len(y), dtype=np.float32)[:, None]
    plain = stratified_split(x, y, 0.2, 0.2, seed=0)
    spared = stratified_split(x, y, 0.2, 0.2, seed=0, min_train_rows=20)
    assert np.array_equal(plain[4], spared[4])  # the test split is untouched
    train_counts = np.bincount(spared[1], minlength=3)
    val_counts = np.bincount(spared[3], minlength=3)
    # the head class keeps its split
    assert np.array_equal(np.bincount(plain[1], minlength=3)[0:1], train_counts[0:1])
    plain_val = np.bincount(plain[3], minlength=3)
    assert np.array_equal(val_counts > 0, plain_val > 0)  # a class in validation stays there ...
    assert val_counts[1] == 1 and train_counts[1] == np.bincount(plain[1], minlength=3)[1] + plain_val[1] - 1
    # ... and no row is lost or duplicated
    assert sorted(np.concatenate([spared[0], spared[2], spared[4]])[:, 0].tolist()) == x[:, 0].tolist()
    again = stratified_split(x, y, 0.2, 0.2, seed=0, min_train_rows=20)
    assert all(np.array_equal(a, b) for a, b in zip(spared, again, strict=True))  # seeded


def test_floor_zero_is_the_plain_stratified_split():
    y = np.repeat(np.arange(2), [50, 10])
    train, val = np.arange(40), np.arange(40, 60)
    assert spare_rare_classes(y, train, val, 0) == (train, val)


def test_tabular_floor_and_bad_value(tmp_path):
    from imbalanced.data.tables.tabular import TabularDataModule

    rows = ["f,label"] + [f"{i},{'a' if i < 300 else 'b'}" for i in range(320)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    module = TabularDataModule(path=str(path), target="label", min_train_rows=20, val_fraction=0.2)
    module.setup("fit")
    counts = np.bincount(module.splits.y_train, minlength=2)
    test_b = np.bincount(module.splits.y_test, minlength=2)[1]
    # class b (20 rows) keeps all its non-test rows for training but one, which validation keeps
    assert counts[1] == 20 - test_b - 1 and np.bincount(module.splits.y_val, minlength=2)[1] == 1
    with pytest.raises(UserError, match=r"data.min_train_rows=-1 is invalid"):
        TabularDataModule(path=str(path), target="label", min_train_rows=-1)


def test_a_class_with_no_training_rows_gets_validation_rows_back():
    y = np.array([0] * 30 + [1] * 4)
    train, val = np.arange(25), np.array([25, 26, 27, 28, 29, 30, 31, 32, 33])  # class 1 only in validation
    new_train, new_val = spare_rare_classes(y, train, val, min_train_rows=20)
    assert np.bincount(y[new_train], minlength=2)[1] == 3 and np.bincount(y[new_val], minlength=2)[1] == 1
    assert sorted(np.concatenate([new_train, new_val]).tolist()) == list(range(34))  # nothing lost


def test_min_train_rows_zero_is_allowed_and_negative_is_not():
    from imbalanced.data.splitting import check_min_train_rows

    assert check_min_train_rows(0) == 0
    with pytest.raises(UserError, match=r"^data.min_train_rows=-1 is invalid"):
        check_min_train_rows(-1)


def test_a_floor_of_one_row_gives_a_class_absent_from_training_exactly_one_row():
    y = np.array([0] * 30 + [1] * 4)
    train, val = np.arange(25), np.arange(25, 34)  # class 1 only in validation (4 rows)
    new_train, new_val = spare_rare_classes(y, train, val, min_train_rows=1)
    assert np.bincount(y[new_train], minlength=2).tolist() == [25, 1]
    assert np.bincount(y[new_val], minlength=2).tolist() == [5, 3]


def test_a_batch_whose_weights_sum_below_one_is_still_divided_by_its_weight_sum():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    targets = torch.tensor([0])
    weights = torch.tensor([0.4, 1.0, 1.6])  # one sample of the frequent class: weight sum 0.4
    counts = torch.tensor([100, 40, 25])
    unreduced = CrossEntropy(reduction="none")
    per_sample = unreduced(logits, targets, weights, counts)
    expected = F.cross_entropy(logits, targets)
    torch.testing.assert_close(unreduced.normalize(per_sample, targets, weights), expected)
    torch.testing.assert_close(CrossEntropy()(logits, targets, weights, counts), expected)  # reduction=mean


def test_the_loss_settings_and_an_unset_prior_are_refused_with_the_whole_message():
    from imbalanced.longtail.losses import log_prior

    with pytest.raises(UserError) as error:
        CrossEntropy(normalize="bogus")
    assert str(error.value) == "loss.normalize='bogus' is invalid; allowed: one of 'weight_sum', 'batch_size'"
    with pytest.raises(RuntimeError) as error:
        log_prior(torch.zeros(3))
    assert str(error.value) == (
        "class_counts are all zero: the module was not set up from data (or loaded from a checkpoint "
        "without counts); logit adjustment needs the training counts"
    )


def test_each_training_batch_draws_its_dropout_masks_from_its_place_in_the_run():
    from types import SimpleNamespace

    from imbalanced.callbacks.step_seed import StepSeed

    dropout = torch.nn.Dropout(0.5)
    hook = StepSeed(seed=7).on_train_batch_start

    def mask(rank: int, epoch: int, batch_idx: int) -> torch.Tensor:
        hook(SimpleNamespace(global_rank=rank, current_epoch=epoch), None, None, batch_idx)
        return dropout(torch.ones(64)) > 0

    first = mask(0, 1, 3)
    torch.rand(100)  # a resumed run draws in another order before this batch (sanity check, loaders)
    assert torch.equal(mask(0, 1, 3), first)
    assert not torch.equal(mask(0, 1, 4), first) and not torch.equal(mask(0, 2, 3), first)
    assert not torch.equal(mask(1, 1, 3), first)  # DDP ranks draw their own masks
    StepSeed(seed=8).on_train_batch_start(SimpleNamespace(global_rank=0, current_epoch=1), None, None, 3)
    assert not torch.equal(dropout(torch.ones(64)) > 0, first)  # another run seed


def test_the_default_callbacks_seed_every_training_batch_from_the_run_seed(compose_cfg):
    from hydra.utils import instantiate

    from imbalanced.callbacks.step_seed import StepSeed

    built = instantiate(compose_cfg("seed=5").callbacks.step_seed)
    assert isinstance(built, StepSeed) and built.seed == 5
