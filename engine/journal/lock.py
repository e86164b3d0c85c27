"""One active run per runbook and journal: a row in the journal's `active` table.

A row left by a process that is gone (killed) is stale: it is reported and replaced.
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import time
from dataclasses import dataclass

from engine.journal.store import JournalError, is_alive


@dataclass(frozen=True, slots=True)
class Holder:
    run_id: str
    pid: int
    host: str
    operator: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"run {self.run_id} by {self.operator} on {self.host} (pid {self.pid}) since {when}"


class RunLocked(Exception):
    """Another live run of the same runbook holds the lock."""

    def __init__(self, holder: Holder) -> None:
        super().__init__(holder.describe())
        self.holder = holder


def acquire(
    db: sqlite3.Connection, abspath: str, run_id: str, operator: str, pid: int, force: bool
) -> Holder | None:
    """Take the runbook's lock; returns a stale or overridden holder it replaced, if any."""
    host = socket.gethostname()
    try:
        with db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT run_id, pid, host, operator, since FROM active WHERE abspath = ?",
                (abspath,),
            ).fetchone()
            previous = Holder(row[0], int(row[1]), row[2], row[3], float(row[4])) if row else None
            live = previous is not None and is_live(previous, host)
            if live and not force:
                raise RunLocked(previous)  # type: ignore[arg-type]
            if not live:
                # A forced run beside a live one leaves that run's lock in place.
                db.execute(
                    "INSERT OR REPLACE INTO active (abspath, run_id, pid, host, operator, since)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (abspath, run_id, pid, host, operator, time.time()),
                )
    except sqlite3.Error as exc:
        raise JournalError(f"cannot lock the runbook in the journal: {exc}") from None
    return previous


def release(db: sqlite3.Connection, abspath: str, run_id: str) -> None:
    # A lock left behind is recognised as stale by the next run.
    with contextlib.suppress(sqlite3.Error):
        db.execute("DELETE FROM active WHERE abspath = ? AND run_id = ?", (abspath, run_id))


def is_live(holder: Holder, host: str | None = None) -> bool:
    """Whether the holder may still be running (a process on another host is assumed to)."""
    return holder.host != (host or socket.gethostname()) or is_alive(holder.pid)
