"""Warnings about steps that parse fine but are risky: destructive commands the author did not
mark (from the inference table in `danger.py`), data inside a shell fence, secrets written
into the runbook. Pure."""

from __future__ import annotations

from engine.diagnostics import Diagnostic, DiagnosticSink
from engine.model import Runbook, Step, StepKind
from engine.templates import has_template


def lint_runbook(runbook: Runbook) -> list[Diagnostic]:
    """Warnings for every runnable command step that deserves a second look."""
    sink = DiagnosticSink(runbook.path)
    for step in runbook.steps:
        if step.kind is StepKind.COMMAND:
            _check_destructive(step, sink)
            _check_data_in_shell(step, sink)
            _check_literal_secrets(step, sink)
    _note_rollback(runbook, sink)
    return sink.items


def _note_rollback(runbook: Runbook, sink: DiagnosticSink) -> None:
    """Once: the section the engine took for the failure handler of the steps before it."""
    inferred = next((i for s in runbook.steps if (i := s.inference("on_failure"))), None)
    if inferred is None:
        return
    count = sum(1 for s in runbook.steps if s.inference("on_failure"))
    sink.info(
        inferred.line,
        "rollback-section",
        f"section '{inferred.value}' runs only if one of the {count} command steps before it"
        " fails (their failure handler), not after them",
        "write {on_failure: continue} (or another handler) on a step that should not roll back",
    )


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
    inferred = step.inference("confirm")
    if inferred is None:
        return
    sink.warning(
        inferred.line,
        "destructive",
        f"step '{step.id}' runs a destructive command: {inferred.reason}; "
        "it will be confirmed as dangerous (the operator types its id)",
        "add {confirm: danger} to say so, or {confirm: true} if it is safe here",
        column=1,
    )


def _check_data_in_shell(step: Step, sink: DiagnosticSink) -> None:
    inferred = step.inference("run")
    if inferred is None:
        return
    sink.warning(
        step.line,
        "not-shell",
        f"step '{step.id}' is in a shell fence but {inferred.reason}: it is shown, not run",
        "fence it with its own language, or add {run: true} to run it anyway",
    )
