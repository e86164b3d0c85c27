"""journal: the event stream of every run, persisted in SQLite (one file, WAL mode).

Each event is committed as it happens: "step started" before the step's command runs,
"step finished" before the next step is offered, output in chunks at most `FLUSH_SECONDS`
apart. Every event carries the hash of the previous event of its run (sha256 over a canonical
encoding), so `verify` finds any later change. The runs table is an index over the events for
fast listing; what a run was is always read from its events.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.events import (
    Event,
    EventKind,
    Output,
    RunResumed,
    RunSealed,
    RunStarted,
    RunStatus,
    StepFinished,
    StepStarted,
    from_data,
    to_data,
)
from engine.journal.chain import (
    GENESIS,
    Head,
    event_hash,
    journal_key,
    sealing,
    start_fields,
)
from engine.journal.checkpoint import Checkpointer

FLUSH_SECONDS = 0.25
FLUSH_BYTES = 512 * 1024
INDEX_BYTES = 512 * 1024
IN_FLIGHT = 4  # output chunks handed to the writer thread and not yet committed
PAGE_SIZE = 4096
# 1: runs chained event by event; 2: runs also sealed into one chain (the head in `meta`).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
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
    started REAL NOT NULL,
    ended REAL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    last_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runbook_texts (
    digest TEXT PRIMARY KEY,
    text TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE INDEX IF NOT EXISTS runs_status_started ON runs (status, started);
CREATE INDEX IF NOT EXISTS runs_path_started ON runs (path, started);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    text, run_id UNINDEXED, step UNINDEXED, field UNINDEXED, tokenize = 'unicode61'
);
CREATE TABLE IF NOT EXISTS active (
    abspath TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    operator TEXT NOT NULL,
    since REAL NOT NULL
);
"""


_SCHEMA_NAMES = frozenset(re.findall(r"(?:TABLE|INDEX) IF NOT EXISTS (\w+)", _SCHEMA))


class JournalError(Exception):
    """The journal cannot be opened or written: a clear message, no traceback."""


class JournalUnavailable(JournalError):
    """The journal asked for cannot be used at all (a bad URL, a server that is not there, a
    wrong password, a newer schema): a usage error, exit status 2."""


def canonical(value: object) -> str:
    """The one JSON encoding hashed and stored: sorted keys, no spaces, UTF-8 as is.

    orjson writes it (output chunks are megabytes: about 30 times faster than json); json
    takes what orjson refuses (integers past 64 bits, lone surrogates). Both write every
    string alike, and a stored event is verified against its text as stored."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_utf8(value: object) -> bytes:
    """`canonical` as the UTF-8 bytes the chain hashes: the writer hashes orjson's bytes
    rather than encoding its text back (a megabyte output chunk copied once less)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return canonical(value).encode("utf-8")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a journal database in WAL mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # it holds every output: readable by its owner only
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        # One writer thread may commit output while the engine reads more (JournalWriter).
        db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        # SQLite's own 4 KB pages: 16 KB ones (tried) stream output no faster end to end and
        # make each step's two small commits about 0.3 ms slower (every page a commit touches,
        # the search index's among them, is written whole). It takes effect only when the file
        # is created: an older journal keeps its page size.
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        check_schema(db, str(path))
        if not _has_schema(db):
            # One transaction (one commit) for the whole schema rather than one per statement.
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        migrate(db, str(path))
    except (sqlite3.Error, OSError) as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from None
    return db


def _has_schema(db: sqlite3.Connection) -> bool:
    """Whether every table and index of the schema is there (a journal opened again, or one
    of an earlier release that lacks a later table: then the schema is run as before)."""
    present = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master")}
    if not _SCHEMA_NAMES.issubset(present):
        return False
    return db.execute("SELECT 1 FROM meta WHERE key = 'schema'").fetchone() is not None


def schema_version(db: Any) -> int | None:
    """The journal's schema version from its `meta` table (None: a new, empty journal)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.OperationalError:
        return None  # no meta table yet
    return int(row[0]) if row else None


def check_schema(db: Any, where: str) -> None:
    """Refuse a journal written by a newer engine: its rows may mean what this one cannot read."""
    version = schema_version(db)
    if version is not None and version > SCHEMA_VERSION:
        raise JournalUnavailable(
            f"{where}: the journal has schema version {version}, newer than this engine's"
            f" ({SCHEMA_VERSION}): upgrade the runbook engine to use it"
        )


def migrate(db: Any, where: str) -> tuple[int, int]:
    """Bring the journal's schema to this engine's version; (before, after). Version 2 adds
    the chain over runs: its head starts at the genesis, older runs keep their format."""
    check_schema(db, where)
    before = schema_version(db)
    if before is None or before < SCHEMA_VERSION:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
    return (before or 0, SCHEMA_VERSION)


def read_head(db: Any) -> Head:
    """The head the journal records (its last seal), the genesis before the first."""
    row = db.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
    if not row:
        return Head(0, GENESIS)
    seals, _, digest = str(row[0]).partition(":")
    return Head(int(seals), digest)


def write_head(db: Any, head: Head) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('head', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (f"{head.seals}:{head.hash}",),
    )


class SqliteTransactions:
    """How the writer talks to SQLite: one immediate transaction per batch of events."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")  # writers take turns: the head is read safely
            yield

    def lock_head(self) -> None:
        """Nothing to do: BEGIN IMMEDIATE already keeps other writers out."""


@dataclass(slots=True)
class _Buffered:
    step: str | None
    attempt: int
    first: float
    text: list[str]
    size: int
    host: str | None = None  # a fanned-out step's host: each host's output is its own row


@dataclass(slots=True)
class _Row:
    """An event about to be written, and the text the search index gets for it."""

    kind: EventKind
    step: str | None
    attempt: int
    at: float
    data: dict[str, object]
    search: str = ""
    field: str = "output"


class JournalWriter:
    """An event sink that records one run: each event committed before the engine goes on.

    Output is coalesced (committed at most FLUSH_SECONDS or FLUSH_BYTES behind) and committed
    with the step's next event when that comes first. The search index gets the first and
    the last INDEX_BYTES of each step attempt's output; the events keep all of it.
    """

    def __init__(
        self,
        db: Any,
        run_id: str,
        abspath: str = "",
        runbook_text: str = "",
        transactions: Any = None,
        key: bytes | None = None,
    ) -> None:
        self.db = db  # an sqlite3 connection, or anything with its `execute` (PostgreSQL's)
        self._tx = transactions or SqliteTransactions(db)
        self.key = key if key is not None else journal_key()
        self.run_id = run_id
        self.abspath = abspath  # with the text, what a run's start records besides its event
        self.runbook_text = runbook_text
        self.seq = 0
        self.prev = GENESIS
        self._output: _Buffered | None = None
        self._indexed: tuple[str | None, int, int] = (None, 0, 0)  # step, attempt, bytes
        self._tail: list[str] = []
        # Output is committed by a background thread, so a step printing a lot is read while
        # its earlier output is written; every other event waits for that queue to drain.
        self._queue: queue.Queue[list[_Row]] = queue.Queue(maxsize=IN_FLIGHT)
        self._thread: threading.Thread | None = None
        self._failure: JournalError | None = None
        self._checkpoints = Checkpointer(db) if isinstance(db, sqlite3.Connection) else None

    @classmethod
    def resume(
        cls, db: Any, run_id: str, transactions: Any = None, key: bytes | None = None
    ) -> JournalWriter:
        """A writer that appends to an existing run's chain (keyed as the run started)."""
        row = db.execute(
            "SELECT seq, hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
        ).fetchone()
        writer = cls(db, run_id, transactions=transactions, key=key)
        if row:
            writer.seq, writer.prev = int(row[0]), str(row[1])
        return writer

    def emit(self, event: Event) -> None:
        if isinstance(event, Output):
            self._buffer(event)
            return
        self.drain()
        rows = self._take_output()
        stored = to_data(event)
        row = _Row(stored.kind, stored.step, stored.attempt, stored.time, stored.data)
        before = None  # the runs row changes in the same transaction as its event
        match event:
            case StepStarted():
                row.search = event.command or event.text
                row.field = "command"
                if event.host is not None:  # `log search HOST` finds what ran there
                    row.search += f"\n(on {event.host})"
                    row.field = f"command on {event.host}"
            case StepFinished() if self._tail:
                row.search, self._tail = "".join(self._tail), []
            case RunStarted():
                before = functools.partial(self._insert_run, event, row)
            case RunResumed():
                before = functools.partial(self._reopen_run, event)
        rows.append(row)
        self._commit(rows, before)

    def tick(self) -> None:
        """Called while a step is quiet: output older than FLUSH_SECONDS is committed."""
        buffered = self._output
        if buffered and time.time() - buffered.first >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Hand buffered output to the writer thread (at most IN_FLIGHT chunks in flight)."""
        self._raise_failure()
        rows = self._take_output()
        if not rows:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._write_output, daemon=True)
            self._thread.start()
        self._queue.put(rows)

    def drain(self) -> None:
        """Wait until every output chunk handed over is committed."""
        if self._thread is not None:
            self._queue.join()
        self._raise_failure()

    def close(self) -> None:
        self.flush()
        self.drain()
        if self._checkpoints is not None:
            self._checkpoints.close()

    def _write_output(self) -> None:
        while True:
            rows = self._queue.get()
            try:
                if self._failure is None:
                    self._commit(rows)
                    if self._checkpoints is not None:
                        self._checkpoints.written(
                            sum(len(str(row.data.get("text", ""))) for row in rows)
                        )
            except JournalError as exc:
                self._failure = exc
            finally:
                self._queue.task_done()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _buffer(self, event: Output) -> None:
        text = event.text
        buffered = self._output
        if buffered and (buffered.step, buffered.attempt, buffered.host) != (
            event.step,
            event.attempt,
            event.host,
        ):
            self.flush()
            buffered = None
        if buffered is None:
            buffered = self._output = _Buffered(
                event.step, event.attempt, event.time, [], 0, event.host
            )
        buffered.text.append(text)
        buffered.size += len(text)
        if buffered.size >= FLUSH_BYTES or event.time - buffered.first >= FLUSH_SECONDS:
            self.flush()

    def _take_output(self) -> list[_Row]:
        buffered, self._output = self._output, None
        if buffered is None:
            return []
        text = "".join(buffered.text)
        data: dict[str, object] = {"text": text}
        if buffered.host is not None:
            data["host"] = buffered.host
        return [
            _Row(
                EventKind.OUTPUT,
                buffered.step,
                buffered.attempt,
                buffered.first,
                data,
                search=self._indexable(buffered.step, buffered.attempt, text),
                field="output" if buffered.host is None else f"output on {buffered.host}",
            )
        ]

    def _indexable(self, step: str | None, attempt: int, text: str) -> str:
        """The part of an output chunk the search index takes now; the rest may join the tail
        that is indexed when the step finishes."""
        indexed_step, indexed_attempt, size = self._indexed
        if (indexed_step, indexed_attempt) != (step, attempt):
            size, self._tail = 0, []
        head = text[: max(INDEX_BYTES - size, 0)]
        self._indexed = (step, attempt, size + len(head))
        rest = text[len(head) :]
        if rest:
            self._tail.append(rest)
            while sum(map(len, self._tail)) - len(self._tail[0]) >= INDEX_BYTES:
                self._tail.pop(0)
        return head

    def _insert_run(self, event: RunStarted, row: _Row) -> None:
        facts = event.provenance
        if facts is None:
            raise JournalError(f"run {self.run_id}: a run starts with its provenance")
        # The run starts at the journal's head: a later deletion of a run before it shows.
        self._tx.lock_head()
        row.data = {**row.data, **start_fields(read_head(self.db), self.key)}
        # Each version of a runbook's text is kept once, by its sha256, for all its runs.
        self.db.execute(
            "INSERT INTO runbook_texts (digest, text) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (facts.digest, self.runbook_text),
        )
        self.db.execute(
            "INSERT INTO runs (id, path, abspath, title, digest, git_commit, git_dirty,"
            " operator, email, host, pid, started, status, params, last_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                event.path,
                self.abspath,
                event.title,
                facts.digest,
                facts.git_commit,
                None if facts.git_dirty is None else int(facts.git_dirty),
                facts.operator,
                facts.email,
                facts.host,
                facts.pid,
                event.time,
                str(RunStatus.RUNNING),
                canonical(dict(event.params)),
                GENESIS,
            ),
        )

    def _reopen_run(self, event: RunResumed) -> None:
        facts = event.provenance
        self.db.execute(
            "UPDATE runs SET status = ?, ended = NULL, pid = ?, host = ? WHERE id = ?",
            (
                str(RunStatus.RUNNING),
                facts.pid if facts else None,
                facts.host if facts else None,
                self.run_id,
            ),
        )

    def _commit(self, rows: list[_Row], before: Callable[[], None] | None = None) -> None:
        """Write events in one transaction, each chained to the one before; a run's end is
        sealed in the same transaction, into the chain over the journal's runs."""
        seq, prev = self.seq, self.prev
        try:
            with self._tx.transaction():
                if before is not None:
                    before()
                for row in rows:
                    seq, prev = self._insert(row, seq, prev)
                    if row.kind is EventKind.RUN_FINISHED:
                        self.db.execute(
                            "UPDATE runs SET status = ?, ended = ? WHERE id = ?",
                            (str(row.data.get("status")), row.at, self.run_id),
                        )
                        seq, prev = self._seal(row.at, seq, prev)
                self.db.execute(
                    "UPDATE runs SET events = ?, last_hash = ? WHERE id = ?",
                    (seq, prev, self.run_id),
                )
        except self._tx.errors as exc:
            raise JournalError(f"cannot write to the journal: {exc}") from None
        self.seq, self.prev = seq, prev

    def _insert(self, row: _Row, seq: int, prev: str) -> tuple[int, str]:
        seq += 1
        utf8 = canonical_utf8(row.data)
        payload = utf8.decode("utf-8")  # stored as text; hashed as the bytes it came from
        kind = str(row.kind)
        digest = event_hash(
            prev, self.run_id, seq, kind, row.step, row.attempt, row.at, utf8, self.key
        )
        self.db.execute(
            "INSERT INTO events (run_id, seq, kind, step, attempt, time, data, prev,"
            " hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.run_id, seq, kind, row.step, row.attempt, row.at, payload, prev, digest),
        )
        if row.search:
            self.db.execute(
                "INSERT INTO search (text, run_id, step, field) VALUES (?, ?, ?, ?)",
                (row.search.replace("\x00", ""), self.run_id, row.step, row.field),
            )
        return seq, digest

    def _seal(self, at: float, seq: int, prev: str) -> tuple[int, str]:
        """The seal after a run's end: its hash covers the run and the seal before it, and is
        the journal's new head (read and written while other writers wait)."""
        self._tx.lock_head()
        head = read_head(self.db)
        sealed = to_data(sealing(head, seq, at))
        seal = _Row(sealed.kind, None, 0, sealed.time, sealed.data)
        seq, digest = self._insert(seal, seq, prev)
        write_head(self.db, Head(head.seals + 1, digest))
        return seq, digest


def resume_key(db: Any, run_id: str) -> bytes:
    """The key a resumed run goes on hashing with: the journal's, if the run started keyed."""
    row = db.execute("SELECT data FROM events WHERE run_id = ? AND seq = 1", (run_id,)).fetchone()
    keyed = bool(row) and '"keyed":true' in str(row[0])
    key = journal_key()
    if keyed and not key:
        raise JournalError(
            f"run {run_id}: its chain is keyed: set RUNBOOK_JOURNAL_KEY to resume it"
        )
    return key if keyed and key else b""


def stored_events(db: Any, run_id: str) -> Iterator[Event]:
    """A run's events as recorded, in order."""
    for seq, kind, step, attempt, at, data in db.execute(
        "SELECT seq, kind, step, attempt, time, data FROM events WHERE run_id = ? ORDER BY seq",
        (run_id,),
    ):
        try:
            event = from_data(kind, step, attempt, at, json.loads(data))
        except (ValueError, TypeError, AttributeError):
            raise JournalError(
                f"run {run_id}: event {seq} cannot be read (run `runbook log verify {run_id}`)"
            ) from None
        if not isinstance(event, RunSealed):  # the journal's seal is not an event of the run
            yield event


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
