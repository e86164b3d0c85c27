"""The journal behind one small protocol, `Store`: what the engine asks of any backend
(append a run's events, read a run, list, search, lock, verify). `SqliteStore` is the
default one, over `store.py` (writing), `query.py` (reading), `lock.py` and `verify.py`;
`postgres.PostgresStore` is a team's shared one. `open_store` chooses by the location."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from engine.events import Event, EventSink
from engine.journal import lock
from engine.journal.location import is_url
from engine.journal.store import (
    JournalError,
    JournalWriter,
    connect,
    migrate,
    read_head,
    resume_key,
    stored_events,
)

if TYPE_CHECKING:
    from engine.journal import query
    from engine.journal.chain import Head
    from engine.journal.verify import JournalVerification, Verification
    from engine.record import RunDetail, RunSummary

# A run only writes: the queries, the verifier and the run record (a third of the journal's
# import time) are imported by the methods that read, on first use.


class RunWriter(EventSink, Protocol):
    """A sink that records one run's events, durably, as they come."""

    def tick(self) -> None: ...
    def close(self) -> None: ...


class Store(Protocol):
    """A journal of runs."""

    def start_run(self, run_id: str, abspath: str, runbook_text: str) -> RunWriter: ...
    def continue_run(self, run_id: str) -> RunWriter: ...
    def find_run(self, reference: str) -> RunSummary: ...
    def list_runs(
        self,
        runbook: str | None = None,
        status: str | None = None,
        since: float | None = None,
        operator: str | None = None,
        limit: int | None = None,
        host: str | None = None,
    ) -> list[RunSummary]: ...
    def read_run(self, summary: RunSummary) -> RunDetail: ...
    def events(self, run_id: str) -> list[Event]: ...
    def runbook_text(self, run_id: str) -> tuple[str, str]: ...
    def search(self, text: str, limit: int = 50) -> list[query.SearchHit]: ...
    def lock(
        self, abspath: str, run_id: str, operator: str, pid: int, force: bool
    ) -> lock.Holder | None: ...
    def unlock(self, abspath: str, run_id: str) -> None: ...
    def verify(self, run_id: str | None = None) -> list[Verification]: ...
    def verify_journal(self, since: str | None = None) -> JournalVerification: ...
    def head(self) -> tuple[Head, int]: ...
    def mark(self) -> str: ...
    def migrate(self) -> tuple[int, int]: ...
    def close(self) -> None: ...


class SqliteStore:
    """The journal in one SQLite file (WAL mode)."""

    def __init__(self, path: Path, db: sqlite3.Connection | None = None) -> None:
        self.path = path
        self.db: sqlite3.Connection = db if db is not None else connect(path)

    @classmethod
    def read_only(cls, path: Path) -> SqliteStore:
        """For the site: reads only, never creates, migrates or locks."""
        try:
            return cls(path, sqlite3.connect(f"file:{path}?mode=ro", uri=True))
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open the journal: {exc}") from None

    def start_run(self, run_id: str, abspath: str, runbook_text: str) -> JournalWriter:
        return JournalWriter(self.db, run_id, abspath, runbook_text)

    def continue_run(self, run_id: str) -> JournalWriter:
        return JournalWriter.resume(self.db, run_id, key=resume_key(self.db, run_id))

    def find_run(self, reference: str) -> RunSummary:
        from engine.journal import query

        return query.find_run(self.db, reference)

    def list_runs(
        self,
        runbook: str | None = None,
        status: str | None = None,
        since: float | None = None,
        operator: str | None = None,
        limit: int | None = None,
        host: str | None = None,
    ) -> list[RunSummary]:
        from engine.journal import query

        return query.list_runs(self.db, runbook, status, since, operator, limit, host)

    def read_run(self, summary: RunSummary) -> RunDetail:
        from engine.journal import query

        return query.run_detail(self.db, summary)

    def events(self, run_id: str) -> list[Event]:
        return list(stored_events(self.db, run_id))

    def runbook_text(self, run_id: str) -> tuple[str, str]:
        from engine.journal import query

        return query.runbook_text(self.db, run_id)

    def search(self, text: str, limit: int = 50) -> list[query.SearchHit]:
        from engine.journal import query

        return query.search(self.db, text, limit)

    def lock(
        self, abspath: str, run_id: str, operator: str, pid: int, force: bool
    ) -> lock.Holder | None:
        return lock.acquire(self.db, abspath, run_id, operator, pid, force)

    def unlock(self, abspath: str, run_id: str) -> None:
        lock.release(self.db, abspath, run_id)

    def verify(self, run_id: str | None = None) -> list[Verification]:
        from engine.journal.verify import verify_all, verify_run

        if run_id is None:
            return verify_all(self.db)
        return [verify_run(self.db, run_id)]

    def verify_journal(self, since: str | None = None) -> JournalVerification:
        from engine.journal.verify import verify_journal

        return verify_journal(self.db, since)

    def head(self) -> tuple[Head, int]:
        (runs,) = self.db.execute("SELECT count(*) FROM runs").fetchone()
        return read_head(self.db), int(runs)

    def mark(self) -> str:
        """Changes whenever a run is written (what `mkdocs serve` polls)."""
        from engine.journal import query

        return query.mark(self.db)

    def migrate(self) -> tuple[int, int]:
        return migrate(self.db, str(self.path))

    def close(self) -> None:
        self.db.close()


def open_store(journal: Path | str, read_only: bool = False) -> Store:
    """The journal at `journal` (a file, or a postgresql:// URL): the one place a backend is
    chosen. PostgreSQL's driver is loaded only for a PostgreSQL journal."""
    if is_url(journal):
        from engine.journal.postgres import PostgresStore

        return PostgresStore(str(journal))
    if read_only:
        return SqliteStore.read_only(Path(journal))
    return SqliteStore(Path(journal))
