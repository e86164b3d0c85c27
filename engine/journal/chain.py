"""The hash chains, shared by every backend: each event chained to the one before it in its run,
and each run sealed into one chain over the whole journal.

A run of chain format 2 starts with the journal's head (the last seal) in its first event and
ends, each time it finishes, with a `run-sealed` event: its hash covers the run's every event
(through the run's own chain) and the seal before it, so the seals form one chain, numbered
1, 2, 3... Deleting a run, or a run's last events, breaks that chain or leaves the head the
journal records behind; a rollback to an older copy is caught against a head printed earlier.
With `RUNBOOK_JOURNAL_KEY` set, every hash is an HMAC: without the key nobody can forge a
chain that verifies. Runs written before format 2 keep their own chains (format 1).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.events import EventKind, RunSealed, from_data

GENESIS = "0" * 64
CHAIN_FORMAT = 2
SEAL = str(EventKind.RUN_SEALED)  # a seal's stored kind (`RunSealed`: the journal's, not the run's)
KEY_VARIABLE = "RUNBOOK_JOURNAL_KEY"


def journal_key() -> bytes | None:
    """The key of a keyed chain, from the environment (never stored anywhere)."""
    value = os.environ.get(KEY_VARIABLE)
    return value.encode("utf-8") if value else None


def event_hash(
    prev: str,
    run_id: str,
    seq: int,
    kind: str,
    step: str | None,
    attempt: int,
    at: float,
    data: str | bytes,
    key: bytes | None = None,
) -> str:
    """sha256 (an HMAC with `key`) over the previous hash and every stored field of the event,
    joined by \x1f (the data, often megabytes, is hashed as it is rather than copied; given as
    its UTF-8 bytes it is not even encoded)."""
    fields = (prev, run_id, str(seq), kind, step or "", str(attempt), repr(at), "")
    digest = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
    digest.update("\x1f".join(fields).encode("utf-8"))
    digest.update(data if isinstance(data, bytes) else data.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """The journal's head: how many seals, and the last one's hash."""

    seals: int
    hash: str

    def describe(self) -> str:
        return f"{self.seals} seal(s), head {self.hash}"


def start_fields(head: Head, key: bytes | None) -> dict[str, object]:
    """What a format-2 run's first event records besides the run: the head it started at."""
    return {"chain": CHAIN_FORMAT, "head": head.hash, "head_seals": head.seals, "keyed": bool(key)}


def sealing(head: Head, run_events: int, at: float) -> RunSealed:
    """The seal after a run's end: the next number, the seal it follows, the events it covers."""
    return RunSealed(head.seals + 1, head.hash, run_events, time=at)


@dataclass(frozen=True, slots=True)
class Seal:
    """A seal as verify reads it back."""

    run_id: str
    number: int
    previous: str
    hash: str


@dataclass(frozen=True, slots=True)
class RunChain:
    """What verify learnt of one run's place in the chain over runs."""

    run_id: str
    format: int
    start_head: str | None = None
    seals: tuple[Seal, ...] = field(default_factory=tuple)


def run_chain(run_id: str, first_data: str | None, seals: Iterable[Seal]) -> RunChain:
    """A run's chain format and start head, read from its first event's data."""
    try:
        started = json.loads(first_data) if first_data else {}
    except ValueError:
        started = {}
    if not isinstance(started, dict) or started.get("chain") != CHAIN_FORMAT:
        return RunChain(run_id, 1)
    head = started.get("head")
    return RunChain(run_id, CHAIN_FORMAT, head if isinstance(head, str) else None, tuple(seals))


def parse_seal(run_id: str, data: str, digest: str) -> Seal | None:
    """A stored seal's place in the chain; None when its data cannot be read."""
    try:
        fields = json.loads(data)
        sealed = from_data(SEAL, None, 0, 0.0, fields if isinstance(fields, dict) else {})
    except ValueError:
        return None
    assert isinstance(sealed, RunSealed)
    return Seal(run_id, sealed.seal, sealed.previous, digest)


def check_runs_chain(runs: list[RunChain], recorded: Head, since: str | None = None) -> list[str]:
    """Every break in the chain over runs: a missing or reordered seal, a run started at a head
    the journal no longer holds, a head ahead of the last seal, a head given earlier that is
    gone (a rollback). Empty when the chain is whole."""
    problems: list[str] = []
    seals = sorted((s for run in runs for s in run.seals), key=lambda s: s.number)
    by_number: dict[int, Seal] = {}
    for seal in seals:
        if seal.number in by_number:
            problems.append(
                f"seal {seal.number} appears twice (runs {seal.run_id} and "
                f"{by_number[seal.number].run_id})"
            )
        by_number[seal.number] = seal
    last = max(by_number, default=0)
    previous = GENESIS
    for number in range(1, last + 1):
        found = by_number.get(number)
        if found is None:
            problems.append(f"seal {number} is missing: a run, or the end of one, was deleted")
            previous = ""
            continue
        if previous and found.previous != previous:
            problems.append(
                f"seal {number} (run {found.run_id}) does not follow seal {number - 1}:"
                " runs were reordered or rewritten"
            )
        previous = found.hash
    index = {seal.hash: seal.number for seal in seals}
    index[GENESIS] = 0
    for run in runs:
        if run.format < CHAIN_FORMAT:
            continue
        if run.start_head not in index:
            problems.append(
                f"run {run.run_id} started at a head the journal does not hold: a run before"
                " it was deleted"
            )
            continue
        started_after = index[run.start_head]
        if any(seal.number <= started_after for seal in run.seals):
            problems.append(
                f"run {run.run_id} started after seal {started_after} but is sealed before it:"
                " runs were reordered"
            )
    top = by_number.get(last)
    if recorded.seals > last:
        problems.append(
            f"the journal's head records {recorded.seals} seal(s) but {last} remain:"
            " the last runs, or their ends, were deleted"
        )
    elif recorded.seals == last and top is not None and recorded.hash != top.hash:
        problems.append("the journal's head differs from its last seal")
    if since:
        wanted = since.split(":")[-1].strip().lower()
        if len(wanted) < 12 or not any(h.startswith(wanted) for h in index):
            problems.append(
                f"head {wanted} is not in this journal: it was rolled back to an older copy,"
                " or rewritten"
            )
    return problems


def current_head(runs: list[RunChain]) -> Head:
    """The last seal of the chain as verify rebuilt it."""
    seals = [s for run in runs for s in run.seals]
    if not seals:
        return Head(0, GENESIS)
    top = max(seals, key=lambda s: s.number)
    return Head(top.number, top.hash)
