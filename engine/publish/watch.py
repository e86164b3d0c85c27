"""`mkdocs serve` rebuilds when the journal is written.

Watching the journal with `server.watch` would rebuild for ever: on Linux, watchdog reports a
file being opened, and every build opens the journal to read it. So only writes to the journal
(or its WAL) are watched here, and each one touches a stamp file in a directory of its own that
the server watches and the build never reads.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

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
