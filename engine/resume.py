"""resume: continue a failed or interrupted run, from what its journal recorded.

Finished steps are not run again; parameters (secret ones asked again) and captured values
come back from the events; a step started without a result is offered again.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from engine.console.run import RunConsole
from engine.console.terminal import Terminal
from engine.events import Event, EventKind, RunStatus, StepStatus
from engine.journal import JournalWriter, connect, lock, query
from engine.launch import (
    LaunchError,
    acquire_lock,
    check_before_running,
    collect_params,
    event_facts,
    provenance,
    run_in_session,
)
from engine.loader import RunbookNotFound, read_runbook
from engine.model import Runbook
from engine.parse import parse_runbook
from engine.plan import plan_runbook
from engine.run import Choice, RunOptions


def changed_steps(old_text: str, new: Runbook) -> list[str]:
    """Step ids whose text or settings differ between the version a run used and now."""
    old = {s.id: s for s in parse_runbook(old_text, new.path).steps}
    current = {s.id: s for s in new.steps}
    changes = []
    for step_id in sorted(set(old) | set(current)):
        before, after = old.get(step_id), current.get(step_id)
        if before is None:
            changes.append(f"{step_id}: added")
        elif after is None:
            changes.append(f"{step_id}: removed")
        elif replace(before, line=0, body_line=0, key_columns=()) != replace(
            after, line=0, body_line=0, key_columns=()
        ):
            changes.append(f"{step_id}: changed")
    return changes


def resume_run(
    reference: str,
    given: dict[str, str],
    yes: bool,
    allow_danger: bool,
    force: bool,
    journal: Path,
    terminal: Terminal,
) -> int:
    """Continue an interrupted or failed run at its first unfinished step."""
    if not journal.exists():
        raise LaunchError(f"no runs recorded yet (no journal at {journal})")
    db = connect(journal)
    try:
        try:
            summary = query.find_run(db, reference)
        except query.RunNotFound as exc:
            raise LaunchError(str(exc)) from None
        if summary.status == RunStatus.SUCCEEDED:
            raise LaunchError(f"run {summary.id} succeeded: there is nothing to resume")
        if summary.status == RunStatus.RUNNING:
            raise LaunchError(
                f"run {summary.id} is still running (pid {summary.pid} on {summary.host})"
            )
        detail = query.run_detail(db, summary)
        stored_text = db.execute(
            "SELECT t.text, r.abspath FROM runs r JOIN runbook_texts t ON t.digest = r.digest"
            " WHERE r.id = ?",
            (summary.id,),
        ).fetchone()
        return _resume(
            db,
            detail,
            stored_text[0],
            Path(stored_text[1]),
            given,
            yes,
            allow_danger,
            force,
            journal,
            terminal,
        )
    finally:
        db.close()


def _resume(
    db: sqlite3.Connection,
    detail: query.RunDetail,
    old_text: str,
    abspath: Path,
    given: dict[str, str],
    yes: bool,
    allow_danger: bool,
    force: bool,
    journal: Path,
    terminal: Terminal,
) -> int:
    summary = detail.summary
    shown_path = summary.path if Path(summary.path).exists() else str(abspath)
    try:
        runbook = read_runbook(Path(shown_path))
    except RunbookNotFound as exc:
        raise LaunchError(f"cannot resume run {summary.id}: {exc}") from None
    plan = plan_runbook(runbook)
    if not plan.ok:
        terminal.diagnostics([d for d in plan.diagnostics if d.is_error])
        raise LaunchError(f"{runbook.path} has errors now; fix them to resume")
    interactive = not yes
    console = RunConsole(terminal, plan, interactive)
    if runbook.digest != summary.digest:
        changes = changed_steps(old_text, runbook)
        if yes and not force:
            raise LaunchError(
                f"{runbook.path} changed since run {summary.id} started ("
                + ", ".join(changes or ["text only"])
                + "); use --force to resume with the new version"
            )
        if not yes and not console.confirm_changes(runbook.path, changes):
            raise LaunchError("resume cancelled")
    # Parameters as the run had them; secret ones were never recorded, so ask again.
    recorded = {k: str(v) for k, v in summary.params.items() if v != "<secret>"}
    recorded.update(given)
    values = collect_params(runbook, recorded, interactive, terminal)
    started = next((e for e in detail.events if e.kind is EventKind.RUN_STARTED), None)
    selection = [str(s) for s in (started.get("steps") if started else None) or plan.order]  # type: ignore[union-attr]
    done, captured, decisions = set(), {}, []
    for record in detail.steps:
        captured.update(record.captured)
        if record.status in (StepStatus.SUCCEEDED, StepStatus.DONE, StepStatus.SKIPPED):
            done.add(record.id)
        elif record.status is None and record.id in selection:
            choice = Choice.RUN if yes else console.ask_unfinished(record.id)
            decisions.append((record.id, choice))
            if choice in (Choice.DONE, Choice.SKIP):
                done.add(record.id)
    options = RunOptions(
        assume_yes=yes,
        allow_danger=allow_danger,
        only=frozenset(selection),
        done=frozenset(done),
    )
    check_before_running(plan, values, options)
    facts = provenance(Path(runbook.path))
    record = {"abspath": str(abspath), "operator": facts["operator"], "path": runbook.path}
    acquire_lock(db, record, summary.id, force, terminal)
    writer = JournalWriter.resume(db, summary.id)
    try:
        for step_id, choice in decisions:
            writer.emit(
                Event(EventKind.ANSWER, {"question": "unfinished", "answer": str(choice)}, step_id)
            )
            if choice is not Choice.RUN:
                status = StepStatus.DONE if choice is Choice.DONE else StepStatus.SKIPPED
                writer.emit(
                    Event(
                        EventKind.STEP_FINISHED,
                        {"status": str(status), "reason": "on resume"},
                        step_id,
                    )
                )
        info = {"run_id": summary.id, "journal": str(journal), **event_facts(facts, runbook)}
        return run_in_session(
            plan, values, options, terminal, interactive, writer, info, captured, resumed=True
        )
    finally:
        lock.release(db, str(abspath), summary.id)
