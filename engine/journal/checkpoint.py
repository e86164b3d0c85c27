"""Checkpoints from a thread of their own while a step prints a lot.

In WAL mode the committing connection copies the log into the database file itself once the
log passes `wal_autocheckpoint` pages, and that copy waits for two fsyncs: a step printing
hundreds of megabytes would stall on them. While output is heavy the writer's connection
stops checkpointing, and this thread does it on a connection of its own (PASSIVE: it never
blocks the writer). The log keeps every committed event either way; a checkpoint that fails
only leaves more of it for the next one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading

CHECKPOINT_BYTES = 8 * 1024 * 1024  # output committed between two checkpoints
AUTOCHECKPOINT_PAGES = 1000  # SQLite's default, restored on the writer's connection


class Checkpointer:
    """Started by the first large output; `written` after each commit, `close` at the end."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._path = str(db.execute("PRAGMA database_list").fetchone()[2])
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = False

    def written(self, nbytes: int) -> None:
        """Called by the thread that commits output, after each commit."""
        self._pending += nbytes
        if self._pending < CHECKPOINT_BYTES or not self._path:
            return  # an in-memory database has no log to copy
        self._pending = 0
        if self._thread is None:
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after its checkpoint in progress) and give checkpoints back to the
        writer's connection. Call only when no other thread is using that connection."""
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._thread = None
        with contextlib.suppress(sqlite3.Error):
            self._db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, timeout=10, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            return  # the writer's own checkpoints (and its close) copy the log instead
        finally:
            db.close()
