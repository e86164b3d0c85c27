"""Diagnostics: what parse, plan and check report about a runbook, each at a source location."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"  # what the engine inferred, shown so the author can see it


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a runbook file; line and column are 1-based."""

    path: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a runbook, with a stable code and an optional hint."""

    location: Location
    severity: Severity
    code: str
    message: str
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        """The `PATH:LINE:COL: severity: message [code]` line, then the hint line."""
        head = f"{self.location}: {self.severity}: {self.message} [{self.code}]"
        return f"{head}\n  hint: {self.hint}" if self.hint else head

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a mistyped word, for "did you mean" hints."""
    import difflib  # only when a name is wrong

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint sentence naming the closest candidate, or None when nothing is close."""
    match = suggest(word, candidates)
    return f"did you mean '{match}'?" if match else None


class DiagnosticSink:
    """Collects one file's diagnostics while a stage walks it (parse leniently, check strictly)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[Diagnostic] = []

    def error(
        self, line: int, code: str, message: str, hint: str | None = None, column: int = 1
    ) -> None:
        self.items.append(
            Diagnostic(Location(self.path, line, column), Severity.ERROR, code, message, hint)
        )

    def warning(
        self, line: int, code: str, message: str, hint: str | None = None, column: int = 1
    ) -> None:
        self.items.append(
            Diagnostic(Location(self.path, line, column), Severity.WARNING, code, message, hint)
        )

    def info(
        self, line: int, code: str, message: str, hint: str | None = None, column: int = 1
    ) -> None:
        """A note on what was inferred: never a failure, even under --strict."""
        self.items.append(
            Diagnostic(Location(self.path, line, column), Severity.INFO, code, message, hint)
        )
