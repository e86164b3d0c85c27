"""Tamper evidence: recompute every run's hash chain and name the first event that differs."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass

from engine.journal.store import GENESIS, event_hash


@dataclass(frozen=True, slots=True)
class Verification:
    run_id: str
    events: int
    ok: bool
    problem: str = ""
    head: str = ""


def verify_run(db: sqlite3.Connection, run_id: str) -> Verification:
    """Check one run: each event's hash, the links between them, and the run's recorded head."""
    prev, count, expected_seq = GENESIS, 0, 1
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
        prev, expected_seq = stored_hash, seq + 1
    row = db.execute(
        "SELECT events, last_hash, digest, text FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    if row is None:
        return Verification(run_id, count, False, "the run's record is missing")
    if int(row[0]) != count or row[1] != prev:
        return Verification(
            run_id, count, False, f"the run records {row[0]} events but {count} remain"
        )
    if hashlib.sha256(str(row[3]).encode("utf-8")).hexdigest() != row[2]:
        return Verification(
            run_id, count, False, "the stored runbook text does not match its sha256"
        )
    return Verification(run_id, count, True, head=prev)


def verify_all(db: sqlite3.Connection) -> list[Verification]:
    return [
        verify_run(db, run_id) for (run_id,) in db.execute("SELECT id FROM runs ORDER BY started")
    ]
