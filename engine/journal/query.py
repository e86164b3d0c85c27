"""Reading the journal: listing, finding and searching runs, and a run's record."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from engine.events import EventKind, RunStatus
from engine.journal.lock import is_running
from engine.journal.store import JournalError, stored_events
from engine.record import RunDetail, RunSummary
from engine.record import run_detail as _replayed

__all__ = [
    "RunDetail",
    "RunNotFound",
    "RunSummary",
    "SearchHit",
    "find_run",
    "list_runs",
    "mark",
    "run_detail",
    "runbook_text",
    "search",
]


class RunNotFound(Exception):
    """A run reference that matches no run, or more than one."""


_COLUMNS = (
    "id, path, title, operator, email, host, pid, started, ended, status, params, digest,"
    " git_commit, git_dirty, abspath,"
    # When its process took the runbook's lock (a resumed run's is later than its start).
    " (SELECT since FROM active WHERE active.run_id = runs.id)"
)
_HOST = os.uname().nodename


def _summary(row: tuple[Any, ...], judge: bool = True) -> RunSummary:
    """A run as listed; with `judge`, a running run whose process on this host is gone is
    shown interrupted (PostgreSQL tells from its session locks instead)."""
    status = row[9]
    since = float(row[15] if row[15] is not None else row[7])
    if (
        judge
        and status == RunStatus.RUNNING
        and row[5] == _HOST
        and not is_running(int(row[6]), since)
    ):
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
    db: Any,
    runbook: str | None = None,
    status: str | None = None,
    since: float | None = None,
    operator: str | None = None,
    limit: int | None = None,
    host: str | None = None,
    judge: bool = True,
) -> list[RunSummary]:
    """Runs, newest first, filtered as `runbook log list` asks (`since`: seconds ago)."""
    where: list[str] = []
    args: list[object] = []
    if runbook:
        # As first typed, by resolved path, or by file name (`fail.md`).
        where.append("(path = ? OR abspath = ? OR abspath LIKE ? ESCAPE '\\')")
        name = runbook.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args += [runbook, runbook, "%/" + name if "/" not in runbook else name]
    if status:
        if status == RunStatus.INTERRUPTED:
            where.append("status IN ('interrupted', 'running')")
        else:
            where.append("status = ?")
            args.append(status)
    if since is not None:
        where.append("started >= ?")
        args.append(time.time() - since)
    if operator:
        where.append("(operator = ? OR email = ?)")
        args += [operator, operator]
    if host:
        where.append("host = ?")
        args.append(host)
    sql = f"SELECT {_COLUMNS} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started DESC"
    if limit and not status:
        sql += f" LIMIT {int(limit)}"
    runs = [_summary(row, judge) for row in db.execute(sql, args).fetchall()]
    if status and judge:
        runs = [r for r in runs if r.status == status]
    return _with_notes(db, runs[:limit] if limit else runs)


def _with_notes(db: Any, runs: list[RunSummary]) -> list[RunSummary]:
    """Each succeeded run with the message it ended with (its skipped steps), for the list."""
    ids = [r.id for r in runs if r.status == RunStatus.SUCCEEDED]
    notes: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for run_id, data in db.execute(
            f"SELECT run_id, data FROM events WHERE run_id IN ({marks}) AND kind = ?",
            [*chunk, EventKind.RUN_FINISHED.value],
        ):
            try:
                message = json.loads(data).get("message")
            except (ValueError, AttributeError):
                continue
            if isinstance(message, str) and message:
                notes[run_id] = message
    return [replace(r, note=notes[r.id]) if r.id in notes else r for r in runs]


def find_run(db: Any, reference: str, judge: bool = True) -> RunSummary:
    """A run by a unique id prefix, or `last`."""
    if reference == "last":
        row = db.execute(f"SELECT {_COLUMNS} FROM runs ORDER BY started DESC LIMIT 1").fetchone()
        if row is None:
            raise RunNotFound("the journal has no runs yet")
        return _summary(row, judge)
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
    return _summary(rows[0], judge)


def run_detail(db: Any, summary: RunSummary) -> RunDetail:
    """A run's steps rebuilt from its events (the same replay `resume` uses)."""
    return _replayed(summary, stored_events(db, summary.id))


def runbook_text(db: Any, run_id: str) -> tuple[str, str]:
    """The runbook's text as the run used it, and the runbook's absolute path."""
    row = db.execute(
        "SELECT t.text, r.abspath FROM runs r JOIN runbook_texts t ON t.digest = r.digest"
        " WHERE r.id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        raise JournalError(f"run {run_id}: its runbook's text is missing")
    return str(row[0]), str(row[1])


def mark(db: Any) -> str:
    """What changes whenever a run is written, read cheaply (two indexed lookups): the head
    (each run's seal moves it) and the events of runs still running (each batch adds some)."""
    row = db.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'head'),"
        " (SELECT count(*) FROM runs WHERE status = 'running'),"
        " (SELECT coalesce(sum(events), 0) FROM runs WHERE status = 'running')"
    ).fetchone()
    return ":".join(str(value) for value in row)


@dataclass(frozen=True, slots=True)
class SearchHit:
    run: RunSummary
    step: str | None
    field: str
    line: str


def search(db: Any, text: str, limit: int = 50) -> list[SearchHit]:
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
    return hits(rows, lambda run_id: find_run(db, run_id), text, limit)


def hits(
    rows: list[tuple[Any, ...]], lookup: Callable[[str], RunSummary], text: str, limit: int
) -> list[SearchHit]:
    """Matching rows (text, step, field, run id), newest first, as hits: one per line."""
    runs: dict[str, RunSummary] = {}
    words = re.findall(r"\w+", text)
    found: list[SearchHit] = []
    needle = text.lower()
    lowered_words = [w.lower() for w in words]
    for body, step, kind, run_id in rows:
        if run_id not in runs:
            runs[run_id] = lookup(run_id)
        lines = str(body).splitlines() or [str(body)]
        matching = [ln for ln in lines if needle in ln.lower()] or [
            ln for ln in lines if all(w in ln.lower() for w in lowered_words)
        ]
        for line in matching[:3] or lines[:1]:
            found.append(SearchHit(runs[run_id], step, kind, line.strip()[:200]))
        if len(found) >= limit:
            break
    return found[:limit]
