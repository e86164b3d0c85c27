"""Warnings about steps that parse fine but are risky: destructive commands without
`confirm: danger`, and data (JSON) inside a shell fence. Pure."""

from __future__ import annotations

import json
import re

from engine.diagnostics import Diagnostic, DiagnosticSink
from engine.model import Confirm, Runbook, Step, StepKind
from engine.templates import has_template

DESTRUCTIVE = re.compile(
    r"""
    \brm\s+(-\w*r\w*f\w*|-\w*f\w*r\w*|-r\s+-f|-f\s+-r
            |--recursive\s+--force|--force\s+--recursive)\b
    | \b(DROP\s+(TABLE|DATABASE|SCHEMA|INDEX|VIEW|USER|ROLE)|TRUNCATE(\s+TABLE)?\s+\w
         |DELETE\s+FROM)\b
    | \b(dropdb|FLUSHDB|FLUSHALL|flushdb|flushall|mkfs(\.\w+)?|wipefs|shred)\b
    | \bgit\s+(push\b.*\s(-f|--force(-with-lease)?)\b|reset\s+--hard|clean\s+-\w*f)
    | \bkubectl\s+(delete|drain)\b | \bhelm\s+(uninstall|delete)\b
    | \bdocker(-compose|\s+compose)?\s+(system\s+prune|volume\s+(rm|prune)|image\s+prune
                                        |rm\s+-f|down\s+(-v|--volumes))
    | \bterraform\s+destroy\b | \bdd\s+.*\bof=/dev/
    | (?<![\w-])--force\b
    """,
    re.VERBOSE,
)


def lint_runbook(runbook: Runbook) -> list[Diagnostic]:
    """Warnings for every runnable command step that deserves a second look."""
    sink = DiagnosticSink(runbook.path)
    for step in runbook.steps:
        if step.kind is StepKind.COMMAND and step.run:
            _check_destructive(step, sink)
            _check_data_in_shell(step, sink)
            _check_literal_secrets(step, sink)
    return sink.items


def _check_literal_secrets(step: Step, sink: DiagnosticSink) -> None:
    for expect in step.expect:
        if expect.secret and not has_template(expect.send):
            sink.warning(
                step.line,
                "literal-secret",
                f"step '{step.id}' answers a prompt with a secret written into the runbook",
                "declare a parameter with secret: true and send '{{ name }}' instead",
                column=step.column_of("expect"),
            )


def _check_destructive(step: Step, sink: DiagnosticSink) -> None:
    if step.confirm is Confirm.DANGER or step.interpreter:
        return
    for number, line in enumerate(step.command.splitlines(), 1):
        code = line.split(" #", 1)[0]
        if code.lstrip().startswith("#"):
            continue
        match = DESTRUCTIVE.search(code)
        if match:
            sink.warning(
                step.source_line(number),
                "destructive",
                f"step '{step.id}' runs a destructive command ({match.group(0).strip()}) "
                "without `confirm: danger`",
                "add {confirm: danger} so the operator must type the step id",
                column=match.start() + 1,
            )
            return


def _check_data_in_shell(step: Step, sink: DiagnosticSink) -> None:
    if step.interpreter or not step.body.lstrip().startswith(("{", "[")):
        return
    try:
        json.loads(step.body)
    except ValueError:
        return
    sink.warning(
        step.line,
        "not-shell",
        f"step '{step.id}' holds JSON, not shell commands",
        "fence it as ```json, or add {run: false} to show it without running it",
    )
