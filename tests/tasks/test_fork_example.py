"""Proof of the data-to-model contract: a modality that is not a float matrix, added by files alone.

tests/fork_example/ holds a fork's datamodule (long-tailed 8x8 uint8 digit images), backbone (a tiny
CNN), input normalization and YAML. They reach `train.py` and `eval.py` through Hydra's search path;
nothing in src/ knows about them. One module-scoped training run is shared by the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from inprocess import run_app
from readme_commands import readme_commands
from sklearn.metrics import balanced_accuracy_score

from conftest import ROOT, read_json

FORK = Path(__file__).resolve().parents[1] / "fork_example"
SEARCHPATH = f"hydra.searchpath=[file://{FORK / 'configs'}]"
TEST_KEYS = ("test/accuracy", "test/balanced_accuracy", "test/macro_f1")

pytestmark = pytest.mark.slow


def readme_fork_command(script: str) -> list[str]:
    """The README's fork-example command for `script` (train.py, eval.py), its run directory and
    `$PWD` left for the test to fill in."""
    command = next(c for c in readme_commands(script) if any("fork_example" in word for word in c))
    return [word.replace("$PWD", str(ROOT)) for word in command if not word.startswith("hydra.run.dir=")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The README's train.py command of the fork example (data=digit_images model=tiny_cnn,
    class-weighted, 10 short epochs), in-process."""
    root = tmp_path_factory.mktemp("fork")
    command = readme_fork_command("train.py")
    assert SEARCHPATH in command and "data=digit_images" in command
    code = run_app(
        "train.py",
        *command,
        "callbacks.progress_bar.refresh_rate=0",
        run_dir=root / "train",
    )
    assert code == 0
    best = sorted((root / "train" / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1 and (root / "train" / "checkpoints" / "last.ckpt").is_file()
    # the checkpoint the run tested (test_checkpoint: last): eval/predict must reproduce its metrics
    return {"root": root, "dir": root / "train", "ckpt": root / "train" / "checkpoints" / "last.ckpt"}


def _rebuilt_datamodule(model):
    from hydra.utils import instantiate

    datamodule = instantiate(model.hparams.data["config"])  # the checkpoint's data config, nothing else
    datamodule.setup("predict")
    return datamodule


def test_trains_with_class_weights_of_the_long_tailed_training_split(run):
    from fork_example.images import NAMES

    weights = read_json(run["dir"] / "class_weights.json")
    metrics = read_json(run["dir"] / "metrics.json")
    assert weights["strategy"] == "balanced" and weights["class_names"] == metrics["class_names"] == NAMES
    counts = np.asarray(weights["counts"])
    assert counts[0] >= 9 * counts[-1]  # imbalance_ratio=10, head first
    np.testing.assert_allclose(weights["weights"], counts.sum() / (len(counts) * counts), rtol=1e-6)
    assert metrics["test/balanced_accuracy"] > 0.3  # well above chance (0.1) after 10 short epochs


def test_checkpoint_alone_predicts_from_raw_uint8_images(run):
    from fork_example.images import ChannelNormalize

    from imbalanced.classifier import ImbalancedClassifier

    model = ImbalancedClassifier.load_from_checkpoint(run["ckpt"], map_location="cpu").eval()
    assert model.hparams.backbone["in_channels"] == 1  # completed by the datamodule, saved as built
    assert isinstance(model.input_transform, ChannelNormalize)
    weights = read_json(run["dir"] / "class_weights.json")
    np.testing.assert_allclose(model.class_weights.numpy(), weights["weights"], rtol=1e-6)
    np.testing.assert_array_equal(model.class_counts.numpy(), weights["counts"])

    datamodule = _rebuilt_datamodule(model)
    images, labels = next(iter(datamodule.test_dataloader()))
    assert images.dtype == torch.uint8 and images.shape[1:] == (1, 8, 8)  # not cast by the base
    mean = torch.as_tensor(datamodule.splits.x_train, dtype=torch.float64).mean()
    assert model.input_transform.mean.item() == pytest.approx(mean.item(), rel=1e-5)  # fitted on train
    with torch.no_grad():
        direct = model(images).argmax(-1)
    evaluated = read_json(run["dir"] / "metrics.json")
    assert balanced_accuracy_score(labels.numpy(), direct.numpy()) == pytest.approx(
        evaluated["test/balanced_accuracy"], abs=1e-6
    )


def test_eval_py_reproduces_the_training_test_metrics(run, monkeypatch):
    out = run["root"] / "eval"
    # the fork's code lives outside the imbalanced package: eval.py instantiates it only when trusted
    command = readme_fork_command("eval.py")  # the README's, on this run's checkpoint
    assert command[0] == "ckpt_path=runs/images/checkpoints/last.ckpt"
    code = run_app(
        "eval.py",
        f"ckpt_path={run['ckpt']}",
        *command[1:],
        "+trainer.enable_progress_bar=false",
        run_dir=out,
        monkeypatch=monkeypatch,
    )
    assert code == 0
    training, evaluated = read_json(run["dir"] / "metrics.json"), read_json(out / "metrics.json")
    for key in TEST_KEYS:
        assert evaluated[key] == pytest.approx(training[key], abs=1e-6), key
    assert evaluated["test/per_class_recall"] == pytest.approx(training["test/per_class_recall"], abs=1e-6)


def test_predict_from_the_checkpoint_through_the_trainer(run):
    import lightning as L

    from imbalanced.classifier import ImbalancedClassifier

    model = ImbalancedClassifier.load_from_checkpoint(run["ckpt"], map_location="cpu")
    datamodule = _rebuilt_datamodule(model)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    model.predict_decisions = True  # the decisions besides the (calibrated) probabilities
    batches = trainer.predict(model, dataloaders=datamodule.test_dataloader())
    probabilities = torch.cat([batch["probabilities"] for batch in batches])
    assert probabilities.shape == (len(datamodule.splits.y_test), 10)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(len(probabilities)))
    predicted = torch.cat([batch["prediction"] for batch in batches]).numpy()
    evaluated = read_json(run["dir"] / "metrics.json")
    assert balanced_accuracy_score(datamodule.splits.y_test, predicted) == pytest.approx(
        evaluated["test/balanced_accuracy"], abs=1e-6
    )


def test_the_core_names_nothing_of_the_fork():
    sources = [p for p in (ROOT / "src" / "imbalanced").rglob("*.py")]
    assert sources
    for path in sources:
        text = path.read_text()
        assert "fork_example" not in text and "TinyCNN" not in text, path
