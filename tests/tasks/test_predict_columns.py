"""predict.py carries what names each row: the id column(s) `data.id` (saved with a tabular run or
given on predict), or every input column with `+data.keep_columns=true`; none by default."""

from __future__ import annotations

import pandas as pd
import pytest
from inprocess import run_app
from tabular_tables import make_table
from tiny_run import feature_table

from imbalanced.data.tables.feature_table import FeatureTableDataModule
from imbalanced.data.tables.tabular import TabularDataModule
from imbalanced.errors import UserError
from imbalanced.from_config import build_datamodule

QUIET_APP = ["+trainer.enable_progress_bar=false"]


def rows_with_ids(tmp_path, rows: int = 4):
    """The real checkpoint's 20 features and an id column `row_id` (not a feature)."""
    table = pd.read_csv(feature_table(tmp_path / "features.csv", rows=rows))
    table.insert(0, "row_id", [f"r{i}" for i in range(rows)])
    table.to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path / "rows.csv"


def predict(checkpoint, table, tmp_path, monkeypatch, *overrides):
    output = tmp_path / "out.csv"
    code = run_app(
        "predict.py",
        f"ckpt_path={checkpoint}",
        f"data.path={table}",
        f"output_path={output}",
        *QUIET_APP,
        *overrides,
        run_dir=tmp_path / "run",
        monkeypatch=monkeypatch,
    )
    return code, output


def test_predict_writes_the_id_column_first(real_checkpoint, tmp_path, monkeypatch, capsys):
    code, output = predict(real_checkpoint, rows_with_ids(tmp_path), tmp_path, monkeypatch, "+data.id=row_id")
    assert code == 0
    written = pd.read_csv(output)
    assert list(written.columns[:2]) == ["row_id", "prediction"]
    assert written["row_id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert f"wrote 4 predictions to {output}" in capsys.readouterr().out  # shown on the terminal


def test_keep_columns_carries_every_input_column(real_checkpoint, tmp_path, monkeypatch):
    table = rows_with_ids(tmp_path, rows=2)
    code, output = predict(real_checkpoint, table, tmp_path, monkeypatch, "+data.keep_columns=true")
    assert code == 0
    written = pd.read_csv(output)
    inputs = list(pd.read_csv(table).columns)
    assert list(written.columns[: len(inputs) + 1]) == [*inputs, "prediction"]
    assert written["x3"].tolist() == [0, 1]


def test_by_default_only_the_predictions_are_written(real_checkpoint, tmp_path, monkeypatch):
    code, output = predict(real_checkpoint, feature_table(tmp_path / "rows.csv"), tmp_path, monkeypatch)
    assert code == 0
    assert list(pd.read_csv(output).columns)[0] == "prediction"


def test_an_id_column_the_file_lacks_is_one_error(tmp_path):
    table = feature_table(tmp_path / "rows.csv")
    spec = {
        "encoding": {
            "columns": [f"x{i}" for i in range(20)],
            "numeric": [f"x{i}" for i in range(20)],
            "categorical": {},
        }
    }
    with pytest.raises(UserError, match=r"has no column\(s\) \['row_id'\] \(named by data.id"):
        FeatureTableDataModule.read_inputs(
            str(table),
            setting="data.path",
            config={"id": "row_id"},
            spec=spec,
            class_names=["a", "b"],
            labelled=False,
        )


def test_a_tabular_id_column_is_not_a_feature_and_is_saved(compose_cfg, tmp_path):
    frame = make_table(300)
    frame.insert(0, "customer", [f"c{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = compose_cfg(
        "data=tabular", f"data.path={tmp_path / 't.csv'}", "data.target=label", "data.id=customer"
    )
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    assert isinstance(datamodule, TabularDataModule)
    assert not any(name.startswith("customer") for name in datamodule.feature_names)
    with pytest.raises(UserError, match=r"data.id names column\(s\) \['nope'\]"):
        build_datamodule(
            compose_cfg(
                "data=tabular", f"data.path={tmp_path / 't.csv'}", "data.target=label", "data.id=nope"
            )
        ).setup("fit")
