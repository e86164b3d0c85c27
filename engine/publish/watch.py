"""`mkdocs serve` rebuilds when the journal is written.

Watching the journal with `server.watch` would rebuild for ever: on Linux, watchdog reports a
file being opened, and every build opens the journal to read it. So only writes to the journal
(or its WAL) are watched here, and each one touches a stamp file in a directory of its own that
the server watches and the build never reads. A journal on a server has no file to watch: its
mark (`Store.mark`: the head, and the events of running runs) is polled instead.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from engine.journal.storage import Store
from engine.journal.store import JournalError

WRITES = {"modified", "created", "deleted", "moved"}


class JournalWatch(FileSystemEventHandler):
    """Touches `stamp` whenever the journal at `journal` (or its WAL) is written."""

    def __init__(self, journal: Path) -> None:
        super().__init__()
        self._names = {str(journal), f"{journal}-wal"}
        self.stamp_dir = Path(tempfile.mkdtemp(prefix="runbook-serve-"))
        self._stamp = self.stamp_dir / "journal-changed"
        self._observer = Observer()
        self._observer.schedule(self, str(journal.parent), recursive=False)
        self._observer.daemon = True
        self._observer.start()

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = {str(event.src_path), str(getattr(event, "dest_path", "") or "")}
        if event.event_type in WRITES and paths & self._names:
            self._stamp.write_text(str(event.event_type), encoding="utf-8")

    def stop(self) -> None:
        self._observer.stop()
        self._stamp.unlink(missing_ok=True)
        self.stamp_dir.rmdir()


POLL_SECONDS = 2.0

log = logging.getLogger("mkdocs.plugins.runbook")


class JournalPoll:
    """Touches a stamp whenever the journal's mark changes, read every POLL_SECONDS by a
    thread of its own over a session of its own (`open_journal` opens it, and again after the
    server was away)."""

    def __init__(self, open_journal: Callable[[], Store], where: str) -> None:
        self._open_journal = open_journal
        self._where = where
        self._store: Store | None = None
        self._last: str | None = None
        self._failing = False
        self.stamp_dir = Path(tempfile.mkdtemp(prefix="runbook-serve-"))
        self._stamp = self.stamp_dir / "journal-changed"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.poll()  # the mark the first build saw: no rebuild for it
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def poll(self) -> bool:
        """Read the mark once; True (and the stamp touched) when it changed since the last."""
        try:
            if self._store is None:
                self._store = self._open_journal()
            current = self._store.mark()
        except JournalError as exc:
            if not self._failing:  # one warning while the journal is away, not one a poll
                log.warning("runbook: cannot watch the journal %s: %s", self._where, exc)
            self._failing = True
            self._close()
            return False
        self._failing = False
        changed = self._last is not None and current != self._last
        self._last = current
        if changed:
            self._stamp.write_text(current, encoding="utf-8")
        return changed

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll()

    def _close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(JournalError):
                store.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close()
        self._stamp.unlink(missing_ok=True)
        self.stamp_dir.rmdir()
