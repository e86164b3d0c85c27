"""Reading the journal: listing, finding and searching runs, and a run's steps in detail."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import time
from dataclasses import dataclass, field, replace

from engine.duration import parse_duration
from engine.events import Event, EventKind, RunStatus
from engine.journal.lock import is_running
from engine.journal.store import JournalError, stored_events


class RunNotFound(Exception):
    """A run reference that matches no run, or more than one."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    id: str
    path: str
    title: str
    operator: str
    email: str | None
    host: str
    pid: int
    started: float
    ended: float | None
    status: str
    params: dict[str, object]
    digest: str
    git_commit: str | None
    git_dirty: bool | None
    abspath: str = ""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


_COLUMNS = (
    "id, path, title, operator, email, host, pid, started, ended, status, params, digest,"
    " git_commit, git_dirty, abspath,"
    # When its process took the runbook's lock (a resumed run's is later than its start).
    " (SELECT since FROM active WHERE active.run_id = runs.id)"
)
_HOST = socket.gethostname()


def _summary(row: tuple) -> RunSummary:  # type: ignore[type-arg]
    status = row[9]
    since = float(row[15] if row[15] is not None else row[7])
    if status == RunStatus.RUNNING and row[5] == _HOST and not is_running(int(row[6]), since):
        status = str(RunStatus.INTERRUPTED)  # its process is gone: killed mid-run
    return RunSummary(
        id=row[0],
        path=row[1],
        title=row[2],
        operator=row[3],
        email=row[4],
        host=row[5],
        pid=int(row[6]),
        started=float(row[7]),
        ended=None if row[8] is None else float(row[8]),
        status=status,
        params=_params(row[0], row[10]),
        digest=row[11],
        git_commit=row[12],
        git_dirty=None if row[13] is None else bool(row[13]),
        abspath=row[14],
    )


def _params(run_id: str, text: str) -> dict[str, object]:
    try:
        params = json.loads(text)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise JournalError(
            f"run {run_id}: its parameters cannot be read (run `runbook log verify {run_id}`)"
        )
    return params


def list_runs(
    db: sqlite3.Connection,
    runbook: str | None = None,
    status: str | None = None,
    since: str | None = None,
    operator: str | None = None,
    limit: int | None = None,
) -> list[RunSummary]:
    """Runs, newest first, filtered as `runbook log list` asks."""
    where, args = [], []  # type: ignore[var-annotated]
    if runbook:
        where.append("(path = ? OR abspath = ?)")
        args += [runbook, runbook]
    if status:
        if status == RunStatus.INTERRUPTED:
            where.append("status IN ('interrupted', 'running')")
        else:
            where.append("status = ?")
            args.append(status)
    if since:
        seconds = parse_duration(since)
        if seconds is None:
            raise ValueError(f"--since {since}: not a duration such as 7d, 12h or 30m")
        where.append("started >= ?")
        args.append(time.time() - seconds)
    if operator:
        where.append("(operator = ? OR email = ?)")
        args += [operator, operator]
    sql = f"SELECT {_COLUMNS} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started DESC"
    if limit and not status:
        sql += f" LIMIT {int(limit)}"
    runs = [_summary(row) for row in db.execute(sql, args)]
    if status:
        runs = [r for r in runs if r.status == status]
    return runs[:limit] if limit else runs


def find_run(db: sqlite3.Connection, reference: str) -> RunSummary:
    """A run by a unique id prefix, or `last`."""
    if reference == "last":
        row = db.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY started DESC LIMIT 1").fetchone()
        if row is None:
            raise RunNotFound("the journal has no runs yet")
        return _summary(row)
    if not re.fullmatch(r"[\w.-]+", reference):
        raise RunNotFound(f"{reference!r} is not a run id")
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
        (reference, reference + "\uffff"),
    ).fetchall()
    if not rows:
        raise RunNotFound(f"no run has an id starting with {reference!r}")
    if len(rows) > 1:
        raise RunNotFound(f"{reference!r} matches more than one run; give more of the id")
    return _summary(rows[0])


@dataclass(slots=True)
class Attempt:
    """One execution of a step, as recorded."""

    number: int
    command: str = ""
    edited: bool = False
    started: float | None = None
    ended: float | None = None
    status: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration: float | None = None
    output: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StepRecord:
    """Everything recorded about one step of a run."""

    id: str
    kind: str = "command"
    text: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    answers: list[dict[str, object]] = field(default_factory=list)
    status: str | None = None
    reason: str = ""
    captured: dict[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return "".join("".join(a.output) for a in self.attempts)

    def attempt(self, number: int) -> Attempt:
        for attempt in self.attempts:
            if attempt.number == number:
                return attempt
        created = Attempt(max(number, 1))
        self.attempts.append(created)
        return created


@dataclass(slots=True)
class RunDetail:
    summary: RunSummary
    events: list[Event]
    steps: list[StepRecord]
    message: str = ""

    def step(self, step_id: str) -> StepRecord | None:
        return next((s for s in self.steps if s.id == step_id), None)


def run_detail(db: sqlite3.Connection, summary: RunSummary) -> RunDetail:
    """A run's steps rebuilt from its events (the same replay `resume` uses)."""
    events = list(stored_events(db, summary.id))
    return RunDetail(summary, events, *replay(events))


def replay(events: list[Event]) -> tuple[list[StepRecord], str]:
    steps: dict[str, StepRecord] = {}
    offsets: dict[str, int] = {}  # a resumed run numbers attempts from 1 again
    message = ""
    for event in events:
        if event.kind is EventKind.RUN_FINISHED:
            message = str(event.get("message") or "")
        if event.kind is EventKind.RUN_RESUMED:
            offsets = {s.id: max((a.number for a in s.attempts), default=0) for s in steps.values()}
        if event.step is None:
            continue
        if event.attempt:
            event = replace(event, attempt=event.attempt + offsets.get(event.step, 0))
        record = steps.setdefault(event.step, StepRecord(event.step))
        if event.kind is EventKind.STEP_STARTED:
            attempt = record.attempt(event.attempt)
            record.kind = str(event.get("kind") or record.kind)
            record.text = str(event.get("text") or record.text)
            attempt.command = str(event.get("command") or "")
            attempt.edited = bool(event.get("edited"))
            attempt.started = event.time
            record.status = None
        elif event.kind is EventKind.OUTPUT:
            record.attempt(event.attempt).output.append(str(event.get("text") or ""))
        elif event.kind is EventKind.ANSWER:
            record.answers.append({"time": event.time, "attempt": event.attempt, **event.data})
        elif event.kind is EventKind.STEP_FINISHED:
            record.status = str(event.get("status"))
            record.reason = str(event.get("reason") or event.get("note") or "")
            captured = event.get("captured")
            if isinstance(captured, dict):
                record.captured.update({str(k): str(v) for k, v in captured.items()})
            if event.attempt:
                attempt = record.attempt(event.attempt)
                attempt.ended = event.time
                attempt.status = record.status
                attempt.exit_code = event.get("exit_code")  # type: ignore[assignment]
                attempt.signal = event.get("signal")  # type: ignore[assignment]
                attempt.duration = event.get("duration")  # type: ignore[assignment]
    return list(steps.values()), message


@dataclass(frozen=True, slots=True)
class SearchHit:
    run: RunSummary
    step: str | None
    field: str
    line: str


def search(db: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """Full-text search over commands and outputs; one hit per matching line."""
    words = [w for w in re.findall(r"\w+", text)]
    if not words:
        return []
    query = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    rows = db.execute(
        # Newest first by the index's own order (rows are written as runs go): no sort of
        # every match, so a common word is as quick as a rare one.
        "SELECT text, step, field, run_id FROM search WHERE search MATCH ?"
        " ORDER BY rowid DESC LIMIT ?",
        (query, limit * 4),
    ).fetchall()
    runs: dict[str, RunSummary] = {}
    hits: list[SearchHit] = []
    needle = text.lower()
    lowered_words = [w.lower() for w in words]
    for body, step, kind, run_id in rows:
        if run_id not in runs:
            runs[run_id] = find_run(db, run_id)
        lines = str(body).splitlines() or [str(body)]
        matching = [ln for ln in lines if needle in ln.lower()] or [
            ln for ln in lines if all(w in ln.lower() for w in lowered_words)
        ]
        for line in matching[:3] or lines[:1]:
            hits.append(SearchHit(runs[run_id], step, kind, line.strip()[:200]))
        if len(hits) >= limit:
            break
    return hits[:limit]
