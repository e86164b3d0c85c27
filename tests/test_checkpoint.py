"""Checkpoints while a step prints a lot: a real SQLite journal written through JournalWriter.

The writer's connection stops checkpointing and a thread of its own copies the log into the
database file; nothing recorded is lost, the chain verifies, and the connection checkpoints
again once the writer is closed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from engine.events import Event, EventKind
from engine.journal.checkpoint import AUTOCHECKPOINT_PAGES, CHECKPOINT_BYTES
from engine.journal.store import JournalWriter, connect, stored_events
from engine.journal.verify import verify_run

RECORD = {
    "path": "big.md",
    "abspath": "/runbooks/big.md",
    "title": "Big output",
    "digest": hashlib.sha256(b"# Big output\n").hexdigest(),
    "text": "# Big output\n",
    "operator": "ops",
    "host": "host",
    "pid": 1,
}
# What the runner's run-started event says of the run: `log verify` checks the summary by it.
STARTED = {k: RECORD[k] for k in ("path", "title", "digest", "operator", "host")} | {"params": {}}


def test_large_output_is_checkpointed_by_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    db = connect(path)
    writer = JournalWriter(db, "run-1", RECORD)
    writer.emit(Event(EventKind.RUN_STARTED, STARTED))
    writer.emit(Event(EventKind.STEP_STARTED, {"kind": "command", "command": "yes"}, "big", 1))
    line = "é" * 49 + "x" * 50 + "\n"  # not only ASCII: sizes are in characters and bytes
    chunk = line * 2000
    sent = 0
    while sent < 3 * CHECKPOINT_BYTES:
        writer.emit(Event(EventKind.OUTPUT, {"text": chunk}, "big", 1))
        sent += len(chunk)
    writer.flush()
    writer.drain()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 10
    while path.stat().st_size < CHECKPOINT_BYTES and time.monotonic() < deadline:
        time.sleep(0.05)  # the checkpoint thread copies the log into the database file
    assert path.stat().st_size >= CHECKPOINT_BYTES
    writer.emit(Event(EventKind.STEP_FINISHED, {"status": "succeeded"}, "big", 1))
    writer.emit(Event(EventKind.RUN_FINISHED, {"status": "succeeded"}))
    writer.close()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
    db.close()

    db = connect(path)
    recorded = "".join(
        str(e.get("text")) for e in stored_events(db, "run-1") if e.kind is EventKind.OUTPUT
    )
    assert recorded == chunk * (sent // len(chunk))
    assert verify_run(db, "run-1").ok
    db.close()


def test_small_runs_start_no_checkpoint_thread(tmp_path: Path) -> None:
    db = connect(tmp_path / "journal.db")
    writer = JournalWriter(db, "run-1", RECORD)
    writer.emit(Event(EventKind.RUN_STARTED, STARTED))
    writer.emit(Event(EventKind.STEP_STARTED, {"kind": "command", "command": "echo"}, "s", 1))
    writer.emit(Event(EventKind.OUTPUT, {"text": "hello\n"}, "s", 1))
    writer.emit(Event(EventKind.STEP_FINISHED, {"status": "succeeded"}, "s", 1))
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
    writer.close()
    db.close()
