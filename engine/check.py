"""check: every problem in a runbook at once: parse, plan, lint, and the shell's own syntax check.

`bash -n` is the one outside program used; a machine without bash skips that check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.diagnostics import Diagnostic, DiagnosticSink, Severity
from engine.lint import lint_runbook
from engine.loader import read_runbook
from engine.model import Runbook, StepKind
from engine.plan import Plan, plan_runbook
from engine.source import decode_legacy, repair_mojibake

_BASH_ERROR = re.compile(r"line (\d+): (.*)")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A checked runbook: its plan and all diagnostics, sorted by position."""

    plan: Plan
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> int:
        return sum(d.is_error for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity is Severity.WARNING for d in self.diagnostics)


def check_runbook(path: Path, display: str | None = None) -> CheckResult:
    """Parse, plan and lint one runbook file, and syntax-check its shell steps."""
    runbook = read_runbook(path, display)
    plan = plan_runbook(runbook)
    found = [*plan.diagnostics, *lint_runbook(runbook), *shell_syntax(runbook)]
    found.sort(key=lambda d: (d.location.line, d.location.column, d.code))
    return CheckResult(plan, tuple(found))


def shell_syntax(runbook: Runbook) -> list[Diagnostic]:
    """`bash -n` on every runnable shell step; a rejection is a warning at its line."""
    bash = shutil.which("bash")
    sink = DiagnosticSink(runbook.path)
    if bash is None:
        return []
    for step in runbook.steps:
        if step.kind is not StepKind.COMMAND or not step.run or step.interpreter:
            continue
        result = subprocess.run(
            [bash, "-n"],
            input=step.body,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if result.returncode == 0:
            continue
        message = result.stderr.strip().splitlines()[0] if result.stderr.strip() else "rejected"
        match = _BASH_ERROR.search(message)
        line = step.body_line + int(match.group(1)) - 1 if match else step.line
        sink.warning(
            line,
            "shell-syntax",
            f"bash rejects step '{step.id}': {match.group(2) if match else message}",
            "if this block is an example, not a command, add {run: false} to its fence",
        )
    return sink.items


@dataclass(frozen=True, slots=True)
class FixReport:
    """What `check --fix` did to one file."""

    path: str
    converted_from_legacy: bool
    repaired: tuple[int, ...]
    unrestored: tuple[int, ...]

    @property
    def changed(self) -> bool:
        return self.converted_from_legacy or bool(self.repaired)


def fix_file(path: Path, display: str | None = None) -> FixReport:
    """Repair a file's encoding in place: legacy 8-bit text becomes UTF-8, mojibake is undone."""
    data = path.read_bytes()
    try:
        text, legacy = data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        text, legacy = decode_legacy(data), True
    repair = repair_mojibake(text)
    report = FixReport(display or str(path), legacy, repair.repaired, repair.unrestored)
    if report.changed:
        _write_atomically(path, repair.text)
    return report


def _write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
