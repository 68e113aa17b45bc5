"""One clean line per log message in the terminal.

`import lightning` gives the `lightning` logger its own console handler ("INFO: ...") that also
propagates to the root logger, where Hydra's handler prints the same record again in Hydra's
format. Under a Hydra app (root handlers configured) Lightning's own console handler is removed,
so each message appears once, in Hydra's format (and in the run's .log file). Lightning's
advertising tips ("💡 Tip: ... try installing litlogger/litmodels") are dropped.
"""

from __future__ import annotations

import logging

LIGHTNING_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"
ADVERT_PREFIX = "💡 Tip:"


class DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(ADVERT_PREFIX)


def tidy_lightning_logging() -> None:
    """Idempotent; call after Hydra configured logging (inside the task)."""
    root = logging.getLogger()
    lightning_logger = logging.getLogger("lightning")
    if root.handlers:
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:  # its console handler, not a file handler
                lightning_logger.removeHandler(handler)
    rank_zero = logging.getLogger(LIGHTNING_RANK_ZERO_LOGGER)
    if not any(isinstance(f, DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdverts())
