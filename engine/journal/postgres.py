"""The journal in PostgreSQL (psycopg 3): one journal shared by a team.

The same tables as SQLite's, written by the same `JournalWriter` and read by the same queries
(`query.py`, `verify.py`) through `Qmark`, which speaks their `?` placeholders; full-text
search is PostgreSQL's own (`tsvector` and a GIN index). The per-runbook lock is an advisory
lock held by the engine's session: it dies with the engine (no stale lock), and the `active`
table names who holds it. Every run also holds a lock on its own id while it runs, which is
how `log list` tells, from any machine, that a `running` run was killed.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import psycopg

from engine.events import Event, RunStatus
from engine.journal import query
from engine.journal.chain import Head
from engine.journal.location import shown as redacted
from engine.journal.lock import Holder, RunLocked
from engine.journal.store import (
    SCHEMA_VERSION,
    JournalError,
    JournalUnavailable,
    JournalWriter,
    check_schema,
    migrate,
    read_head,
    resume_key,
    schema_version,
    stored_events,
)
from engine.journal.verify import JournalVerification, Verification, verify_journal, verify_run
from engine.record import RunDetail, RunSummary

_RUNBOOK_LOCKS = 0x52420001  # advisory lock namespaces (the first of two int4 keys)
_RUN_LOCKS = 0x52420002
_HEAD_LOCK = 0x52420003

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT COLLATE "C" PRIMARY KEY,
    path TEXT NOT NULL,
    abspath TEXT NOT NULL,
    title TEXT NOT NULL,
    digest TEXT NOT NULL,
    git_commit TEXT,
    git_dirty INTEGER,
    operator TEXT NOT NULL,
    email TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started DOUBLE PRECISION NOT NULL,
    ended DOUBLE PRECISION,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    last_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runbook_texts (digest TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE INDEX IF NOT EXISTS runs_status_started ON runs (status, started);
CREATE INDEX IF NOT EXISTS runs_path_started ON runs (path, started);
CREATE INDEX IF NOT EXISTS runs_host_started ON runs (host, started);
CREATE INDEX IF NOT EXISTS runs_operator_started ON runs (operator, started);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT COLLATE "C" NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    attempt INTEGER NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS events_ends ON events (kind)
    WHERE kind IN ('run-sealed', 'run-finished');
CREATE TABLE IF NOT EXISTS search (
    id BIGSERIAL PRIMARY KEY,
    text TEXT NOT NULL,
    run_id TEXT NOT NULL,
    step TEXT,
    field TEXT NOT NULL,
    words TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
CREATE INDEX IF NOT EXISTS search_words ON search USING GIN (words);
CREATE TABLE IF NOT EXISTS active (
    abspath TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    operator TEXT NOT NULL,
    since DOUBLE PRECISION NOT NULL
);
"""
# The planner's statistics of the words: with the default, a word it has not sampled is
# guessed common, and `log search` of a rare word walks every row newest first (seconds at
# 50,000 runs) instead of asking the GIN index. `journal migrate` applies it to a journal too.
_TUNING = """
ALTER TABLE search ALTER COLUMN words SET STATISTICS 10000;
"""


def _lock_key(text: str) -> int:
    """An int4 advisory lock key for a runbook path or a run id."""
    return zlib.crc32(text.encode("utf-8")) - 2**31


class Qmark:
    """A psycopg connection as the shared journal code uses sqlite3's: `execute(sql, args)`
    with `?` placeholders, returning a cursor; and the writer's transactions."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(args))

    def stream(self, sql: str, args: Sequence[object] = ()) -> Iterator[Any]:
        """Rows as the server sends them, not the whole result held first (a batch of runs
        may be gigabytes of output); in chunks where the libpq allows it (version 17)."""
        size = 500 if psycopg.pq.version() >= 170000 else 1
        with self.conn.cursor() as cursor:
            yield from cursor.stream(
                sql.replace("%", "%%").replace("?", "%s"), tuple(args), size=size
            )

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Many rows in one round trip (psycopg pipelines them)."""
        with self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("%", "%%").replace("?", "%s"), rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def lock_head(self) -> None:
        """Writers that read and move the head take turns (until their transaction ends)."""
        self.conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_HEAD_LOCK,))


def connect(url: str) -> psycopg.Connection[Any]:
    """A session with the journal's database, its schema created or brought up to date."""
    shown = redacted(url)
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except Exception as exc:  # psycopg.Error; a malformed URL is a ProgrammingError too
        raise JournalUnavailable(f"{shown}: cannot open the journal: {_reason(exc, url)}") from None
    db = Qmark(conn)
    try:
        if _current(conn, shown):
            return conn  # the usual case: one round trip, no transaction, no lock
        with conn.transaction():
            db.lock_head()  # two engines creating the schema at once take turns
            current = False
            if _one(conn.execute("SELECT to_regclass('meta')").fetchone()) is not None:
                check_schema(db, shown)
                current = schema_version(db) == SCHEMA_VERSION
            if not current:
                # DDL only when the schema is missing or older: CREATE INDEX locks its table
                # even when the index exists, and would deadlock with engines writing runs.
                conn.execute(_SCHEMA + _TUNING)
                migrate(db, shown)
    except psycopg.Error as exc:
        conn.close()
        raise JournalError(f"{shown}: cannot open the journal: {exc}") from None
    except JournalError:
        conn.close()
        raise
    return conn


def _current(conn: psycopg.Connection[Any], shown: str) -> bool:
    """Whether the schema is this engine's version, by one query (a newer one is refused);
    False when it is missing or older, and the caller sets it up under the head lock."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except psycopg.errors.UndefinedTable:
        return False  # autocommit: the failed statement leaves the session usable
    version = int(row[0]) if row else None
    if version is not None and version > SCHEMA_VERSION:
        check_schema(Qmark(conn), shown)  # raises, with the message every backend gives
    return version == SCHEMA_VERSION


class PostgresWriter(JournalWriter):
    """The shared writer over PostgreSQL: one transaction per batch, as with SQLite."""


class PostgresStore:
    """The journal in a PostgreSQL database: the `Store` protocol over one session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown = redacted(url)
        self.conn = connect(url)
        self.db = Qmark(self.conn)
        self._host = socket.gethostname()

    def _check(self, action: str) -> contextlib.AbstractContextManager[None]:
        return _translated(f"{self.shown}: cannot {action}")

    def start_run(self, run_id: str, abspath: str, runbook_text: str) -> JournalWriter:
        self._hold_run(run_id)
        return PostgresWriter(self.db, run_id, abspath, runbook_text, self.db)

    def continue_run(self, run_id: str) -> JournalWriter:
        self._hold_run(run_id)
        return JournalWriter.resume(self.db, run_id, self.db, key=resume_key(self.db, run_id))

    def _hold_run(self, run_id: str) -> None:
        """Held for as long as this session lives: the run is alive while it is."""
        with self._check("record the run"):
            self.conn.execute("SELECT pg_advisory_lock(%s, %s)", (_RUN_LOCKS, _lock_key(run_id)))

    def _live_runs(self) -> set[int]:
        rows = self.conn.execute(
            "SELECT objid::int8 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::int8 = %s AND objsubid = 2",
            (_RUN_LOCKS,),
        ).fetchall()
        return {int(r[0]) for r in rows}

    def _alive(self, runs: list[RunSummary]) -> list[RunSummary]:
        """A `running` run whose engine's session is gone was killed: interrupted."""
        running = [r for r in runs if r.status == RunStatus.RUNNING]
        if not running:
            return runs
        live = {k & 0xFFFFFFFF for k in self._live_runs()}
        return [
            replace(r, status=str(RunStatus.INTERRUPTED))
            if r.status == RunStatus.RUNNING and (_lock_key(r.id) & 0xFFFFFFFF) not in live
            else r
            for r in runs
        ]

    def find_run(self, reference: str) -> RunSummary:
        with self._check("read the journal"):
            return self._alive([query.find_run(self.db, reference, judge=False)])[0]

    def list_runs(
        self,
        runbook: str | None = None,
        status: str | None = None,
        since: float | None = None,
        operator: str | None = None,
        limit: int | None = None,
        host: str | None = None,
    ) -> list[RunSummary]:
        with self._check("read the journal"):
            wanted = status
            if status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
                status = str(RunStatus.INTERRUPTED)  # both, told apart below
            runs = query.list_runs(
                self.db,
                runbook,
                status,
                since,
                operator,
                None if wanted else limit,
                host,
                judge=False,
            )
            runs = self._alive(runs)
            if wanted:
                runs = (
                    [r for r in runs if r.status == wanted][:limit]
                    if limit
                    else [r for r in runs if r.status == wanted]
                )
            return runs

    def read_run(self, summary: RunSummary) -> RunDetail:
        with self._check("read the journal"):
            return query.run_detail(self.db, summary)

    def events(self, run_id: str) -> list[Event]:
        with self._check("read the journal"):
            return list(stored_events(self.db, run_id))

    def runbook_text(self, run_id: str) -> tuple[str, str]:
        with self._check("read the journal"):
            return query.runbook_text(self.db, run_id)

    def search(self, text: str, limit: int = 50) -> list[query.SearchHit]:
        words = re.findall(r"\w+", text)
        if not words:
            return []
        with self._check("search the journal"):
            rows = self.conn.execute(
                # Newest first by the order rows were written: no sort of every match.
                "SELECT text, step, field, run_id FROM search"
                " WHERE words @@ phraseto_tsquery('simple', %s) ORDER BY id DESC LIMIT %s",
                (" ".join(words), limit * 4),
            ).fetchall()
            return query.hits(rows, self.find_run, text, limit)

    def lock(
        self, abspath: str, run_id: str, operator: str, pid: int, force: bool
    ) -> Holder | None:
        """The runbook's advisory lock for this session; the `active` row names the holder.
        A row whose lock is free was left by an engine that died: stale, replaced."""
        with self._check("lock the runbook in the journal"):
            key = _lock_key(abspath)
            got = _one(
                self.conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (_RUNBOOK_LOCKS, key)
                ).fetchone()
            )
            row = self.conn.execute(
                "SELECT run_id, pid, host, operator, since FROM active WHERE abspath = %s",
                (abspath,),
            ).fetchone()
            previous = (
                Holder(row[0], int(row[1]), row[2], row[3], float(row[4]), live=False)
                if row
                else None
            )
            if not got:
                holder = previous or Holder("?", 0, "another engine", "someone", time.time())
                holder = replace(holder, live=True)
                if not force:
                    raise RunLocked(holder)
                return holder
            self.conn.execute(
                "INSERT INTO active (abspath, run_id, pid, host, operator, since)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (abspath) DO UPDATE SET"
                " run_id = excluded.run_id, pid = excluded.pid, host = excluded.host,"
                " operator = excluded.operator, since = excluded.since",
                (abspath, run_id, pid, self._host, operator, time.time()),
            )
            return previous

    def unlock(self, abspath: str, run_id: str) -> None:
        with contextlib.suppress(psycopg.Error):
            deleted = self.conn.execute(
                "DELETE FROM active WHERE abspath = %s AND run_id = %s", (abspath, run_id)
            ).rowcount
            if deleted:
                self.conn.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (_RUNBOOK_LOCKS, _lock_key(abspath))
                )

    def verify(self, run_id: str | None = None) -> list[Verification]:
        with self._check("verify the journal"):
            if run_id is None:
                return self.verify_journal().runs
            return [verify_run(self.db, run_id)]

    def verify_journal(self, since: str | None = None) -> JournalVerification:
        with self._check("verify the journal"):
            return verify_journal(self.db, since)

    def head(self) -> tuple[Head, int]:
        with self._check("read the journal"):
            runs = _one(self.conn.execute("SELECT count(*) FROM runs").fetchone())
            return read_head(self.db), int(runs)

    def mark(self) -> str:
        """Changes whenever a run is written (what `mkdocs serve` polls)."""
        with self._check("read the journal"):
            return query.mark(self.db)

    def migrate(self) -> tuple[int, int]:
        with self._check("migrate the journal"), self.conn.transaction():
            self.conn.execute(_TUNING)
            return migrate(self.db, self.shown)

    def close(self) -> None:
        self.conn.close()


def _reason(exc: BaseException, url: str) -> str:
    """The first line of a driver's message, with the URL's password taken out of it."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    text = text.replace(url, redacted(url))
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
    return re.sub(r"//([^/@:\s]*):[^/@\s]*@", r"//\1:***@", text)


@contextlib.contextmanager
def _translated(prefix: str) -> Iterator[None]:
    """A server gone or a query refused is one line for the operator, never a traceback."""
    try:
        yield
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise JournalError(f"{prefix}: {first}") from None


__all__ = ["SCHEMA_VERSION", "PostgresStore"]


def _one(row: Any) -> Any:
    """The single value of a one-row, one-column answer (such queries always return a row)."""
    assert row is not None
    return row[0]
