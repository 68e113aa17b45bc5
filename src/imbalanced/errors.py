"""Errors that mean the user's settings or data are wrong (reported as one line, exit code 2)."""


class UserError(ValueError):
    """A setting or a data problem the user can fix; the message names it and what is valid."""
