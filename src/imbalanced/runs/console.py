"""One clean line per log message in the terminal.

`import lightning` gives the `lightning` logger its own console handler ("INFO: ...") that also
propagates to the root logger, where Hydra's handler prints the same record again in Hydra's
format. Under a Hydra app (root handlers configured) Lightning's own console handler is removed,
so each message appears once, in Hydra's format (and in the run's .log file). Lightning's
advertising tips ("💡 Tip: ... try installing litlogger/litmodels") are dropped.

Framework messages that are known to be harmless here, and would otherwise print on every run, are
silenced by their exact text (the lists below, each with why), in this one place; any other
warning or message still shows. The informational ones stay in the run's .log file.
"""

from __future__ import annotations

import logging
import re
import warnings

LIGHTNING_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"
ADVERT_PREFIX = "💡 Tip:"


# Python warnings (printed to stderr by the warnings module): regexes of the message's start
KNOWN_HARMLESS_WARNINGS = (
    # Lightning's own tree utilities calling a torch API torch deprecated; nothing a user can change
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # the module's own batch move (it skips batches already on the device); intended
    r"You have overridden `transfer_batch_to_device` in `LightningModule` but have passed in a "
    r"`LightningDataModule`",
    # small data: the epoch-level curves are still logged
    r"The number of training batches \(\d+\) is smaller than the logging interval",
)
# Lightning's informational log lines: shown in the .log file, not in the terminal
CONSOLE_HIDDEN_INFO = (
    r"(GPU|TPU|HPU|IPU) available: ",  # the trainer settings are in .hydra/config.yaml
    r"`Trainer\.fit` stopped: `max_(epochs|steps)=\d+` reached\.",  # the planned end (budget line)
    r"Restoring states from the checkpoint path at ",  # followed by "Loaded model weights ... at"
)
_HIDDEN_INFO = re.compile("|".join(f"(?:{pattern})" for pattern in CONSOLE_HIDDEN_INFO))


class HideKnownInfo(logging.Filter):
    """On the terminal handler: drop Lightning's routine INFO lines listed above."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("lightning"):
            return True
        return not _HIDDEN_INFO.match(str(record.getMessage()))


def silence_known_warnings() -> None:
    """Idempotent (warnings.filterwarnings drops a duplicate entry)."""
    for pattern in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(ADVERT_PREFIX)


def tidy_lightning_logging() -> None:
    """Idempotent; call after Hydra configured logging (inside the task). Every app calls it
    (runs/exit_codes.run_task)."""
    root = logging.getLogger()
    lightning_logger = logging.getLogger("lightning")
    if root.handlers:
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:  # its console handler, not a file handler
                lightning_logger.removeHandler(handler)
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler and not any(
            isinstance(f, HideKnownInfo) for f in handler.filters
        ):  # the terminal, not the file
            handler.addFilter(HideKnownInfo())
    silence_known_warnings()
    rank_zero = logging.getLogger(LIGHTNING_RANK_ZERO_LOGGER)
    if not any(isinstance(f, DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdverts())


def show(text: str) -> None:
    """Print `text` as it is (no log prefix on each line) and write it to the run's log file too
    (train.log / eval.log hold what the terminal showed, e.g. the per-class table)."""
    print(f"\n{text}\n", flush=True)
    record = logging.LogRecord("imbalanced.results", logging.INFO, __file__, 0, "\n%s", (text,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
