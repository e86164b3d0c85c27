"""Tamper evidence: recompute every run's hash chain and name the first event that differs;
then check that the run's summary row (what `log list` shows) agrees with its events."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

from engine.journal.store import GENESIS, canonical, event_hash

_LIFECYCLE = ("run-started", "run-resumed", "run-finished")


@dataclass(frozen=True, slots=True)
class Verification:
    run_id: str
    events: int
    ok: bool
    problem: str = ""
    head: str = ""


def verify_run(db: sqlite3.Connection, run_id: str) -> Verification:
    """Check one run: each event's hash, the links between them, and the run's summary."""
    prev, count, expected_seq = GENESIS, 0, 1
    lifecycle: list[tuple[str, str]] = []
    for seq, kind, step, attempt, at, data, stored_prev, stored_hash in db.execute(
        "SELECT seq, kind, step, attempt, time, data, prev, hash FROM events"
        " WHERE run_id = ? ORDER BY seq",
        (run_id,),
    ):
        count += 1
        if seq != expected_seq:
            return Verification(run_id, count, False, f"event {expected_seq} is missing")
        if stored_prev != prev:
            return Verification(
                run_id, count, False, f"event {seq} ({kind}) does not follow event {seq - 1}"
            )
        if event_hash(prev, run_id, seq, kind, step, attempt, at, data) != stored_hash:
            return Verification(
                run_id, count, False, f"event {seq} ({kind}, step {step or '-'}) was changed"
            )
        if kind in _LIFECYCLE:
            lifecycle.append((kind, data))
        prev, expected_seq = stored_hash, seq + 1
    row = db.execute(
        "SELECT events, last_hash, r.digest, t.text, path, title, operator, host, params,"
        " status, git_commit, email FROM runs r LEFT JOIN runbook_texts t ON t.digest = r.digest"
        " WHERE id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        return Verification(run_id, count, False, "the run's record is missing")
    summary = _Summary(*row)
    if int(summary.events) != count or summary.last_hash != prev:
        return Verification(
            run_id, count, False, f"the run records {summary.events} events but {count} remain"
        )
    if hashlib.sha256(str(summary.text).encode("utf-8")).hexdigest() != summary.digest:
        return Verification(
            run_id, count, False, "the stored runbook text does not match its sha256"
        )
    differs = _summary_differs(summary, lifecycle)
    if differs:
        return Verification(
            run_id, count, False, f"the run's summary ({differs}) differs from its events"
        )
    return Verification(run_id, count, True, head=prev)


class _Summary(NamedTuple):
    """A run's row in the runs table (the index `log list` reads), as verify reads it."""

    events: int
    last_hash: str
    digest: str
    text: str | None
    path: str
    title: str
    operator: str
    host: str
    params: str
    status: str
    git_commit: str | None
    email: str | None


def _summary_differs(row: _Summary, lifecycle: list[tuple[str, str]]) -> str:
    """The first summary field that its run-started / run-finished events do not back."""
    if not lifecycle or lifecycle[0][0] != "run-started":
        return "start"
    started = json.loads(lifecycle[0][1])
    latest = json.loads(next(d for k, d in reversed(lifecycle) if k != "run-finished"))
    final_kind, final_data = lifecycle[-1]
    status = json.loads(final_data).get("status") if final_kind == "run-finished" else "running"
    expected = {
        "sha256": (row.digest, started.get("digest")),
        "path": (row.path, started.get("path")),
        "title": (row.title, started.get("title")),
        "operator": (row.operator, started.get("operator")),
        "host": (row.host, latest.get("host")),
        "params": (row.params, canonical(started.get("params") or {})),
        "git commit": (row.git_commit, started.get("git_commit")),
        "email": (row.email, started.get("email")),
        "status": (row.status, status),
    }
    return next((name for name, (stored, backed) in expected.items() if stored != backed), "")


def verify_all(db: sqlite3.Connection) -> list[Verification]:
    return [
        verify_run(db, run_id) for (run_id,) in db.execute("SELECT id FROM runs ORDER BY started")
    ]
