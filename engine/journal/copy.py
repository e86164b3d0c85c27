"""`runbook journal copy SRC DST`: every run of one journal into another (SQLite to PostgreSQL
and back), rows as stored, so every hash, seal and chain is the same on both sides.

Idempotent: a run already in DST is left alone, or, when DST holds the start of it (the run
went on in SRC since), its missing events are appended. DST must be empty or an earlier copy of
SRC: merging two journals' chains over runs would number two seals alike. Both sides are
verified at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.journal.chain import SEAL, Head
from engine.journal.location import Location, shown
from engine.journal.storage import Store, open_store
from engine.journal.store import SqliteTransactions, read_head, write_head
from engine.journal.verify import JournalVerification

_RUN_COLUMNS = (
    "id, path, abspath, title, digest, git_commit, git_dirty, operator, email, host, pid,"
    " started, ended, status, params, events, last_hash"
)
_EVENT_COLUMNS = "run_id, seq, kind, step, attempt, time, data, prev, hash"


class CopyError(Exception):
    """The copy cannot be made as asked: one line for the operator."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy did, and how both sides verified afterwards."""

    source: str
    target: str
    copied: int
    extended: int
    present: int
    events: int
    source_check: JournalVerification
    target_check: JournalVerification

    @property
    def ok(self) -> bool:
        return self.source_check.ok and self.target_check.ok


def copy_journal(source: Location, target: Location) -> CopyReport:
    """Copy SRC's runs into DST (created if need be), then verify both."""
    if shown(source) == shown(target):
        raise CopyError("SRC and DST are the same journal")
    src = open_store(source)
    try:
        dst = open_store(target)
        try:
            counts = _copy(src, dst, shown(target))
            return CopyReport(
                shown(source), shown(target), *counts, src.verify_journal(), dst.verify_journal()
            )
        finally:
            dst.close()
    finally:
        src.close()


def _db(store: Store) -> Any:
    return store.db  # type: ignore[attr-defined]  # both backends keep their connection there


def _transactions(db: Any) -> Any:
    return db if hasattr(db, "transaction") else SqliteTransactions(db)


def _copy(src: Store, dst: Store, target: str) -> tuple[int, int, int, int]:
    sdb, ddb = _db(src), _db(dst)
    tx = _transactions(ddb)
    theirs = {
        r[0]: r[1]
        for r in ddb.execute(f"SELECT run_id, hash FROM events WHERE kind = '{SEAL}'").fetchall()
    }
    ours = {
        r[0]: r[1]
        for r in sdb.execute(f"SELECT run_id, hash FROM events WHERE kind = '{SEAL}'").fetchall()
    }
    strangers = {run for run, digest in theirs.items() if ours.get(run) is None}
    if strangers:
        raise CopyError(
            f"{target} holds runs the source does not (run {sorted(strangers)[0]}): a copy goes"
            " into an empty journal or an earlier copy of the source, so one chain over runs"
            " stays one"
        )
    have = {r[0]: int(r[1]) for r in ddb.execute("SELECT id, events FROM runs").fetchall()}
    copied = extended = present = events = 0
    for run in sdb.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started").fetchall():
        run_id, count = run[0], int(run[15])
        already = have.get(run_id)
        if already is not None and already >= count:
            present += 1
            continue
        rows = sdb.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, already or 0),
        ).fetchall()
        text = sdb.execute("SELECT text FROM runbook_texts WHERE digest = ?", (run[4],)).fetchone()
        search = sdb.execute(
            "SELECT text, run_id, step, field FROM search WHERE run_id = ?", (run_id,)
        ).fetchall()
        with tx.transaction():
            if text is not None:
                ddb.execute(
                    "INSERT INTO runbook_texts (digest, text) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (run[4], text[0]),
                )
            if already is None:
                marks = ", ".join("?" * len(run))
                ddb.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({marks})", tuple(run))
            else:
                ddb.execute("DELETE FROM search WHERE run_id = ?", (run_id,))
                ddb.execute(
                    "UPDATE runs SET ended = ?, status = ?, events = ?, last_hash = ?, pid = ?,"
                    " host = ? WHERE id = ?",
                    (run[12], run[13], run[15], run[16], run[10], run[9], run_id),
                )
            if rows:
                ddb.executemany(
                    f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(row) for row in rows],
                )
            if search:
                ddb.executemany(
                    "INSERT INTO search (text, run_id, step, field) VALUES (?, ?, ?, ?)",
                    [(str(text).replace("\x00", ""), *rest) for text, *rest in search],
                )
        events += len(rows)
        copied += already is None
        extended += already is not None
    with tx.transaction():
        tx.lock_head()
        head, theirs_head = read_head(sdb), read_head(ddb)
        if head.seals > theirs_head.seals:
            write_head(ddb, Head(head.seals, head.hash))
    return copied, extended, present, events
