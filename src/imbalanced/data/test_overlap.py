"""Test data that is the training data: refused unless the user says it is meant.

A fixed test source (`data.test_path` for tables, `data.test_dir` for images) that is the training
source (`data.path`, `data.root`, `data.train_dir`) scores every training row as a test row, and
the test metrics silently become training metrics. Paths are compared as the files they are:
resolved through links, the same file under two names (hard links) included, and for folders one
inside the other. `allow_test_overlap=true` (train.py, eval.py) scores them anyway, with a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from imbalanced.errors import UserError

log = logging.getLogger(__name__)

TRAIN_SOURCES = ("path", "root", "train_dir")
TEST_SOURCES = ("test_path", "test_dir")


def _real(value: Any) -> str | None:
    if not isinstance(value, (str, os.PathLike)) or not str(value) or str(value) == "???":
        return None
    return os.path.realpath(os.path.expanduser(str(value)))


def _overlap(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        if os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    if os.path.isdir(a) and os.path.isdir(b):  # one folder inside the other shares images
        return a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)
    return False


def check_test_is_not_train(
    config: Mapping[str, Any], allow: bool = False, trained_on: Mapping[str, Any] | None = None
) -> None:
    """UserError if a test source of the data `config` is one of its training sources, or of
    `trained_on` (eval.py: the data config saved in the checkpoint); a warning when `allow`."""
    training = [
        (f"data.{key}", (trained_on or {}).get(key), "the checkpoint's training data ")
        for key in TRAIN_SOURCES
    ]
    training += [(f"data.{key}", config.get(key), "") for key in TRAIN_SOURCES]
    for test_key in TEST_SOURCES:
        test = _real(config.get(test_key))
        if test is None:
            continue
        for train_key, value, whose in training:
            train = _real(value)
            if train is None or not _overlap(test, train):
                continue
            message = (
                f"data.{test_key}={config.get(test_key)} is {whose}{train_key}={value} (resolved: "
                f"{test}); every test row would be a training row, so the test metrics would be "
                "training metrics"
            )
            if allow:
                log.warning("%s (scored anyway: allow_test_overlap=true)", message)
                return
            raise UserError(
                f"{message}. allowed: test data kept apart from training, or "
                "allow_test_overlap=true to score it anyway"
            )
