"""The one error type of the profile front end."""

from __future__ import annotations

from mvtool.errors import MvtoolError


class ProfileError(MvtoolError):
    """A file (or statement) is outside the MicroVMM Lean profile or does not type-check.

    ``str(e)`` is ``file:line:col: [RULE] message`` (line and column 1-based), the format
    ``mvtool check`` prints. ``rule`` is one of the rule ids of ``spec/profile.md``.
    """

    def __init__(self, message: str, rule: str, file: str, line: int, col: int):
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.file = file
        self.line = line
        self.col = col

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: [{self.rule}] {self.message}"

    def to_json(self) -> dict[str, object]:
        """The error as a JSON-serialisable dict."""
        return {"file": self.file, "line": self.line, "col": self.col, "rule": self.rule,
                "message": self.message}
