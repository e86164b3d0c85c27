"""One active run per runbook and journal: a row in the journal's `active` table.

A row left by a process that is gone (killed) is stale: it is reported and replaced. "Gone"
means more than "no process has that pid": after a reboot, or once the pid is reused, some
other process may hold it. Where /proc tells (Linux), the pid's holder must also have started
before the run took its lock and since the last boot; a process that started later is another.
"""

from __future__ import annotations

import contextlib
import os
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
    live: bool | None = None  # known from the backend (PostgreSQL's session locks), else judged

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
    host = os.uname().nodename
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
    if holder.live is not None:
        return holder.live
    return holder.host != (host or os.uname().nodename) or is_running(holder.pid, holder.since)


# The start time read from /proc is the boot time (whole seconds, so up to 1 s early) plus
# clock ticks: never later than the truth, so the holder itself always passes. The slack
# covers a small step of the wall clock between the lock and now (btime follows the clock).
_CLOCK_SLACK = 2.0


def is_running(pid: int, since: float) -> bool:
    """Whether `pid` is still the process that, running on this host, recorded `since`."""
    if not is_alive(pid):
        return False
    started = process_started(pid)
    return started is None or started <= since + _CLOCK_SLACK


def process_started(pid: int) -> float | None:
    """When the process started, as a Unix time (None where /proc cannot say). After a
    reboot every process started after the boot, so this also tells a reboot apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _boot_time() -> float:
    with open("/proc/stat", "rb") as file:
        for line in file:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")
