"""Checkpoints while a step prints a lot: a real SQLite journal written through JournalWriter.

The writer's connection stops checkpointing and a thread of its own copies the log into the
database file; nothing recorded is lost, the chain verifies, and the connection checkpoints
again once the writer is closed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from engine.events import (
    Output,
    Provenance,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepStarted,
    StepStatus,
)
from engine.journal.checkpoint import AUTOCHECKPOINT_PAGES, CHECKPOINT_BYTES
from engine.journal.store import JournalWriter, connect, stored_events
from engine.journal.verify import verify_run

TEXT = "# Big output\n"
FACTS = Provenance(
    "run-1", "journal.db", hashlib.sha256(TEXT.encode()).hexdigest(), "ops", "host", 1
)
# What the runner's run-started event says of the run: `log verify` checks the summary by it.
STARTED = RunStarted("big.md", "Big output", {}, ("big",), FACTS)


def test_large_output_is_checkpointed_by_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    db = connect(path)
    writer = JournalWriter(db, "run-1", "/runbooks/big.md", TEXT)
    writer.emit(STARTED)
    writer.emit(StepStarted("big", 1, "command", command="yes"))
    line = "é" * 49 + "x" * 50 + "\n"  # not only ASCII: sizes are in characters and bytes
    chunk = line * 2000
    sent = 0
    while sent < 3 * CHECKPOINT_BYTES:
        writer.emit(Output("big", 1, chunk))
        sent += len(chunk)
    writer.flush()
    writer.drain()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 10
    while path.stat().st_size < CHECKPOINT_BYTES and time.monotonic() < deadline:
        time.sleep(0.05)  # the checkpoint thread copies the log into the database file
    assert path.stat().st_size >= CHECKPOINT_BYTES
    writer.emit(StepFinished("big", 1, StepStatus.SUCCEEDED))
    writer.emit(RunFinished(RunStatus.SUCCEEDED))
    writer.close()
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
    db.close()

    db = connect(path)
    recorded = "".join(e.text for e in stored_events(db, "run-1") if isinstance(e, Output))
    assert recorded == chunk * (sent // len(chunk))
    assert verify_run(db, "run-1").ok
    db.close()


def test_small_runs_start_no_checkpoint_thread(tmp_path: Path) -> None:
    db = connect(tmp_path / "journal.db")
    writer = JournalWriter(db, "run-1", "/runbooks/big.md", TEXT)
    writer.emit(STARTED)
    writer.emit(StepStarted("s", 1, "command", command="echo"))
    writer.emit(Output("s", 1, "hello\n"))
    writer.emit(StepFinished("s", 1, StepStatus.SUCCEEDED))
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
    writer.close()
    db.close()
