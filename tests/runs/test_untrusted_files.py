"""Code from a checkpoint file never runs (pickle payloads, config `_target_`s).

Each malicious file carries a payload that would create a marker file; the tests prove the command
refuses the file with one `error:` line and exit 2, and that the marker was never created.
"""

from __future__ import annotations

import fractions
import os
import re
import warnings

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from inprocess import run_app
from tiny_run import feature_table

from conftest import record_checkpoint_reads
from imbalanced.errors import UserError
from imbalanced.runs import safe_loading
from imbalanced.runs.safe_loading import (
    _reason,
    check_targets,
    config_dirs,
    config_group_targets,
    is_allowed_target,
    named_targets,
    read_checkpoint,
    trusted_targets,
)

QUIET_APP = ["+trainer.enable_progress_bar=false"]


class _Payload:
    """Pickles to a call of os.system: unpickling with weights_only=False runs the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_bomb(tmp_path):
    marker = tmp_path / "pickle_ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "hyper_parameters": {"x": _Payload(marker)}}, path)
    return path, marker


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
def test_a_pickle_payload_never_runs(script, tmp_path, monkeypatch, capsys):
    path, marker = _pickle_bomb(tmp_path)
    extra = ["data.n_samples=300"] if script == "train.py" else list(QUIET_APP)
    if script == "predict.py":
        (tmp_path / "x.csv").write_text("x0\n1\n")
        extra.append(f"data.path={tmp_path / 'x.csv'}")
    code = run_app(script, f"ckpt_path={path}", *extra, run_dir=tmp_path / "run", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert not marker.exists(), "the pickle payload ran"
    assert "is refused: it holds Python objects" in err and "system" in err


def test_read_checkpoint_refuses_truncated_and_foreign_files(tmp_path, real_checkpoint):
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(real_checkpoint.read_bytes()[:5000])
    text = tmp_path / "notes.ckpt"
    text.write_text("hello\n")
    for path in (truncated, text):
        with pytest.raises(UserError, match="is not a readable checkpoint") as error:
            read_checkpoint(path)
        assert "\n" not in str(error.value)
    assert "state_dict" in read_checkpoint(real_checkpoint)  # our own checkpoints load with weights_only


def _with_backbone_payload(real_checkpoint, tmp_path, target="os.system"):
    marker = tmp_path / "target_ran"
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["backbone"]["hidden_sizes"] = {
        "_target_": target,
        "_args_": [f"touch {marker}"],
    }
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_a_nested_config_target_in_a_checkpoint_never_runs(
    script, real_checkpoint, tmp_path, monkeypatch, capsys
):
    path, marker = _with_backbone_payload(real_checkpoint, tmp_path)
    extra = list(QUIET_APP)
    if script == "predict.py":
        feature_table(tmp_path / "x.csv")
        extra.append(f"data.path={tmp_path / 'x.csv'}")
    code = run_app(script, f"ckpt_path={path}", *extra, run_dir=tmp_path / "run", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert not marker.exists(), "a _target_ from the checkpoint ran"
    assert "backbone.hidden_sizes._target_='os.system'" in err
    assert "trusted_targets=[os.system]" in err


def test_load_classifier_reads_the_checkpoint_once_with_weights_only(real_checkpoint, monkeypatch):
    from imbalanced.classifier import ImbalancedClassifier
    from imbalanced.tasks.from_checkpoint import load_classifier

    expected = ImbalancedClassifier.load_from_checkpoint(
        real_checkpoint, map_location="cpu", weights_only=True
    )
    reads = record_checkpoint_reads(monkeypatch)
    model = load_classifier(real_checkpoint)
    assert reads == [True]  # one read of a possibly large file, tensors and plain data only
    assert not model.training and model.hparams == expected.hparams
    state, wanted = model.state_dict(), expected.state_dict()
    assert state.keys() == wanted.keys() and all(torch.equal(state[k], wanted[k]) for k in wanted)
    assert model.posthoc_tau == expected.posthoc_tau
    assert model.prediction_policy.state_dict() == expected.prediction_policy.state_dict()


def test_the_allow_list():
    groups = {"lightning.pytorch.callbacks.ModelCheckpoint"}
    assert is_allowed_target("imbalanced.models.MLP", (), groups)  # re-exported class of the package
    assert is_allowed_target("imbalanced.longtail.losses.Focal", (), groups)
    assert is_allowed_target("lightning.pytorch.callbacks.ModelCheckpoint", (), groups)
    for target in (
        "os.system",
        "builtins.eval",
        "imbalanced.runs.config_checks.os.system",
        "imbalanced.runs.atomic_writes.shutil.rmtree",
        "imbalanced.tasks.train.train",
        "imbalanced.data.tables.tabular.read_table",
        "",
        None,
        3,
        "imbalanced.runs.resume.Path",  # a foreign class imported by a module of the package
        "imbalanced.classifier.DEFAULT_LOSS",
    ):  # a constant, not a class
        assert not is_allowed_target(target, (), groups), target
    assert is_allowed_target("my_pkg.Net", ["my_pkg.Net"], groups)
    assert is_allowed_target("my_pkg.sub.Net", ["my_pkg."], groups)
    assert not is_allowed_target("my_pkg_evil.Net", ["my_pkg."], groups)
    found = named_targets({"a": [{"_target_": "x.Y", "b": {"_target_": "z.W"}}]})
    assert found == [("a[0]._target_", "x.Y"), ("a[0].b._target_", "z.W")]
    with pytest.raises(UserError) as error:
        check_targets({"hp": {"a": [{"_target_": "x.Y"}]}})
    assert str(error.value) == (
        "ckpt_path= is refused: its hyperparameter hp.a[0]._target_='x.Y' names code this template does not "
        "trust (allowed: classes of the imbalanced package and the _target_s of the config groups). If you "
        "wrote that checkpoint and trust the code, allow it explicitly: trusted_targets=[x.Y], or list its "
        "package once in configs/trusted/packages.yaml (trusted_packages: [x])"
    )
    # a package listed once (trusted_packages) is a prefix; the exact list stays as given
    assert trusted_targets({"trusted_packages": ["my_pkg"], "trusted_targets": "a.B"}) == ["a.B", "my_pkg."]
    assert trusted_targets({"trusted_packages": "my_pkg."}) == ["my_pkg."]
    # without an explicit list, the repo's config groups are read: configs/optimizer names AdamW
    assert is_allowed_target("torch.optim.AdamW") and not is_allowed_target("torch.optim.Adamax")


def test_the_config_groups_targets_are_trusted_and_a_user_can_extend(real_checkpoint, tmp_path):
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    check_targets(checkpoint["hyper_parameters"])  # a checkpoint of this template passes
    path, marker = _with_backbone_payload(real_checkpoint, tmp_path, target="collections.OrderedDict")
    with pytest.raises(UserError, match="collections.OrderedDict"):
        check_targets(torch.load(path, weights_only=True)["hyper_parameters"])
    check_targets(
        torch.load(path, weights_only=True)["hyper_parameters"], trusted=["collections.OrderedDict"]
    )


def test_read_checkpoint_names_the_setting_and_what_is_wrong(tmp_path):
    with pytest.raises(UserError, match=r"^data.init=.*missing.ckpt: file not found$"):
        read_checkpoint(tmp_path / "missing.ckpt", setting="data.init")
    tensor = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(UserError) as error:
        read_checkpoint(tensor)
    assert str(error.value) == f"ckpt_path={tensor} is not a checkpoint (it holds a Tensor)"
    path, marker = _pickle_bomb(tmp_path)
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert not marker.exists(), "the pickle payload ran"
    refused = f"ckpt_path={path} is refused: it holds Python objects, not only tensors and plain data ("
    message = str(error.value)
    assert message.startswith(refused) and "GLOBAL" in message and "system" in message  # torch's line
    # torch's reason for a cut-off file, kept to one line of at most 200 characters
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(UserError) as error:
        read_checkpoint(cut)
    prefix = f"ckpt_path={cut} is not a readable checkpoint: not a PyTorch file, or cut off ("
    reason = str(error.value).removeprefix(prefix)[:-1]
    assert str(error.value).startswith(prefix) and reason.startswith("PytorchStreamReader failed")
    assert len(reason) == 200 and "\n" not in reason
    # a pickle opcode the safe loader lacks: torch's lines of advice are dropped, its reason kept
    newer = tmp_path / "protocol5.ckpt"
    torch.save({"state_dict": {}, "blob": bytearray(b"abc")}, newer, pickle_protocol=5)
    with warnings.catch_warnings(), pytest.raises(UserError) as error:
        warnings.simplefilter("ignore", UserWarning)  # torch's note on the protocol
        read_checkpoint(newer)
    prefix = f"ckpt_path={newer} is not a readable checkpoint: not a PyTorch file, or cut off ("
    reason = str(error.value).removeprefix(prefix)
    assert str(error.value).startswith(prefix) and reason.startswith("Unsupported operand")  # not the advice


def test_trusted_targets_take_a_list_or_one_string():
    assert trusted_targets({}) == [] and trusted_targets(None) == []
    assert trusted_targets({"trusted_targets": None}) == []
    assert trusted_targets({"trusted_targets": "my_pkg."}) == ["my_pkg."]
    assert trusted_targets({"trusted_targets": ["my_pkg.Net", "other."]}) == ["my_pkg.Net", "other."]


def test_a_class_outside_the_allowed_globals_is_refused_as_code_not_as_a_cut_file(tmp_path):
    # os.system's line says "unsupported ... blocked"; a harmless foreign class's only "Unsupported"
    path = tmp_path / "fraction.ckpt"
    torch.save({"state_dict": {}, "ratio": fractions.Fraction(1, 3)}, path)
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert str(error.value) == (
        f"ckpt_path={path} is refused: it holds Python objects, not only tensors and plain data "
        "(WeightsUnpickler error: Unsupported global: GLOBAL fractions.Fraction was not an allowed global "
        "by default. Please use `torch.serialization.add_safe_globals([fractions.Fraction])` or the "
        "`torch.serialization.safe_globals([fractions.Fraction])` context manager to allowlist this global "
        "if you trust this class/function.); loading it could run code from the file. Only checkpoints "
        "readable with torch.load(weights_only=True) are loaded"
    )


def test_torchs_opt_out_environment_variable_does_not_reopen_pickle_loading(tmp_path, monkeypatch):
    # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 turns weights_only off wherever a caller left it unset
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    path, marker = _pickle_bomb(tmp_path)
    with pytest.raises(UserError, match="is refused: it holds Python objects"):
        read_checkpoint(path)
    assert not marker.exists(), "the pickle payload ran"


def test_an_unreadable_file_without_a_reason_is_named_by_the_errors_type(tmp_path, monkeypatch):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"\0")

    def load_failing_silently(*args, **kwargs):
        raise EOFError()

    monkeypatch.setattr(torch, "load", load_failing_silently)
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert str(error.value) == (
        f"ckpt_path={path} is not a readable checkpoint: not a PyTorch file, or cut off (EOFError)"
    )


def test_the_reason_of_torchs_error_is_its_first_line_that_is_not_advice():
    assert _reason("") == ""
    assert _reason("\n  \n") == ""
    assert _reason("Weights only load failed.\n\nPlease file an issue") == "Weights only load failed."
    assert _reason("Weights only load failed.\n  EOF reached  \nCheck the documentation") == "EOF reached"


def test_the_config_dirs_are_the_repos_and_those_a_run_adds(tmp_path, monkeypatch):
    extra = tmp_path / "my_configs"
    (extra / "model").mkdir(parents=True)
    (extra / "model" / "mine.yaml").write_text("_target_: my_pkg.Net\nhidden: 3\n")
    repo_configs = safe_loading._REPO_CONFIGS
    assert repo_configs.name == "configs" and (repo_configs / "train.yaml").is_file()
    assert config_dirs() == [repo_configs]  # outside a Hydra app
    assert config_group_targets([extra]) == {"my_pkg.Net"}  # an explicit list is read alone
    with initialize_config_dir(config_dir=str(repo_configs), version_base=None):
        cfg = compose("train", overrides=[f"hydra.searchpath=[file://{extra}]"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    try:
        assert config_dirs() == [repo_configs, extra]  # Hydra's package and schema sources are not dirs
        assert is_allowed_target("my_pkg.Net") and is_allowed_target("torch.optim.AdamW")
    finally:
        HydraConfig.instance().cfg = None
    # an installed package without the repo's configs/ trusts only the dirs a run adds
    monkeypatch.setattr(safe_loading, "_REPO_CONFIGS", tmp_path / "absent")
    assert config_dirs() == []
    assert not is_allowed_target("torch.optim.AdamW")


def _with_interpolation(real_checkpoint, tmp_path, where):
    """A checkpoint whose hyperparameters hide a `_target_` in an OmegaConf interpolation: the
    allow-list reads the string, instantiation would resolve it (oc.decode parses it into a node)."""
    marker = tmp_path / "interpolation_ran"
    payload = "{_target_: pathlib.Path.touch, _args_: ['" + str(marker) + "']}"  # Hydra blocks os.system
    checkpoint = torch.load(real_checkpoint, weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    if where == "backbone":
        hparams["backbone"]["hidden_sizes"] = '${oc.decode:"' + payload + '"}'
        key = "backbone.hidden_sizes"
    else:  # the saved data config, which eval.py instantiates to rebuild the test split
        hparams["data"]["config"]["seed"] = "${oc.decode:${oc.env:IMBALANCED_TEST_PAYLOAD}}"
        key = "data.config.seed"
    path = tmp_path / f"interpolated_{where}.ckpt"
    torch.save(checkpoint, path)
    return path, marker, key, payload


@pytest.mark.parametrize(
    ("script", "where"), [("eval.py", "backbone"), ("eval.py", "data"), ("predict.py", "backbone")]
)
def test_an_interpolation_in_a_checkpoint_is_refused_before_anything_resolves_it(
    script, where, real_checkpoint, tmp_path, monkeypatch, capsys
):
    path, marker, key, payload = _with_interpolation(real_checkpoint, tmp_path, where)
    monkeypatch.setenv("IMBALANCED_TEST_PAYLOAD", payload)  # what oc.env hands to oc.decode
    extra = list(QUIET_APP)
    if script == "predict.py":
        feature_table(tmp_path / "x.csv")
        extra.append(f"data.path={tmp_path / 'x.csv'}")
    code = run_app(script, f"ckpt_path={path}", *extra, run_dir=tmp_path / "run", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert not marker.exists(), "an interpolation in the checkpoint ran code"
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"hyperparameter {key} holds an interpolation" in lines[0], err
    assert "Traceback" not in err


def test_interpolations_are_refused_wherever_they_are_even_in_keys():
    for hparams, key in [
        ({"a": {"b": ["x", "${oc.env:HOME}"]}}, "a.b[1]"),
        ({"a": {"${x}": 1}}, "a"),
        ({"class_names": ["ok", "pre${y}post"]}, "class_names[1]"),
    ]:
        with pytest.raises(UserError, match=rf"hyperparameter {re.escape(key)} holds an interpolation"):
            check_targets(hparams)
    check_targets({"a": {"b": ["$x", "{y}", "$ {z}"]}})  # no `${`: plain strings pass


def test_a_folder_given_as_checkpoint_is_called_a_folder(tmp_path):
    with pytest.raises(UserError) as error:
        read_checkpoint(tmp_path)
    assert str(error.value) == (
        f"ckpt_path={tmp_path} is a folder, not a checkpoint file; give a file "
        f"such as {tmp_path / 'checkpoints' / 'last.ckpt'}"
    )
