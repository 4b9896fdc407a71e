"""Errors that the CLI reports as one line and a non-zero exit status."""

from __future__ import annotations


class MvtoolError(Exception):
    """A user-facing error: bad input, missing file, unavailable resource.

    The CLI prints ``mvtool: error: <message>`` on one line and exits with ``exit_code``.
    ``location`` (``file:line:col``), when given, is prefixed to the message.
    """

    def __init__(self, message: str, *, exit_code: int = 2, location: str | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.location = location

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message
