"""Errors that mean the user's settings or data are wrong (reported as one line, exit code 2)."""

from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import InstantiationException


class UserError(ValueError):
    """A setting or a data problem the user can fix; the message names it and what is valid."""


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite; the message says where and the likely cause."""


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped training after a checkpoint was saved (exit 130 / 143)."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def unwrap_user_errors() -> Iterator[None]:
    """Hydra's `instantiate` wraps what a constructor raises; a `UserError` (a setting the
    constructor refused) comes out as itself, so the user sees its one line, also from an object
    that another constructor instantiates (a wrap per level)."""
    try:
        yield
    except InstantiationException as error:
        cause = error.__cause__
        while isinstance(cause, InstantiationException):  # e.g. a backbone built by the model
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise
