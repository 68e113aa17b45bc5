"""Post-hoc logit adjustment in the module, and head/medium/tail recall in metrics.json."""

import warnings

import pytest
import torch

from imbalanced.classifier import ImbalancedClassifier
from imbalanced.errors import UserError
from imbalanced.longtail.losses import posthoc_adjust
from imbalanced.longtail.techniques import ImbalanceWarning, check_techniques
from imbalanced.reporting.run_files import frequency_groups, metrics_report

COUNTS = torch.tensor([900.0, 90.0, 10.0])


def test_posthoc_adjust_subtracts_tau_log_prior():
    logits = torch.tensor([[2.0, 1.0, 0.5]])
    expected = logits - 0.5 * torch.log(COUNTS / COUNTS.sum())
    torch.testing.assert_close(posthoc_adjust(logits, COUNTS, 0.5), expected)
    assert posthoc_adjust(logits, COUNTS, 0.0) is logits
    balanced = posthoc_adjust(logits, torch.full((3,), 7.0), 1.0)
    torch.testing.assert_close(balanced.softmax(-1), logits.softmax(-1))  # uniform prior: no change


def test_module_applies_posthoc_tau_in_eval_and_predict():
    model = ImbalancedClassifier(
        num_classes=3,
        backbone={"_target_": "imbalanced.models.MLP", "hidden_sizes": [4], "in_features": 2},
    )
    model.class_counts.copy_(COUNTS)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    plain = model.predict_step(x, 0)
    model.posthoc_tau = 1.0
    adjusted = model.predict_step(x, 0)
    expected = torch.softmax(model(x) - torch.log(COUNTS / COUNTS.sum()), -1)
    torch.testing.assert_close(adjusted, expected)
    assert adjusted[:, 2].mean() > plain[:, 2].mean()  # mass moves to the rare class
    model.test_metrics.reset()
    model._eval_step((x, expected.argmax(-1)), model.test_metrics)
    assert model.test_metrics.compute()["test/accuracy"] == 1.0


def test_frequency_groups_rule():
    counts = [5, 100, 40, 40, 7, 300, 1, 60, 20, 10]
    groups = frequency_groups(counts)
    assert groups == {"head": [5, 1, 7, 2], "medium": [3, 8, 9], "tail": [4, 0, 6]}
    assert frequency_groups([3, 9]) == {"head": [1], "medium": [], "tail": [0]}


def test_metrics_report_has_group_recalls():
    logged = {"test/recall/0": 1.0, "test/recall/1": 0.5, "test/recall/2": 0.25, "test/recall/3": 0.0}
    report = metrics_report({"test": logged}, ["a", "b", "c", "d"], class_counts=[50, 20, 10, 5])
    assert report["head_classes"] == ["a", "b"] and report["tail_classes"] == ["d"]
    assert report["test/head_recall"] == pytest.approx(0.75)
    assert report["test/medium_recall"] == pytest.approx(0.25)
    assert report["test/tail_recall"] == pytest.approx(0.0)


def test_technique_checks(compose_cfg):
    with pytest.warns(ImbalanceWarning, match="corrects again"):
        check_techniques(compose_cfg("loss=balanced_softmax", "class_weights=balanced"))
    with pytest.warns(ImbalanceWarning, match="posthoc_tau"):
        check_techniques(compose_cfg("posthoc_tau=1.0", "class_weights=balanced"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_techniques(compose_cfg("loss=logit_adjusted", "class_weights=none"))
        check_techniques(compose_cfg("loss=ldam", "class_weights=effective_number", "drw_start_epoch=3"))
        check_techniques(compose_cfg("sampler=class_balanced", "class_weights=none"))
    for bad in ("posthoc_tau=-1", "drw_start_epoch=1.5", "sampler.q=3", "loss=ldam loss.scale=0"):
        with pytest.raises(UserError):
            check_techniques(compose_cfg(*bad.split(), "class_weights=none"))
