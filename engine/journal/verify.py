"""Tamper evidence: recompute every run's hash chain and name the first event that differs;
check that the run's summary row (what `log list` shows) agrees with its events; then check the
chain over runs (`chain.py`): seals in order, none missing, the head where the journal says.

Every backend runs these same statements (PostgreSQL's through its `?` adapter)."""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from engine.journal.chain import (
    CHAIN_FORMAT,
    GENESIS,
    SEAL,
    Head,
    RunChain,
    Seal,
    check_runs_chain,
    current_head,
    event_hash,
    journal_key,
    parse_seal,
    run_chain,
)
from engine.journal.store import canonical, read_head

_LIFECYCLE = ("run-started", "run-resumed", "run-finished")


@dataclass(frozen=True, slots=True)
class Verification:
    run_id: str
    events: int
    ok: bool
    problem: str = ""
    head: str = ""
    note: str = ""  # e.g. "older chain format": verified, but not sealed into the journal
    chain: RunChain | None = field(default=None, compare=False)
    keyed: bool = False  # its hashes are HMACs with the journal's key


@dataclass(frozen=True, slots=True)
class JournalVerification:
    """Every run checked, and the chain over runs: what `log verify` and the site report."""

    runs: list[Verification]
    problems: list[str]
    head: Head
    unsealed: int  # runs of the current format not sealed yet (running, or killed)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.runs)


_EVENTS = "SELECT run_id, seq, kind, step, attempt, time, data, prev, hash FROM events"
_SUMMARY = (
    "SELECT id, events, last_hash, r.digest, t.text, path, title, operator, host, params,"
    " status, git_commit, email, started FROM runs r"
    " LEFT JOIN runbook_texts t ON t.digest = r.digest"
)
BATCH_RUNS = 100  # runs read per query by verify_all: few round trips, bounded memory


def verify_run(db: Any, run_id: str, key: bytes | None = None) -> Verification:
    """Check one run: each event's hash, the links between them, and the run's summary."""
    row = db.execute(f"{_SUMMARY} WHERE id = ?", (run_id,)).fetchone()
    summary = None if row is None else _Summary(*row[1:])
    events = db.execute(f"{_EVENTS} WHERE run_id = ? ORDER BY seq", (run_id,))
    return _check_run(run_id, events, summary, journal_key() if key is None else key)


def _check_run(
    run_id: str, events: Iterable[Sequence[Any]], summary: _Summary | None, key: bytes | None
) -> Verification:
    """One run's events (rows of `_EVENTS`, in order) against their chain and its summary row.
    After the first problem the rest is read for its seals only (the chain over runs counts
    them)."""
    prev, count, expected_seq, first_at = GENESIS, 0, 1, 0.0
    lifecycle: list[tuple[str, str]] = []
    seals: list[Seal] = []
    chain = RunChain(run_id, 1)
    hash_key: bytes | None = None
    problem, failed_at = "", 0
    for _run, seq, kind, step, attempt, at, data, stored_prev, stored_hash in events:
        count += 1
        if kind == SEAL:
            seal = parse_seal(run_id, data, stored_hash)
            if seal is not None:
                seals.append(seal)
            elif not problem:
                problem, failed_at = f"event {seq} (a seal) cannot be read", count
        if problem:
            continue
        if seq != expected_seq:
            problem, failed_at = f"event {expected_seq} is missing", count
            continue
        if seq == 1:
            first_at = float(at)
            chain = run_chain(run_id, data if kind == "run-started" else None, ())
            if chain.format >= CHAIN_FORMAT and '"keyed":true' in data:
                if not key:
                    problem, failed_at = "its chain is keyed: set RUNBOOK_JOURNAL_KEY", count
                    continue
                hash_key = key
        if stored_prev != prev:
            problem = f"event {seq} ({kind}) does not follow event {seq - 1}"
        elif event_hash(prev, run_id, seq, kind, step, attempt, at, data, hash_key) != stored_hash:
            problem = f"event {seq} ({kind}, step {step or '-'}) was changed"
        if problem:
            failed_at = count
            continue
        if kind in _LIFECYCLE:
            lifecycle.append((kind, data))
        prev, expected_seq = stored_hash, seq + 1
    chain = RunChain(run_id, chain.format, chain.start_head, tuple(seals))
    if problem:
        return Verification(run_id, failed_at, False, problem, chain=chain)
    if summary is None:
        return Verification(run_id, count, False, "the run's record is missing", chain=chain)
    if int(summary.events) != count or summary.last_hash != prev:
        return Verification(
            run_id,
            count,
            False,
            f"the run records {summary.events} events but {count} remain",
            chain=chain,
        )
    if hashlib.sha256(str(summary.text).encode("utf-8")).hexdigest() != summary.digest:
        return Verification(
            run_id, count, False, "the stored runbook text does not match its sha256", chain=chain
        )
    differs = _summary_differs(summary, lifecycle, first_at)
    if differs:
        return Verification(
            run_id,
            count,
            False,
            f"the run's summary ({differs}) differs from its events",
            chain=chain,
        )
    note = ""
    if chain.format < CHAIN_FORMAT:
        note = "older chain format: its events are chained, the run is not sealed"
    elif key and not hash_key:
        note = "not keyed: written without RUNBOOK_JOURNAL_KEY"
    return Verification(
        run_id, count, True, head=prev, note=note, chain=chain, keyed=hash_key is not None
    )


class _Summary(NamedTuple):
    """A run's row in the runs table (the index `log list` reads), as verify reads it."""

    events: int
    last_hash: str
    digest: str
    text: str | None
    path: str
    title: str
    operator: str
    host: str
    params: str
    status: str
    git_commit: str | None
    email: str | None
    started: float


def _summary_differs(row: _Summary, lifecycle: list[tuple[str, str]], first_at: float) -> str:
    """The first summary field that its run-started / run-finished events do not back."""
    if not lifecycle or lifecycle[0][0] != "run-started":
        return "start"
    started = json.loads(lifecycle[0][1])
    latest = json.loads(next(d for k, d in reversed(lifecycle) if k != "run-finished"))
    final_kind, final_data = lifecycle[-1]
    status = json.loads(final_data).get("status") if final_kind == "run-finished" else "running"
    expected = {
        "sha256": (row.digest, started.get("digest")),
        "path": (row.path, started.get("path")),
        "title": (row.title, started.get("title")),
        "operator": (row.operator, started.get("operator")),
        "host": (row.host, latest.get("host")),
        "params": (row.params, canonical(started.get("params") or {})),
        "git commit": (row.git_commit, started.get("git_commit")),
        "email": (row.email, started.get("email")),
        "status": (row.status, status),
        "start time": (float(row.started), first_at),
    }
    return next((name for name, (stored, backed) in expected.items() if stored != backed), "")


def verify_all(db: Any, key: bytes | None = None) -> list[Verification]:
    """Every run, oldest first, read BATCH_RUNS runs per query (a journal on a server is
    not one round trip per run); each batch's events are streamed, not held at once."""
    key = journal_key() if key is None else key
    ids = [str(row[0]) for row in db.execute("SELECT id FROM runs ORDER BY started").fetchall()]
    stream = getattr(db, "stream", None) or db.execute  # PostgreSQL's streams its rows
    checked: dict[str, Verification] = {}
    for start in range(0, len(ids), BATCH_RUNS):
        batch = sorted(ids[start : start + BATCH_RUNS])
        marks = ",".join("?" * len(batch))
        summaries = {
            str(row[0]): _Summary(*row[1:])
            for row in db.execute(f"{_SUMMARY} WHERE id IN ({marks})", batch).fetchall()
        }
        runs = itertools.groupby(
            stream(f"{_EVENTS} WHERE run_id IN ({marks}) ORDER BY run_id, seq", batch),
            key=operator.itemgetter(0),
        )
        found, rows = next(runs, (None, iter(())))
        for run_id in batch:  # both in the order of their ids
            events: Iterable[Sequence[Any]] = ()
            if found == run_id:
                events = rows
            checked[run_id] = _check_run(run_id, events, summaries.get(run_id), key)
            if found == run_id:
                found, rows = next(runs, (None, iter(())))
    return [checked[run_id] for run_id in ids]


def unkeyed_after_keyed(runs: list[Verification]) -> list[Verification]:
    """With the key set, a run of the current format written without it after the journal's
    first keyed run fails: that is how a run added by a writer without the key looks (its
    plain hashes and its seal verify, the key is what it could not use). Unkeyed runs sealed
    before the first keyed run started are earlier history, which keyed seals cover."""
    first = next((n for n, r in enumerate(runs) if r.keyed and r.chain is not None), None)
    if first is None:
        return runs
    seals = {s.hash: s.number for r in runs if r.chain for s in r.chain.seals}
    seals[GENESIS] = 0
    keyed_chain = runs[first].chain
    assert keyed_chain is not None
    keyed_start = seals.get(keyed_chain.start_head or "", -1)
    checked = []
    for n, run in enumerate(runs):
        chain = run.chain
        if run.ok and not run.keyed and chain is not None and chain.format >= CHAIN_FORMAT:
            start = seals.get(chain.start_head or "")
            before = (
                n < first
                and start is not None
                and start < keyed_start
                and all(seal.number <= keyed_start for seal in chain.seals)
            )
            if not before:
                run = replace(
                    run,
                    ok=False,
                    problem=f"not keyed, but written after keyed run {runs[first].run_id}:"
                    " a writer without RUNBOOK_JOURNAL_KEY added it (or forged it)",
                )
        checked.append(run)
    return checked


def verify_journal(
    db: Any, since: str | None = None, key: bytes | None = None
) -> JournalVerification:
    """Every run, then the chain over runs (and, given a head printed earlier, that it is
    still in the journal: a journal rolled back to an older copy has lost it)."""
    key = journal_key() if key is None else key
    runs = verify_all(db, key)
    chains = [r.chain for r in runs if r.chain is not None]
    problems = check_runs_chain(chains, read_head(db), since)
    if key:
        runs = unkeyed_after_keyed(runs)
    unsealed = sum(1 for c in chains if c.format >= CHAIN_FORMAT and not c.seals)
    return JournalVerification(runs, problems, current_head(chains), unsealed)
