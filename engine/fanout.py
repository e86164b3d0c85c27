"""Fan-out: one step run on each host of a group, in parallel up to `forks` (or `serial`
hosts at a time, in order), with a policy on failure. Each host runs in a thread of its own;
every event is emitted from the run's own thread (the journal's connection stays there), so
the threads only hand output and ends over through a queue.
"""

from __future__ import annotations

import codecs
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.events import (
    Event,
    Output,
    SessionState,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
)
from engine.masking import Masker, StreamMasker
from engine.remote import TargetSessions
from engine.shell import Outcome, Responder, ShellError, StepIO
from engine.targets import Host


@dataclass(frozen=True, slots=True)
class HostResult:
    """How a step ended on one host: its status, the shell's outcome (None: it never ran,
    as when the connection failed), and why."""

    host: str
    status: StepStatus
    outcome: Outcome | None = None
    reason: str | None = None
    state: SessionState | None = None  # the host's session as the step left it, if changed


@dataclass(frozen=True, slots=True)
class FanOutPlan:
    """What a fanned-out step runs, where, and how many at once."""

    step: str
    command: str
    hosts: tuple[Host, ...]
    exec_words: dict[str, tuple[str, ...]]  # host -> its exec command, rendered
    limit: int  # hosts at once
    batches: bool  # serial: the next hosts start when the whole batch has ended
    policy: str  # stop, continue or ask
    interpreter: str | None = None
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    responders: tuple[Responder, ...] = ()
    retries: int = 0  # further attempts on a host where it failed (not where it was stopped)
    retry_delay: float = 0.0


class _Counter:
    """Ctrl-C presses for one host's step, taken by its thread."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._count += 1

    def take(self) -> bool:
        with self._lock:
            if self._count:
                self._count -= 1
                return True
            return False


def fan_out(
    plan: FanOutPlan,
    sessions: TargetSessions,
    emit: Callable[[Event], None],
    masker: Masker,
    ask_continue: Callable[[str, HostResult], bool],
    interrupted: Callable[[], bool],
    tick: Callable[[], None],
    attempt: int = 1,
    skip: Sequence[str] = (),
) -> list[HostResult]:
    """Run the step on every host (but those in `skip`); each host's start, output and end
    are emitted as its own events, each attempt of it too (a failed host is tried again up
    to `retries` times, `retry_delay` apart, before its failure counts). Returns each host's
    last result, in the hosts' order."""
    inbox: queue.Queue[tuple[str, str, object]] = queue.Queue()
    pending = [h for h in plan.hosts if h.name not in skip]
    running: dict[str, tuple[threading.Thread, _Counter]] = {}
    results: dict[str, HostResult] = {}
    attempts = {h.name: attempt for h in pending}
    again: list[tuple[float, Host]] = []  # hosts to try again, and when
    decoders = {h.name: codecs.getincrementaldecoder("utf-8")(errors="replace") for h in pending}
    streams = {h.name: StreamMasker(masker) for h in pending}
    stopped = False

    def worker(host: Host, counter: _Counter) -> None:
        try:
            session = sessions.session(host.name, host.ssh, plan.exec_words.get(host.name))
            io = StepIO(
                on_output=lambda data: inbox.put(("output", host.name, data)),
                responders=plan.responders,
                interrupt_requested=counter.take,
            )
            outcome = session.run_step(
                plan.command,
                io,
                interpreter=plan.interpreter,
                cwd=plan.cwd,
                env=plan.env,
                timeout=plan.timeout,
                no_input=not plan.responders,
            )
        except ShellError as exc:
            inbox.put(("done", host.name, HostResult(host.name, StepStatus.FAILED, None, str(exc))))
            return
        except Exception as exc:  # an engine error in a host's thread ends that host only
            reason = f"engine error: {type(exc).__name__}: {exc}"
            inbox.put(("done", host.name, HostResult(host.name, StepStatus.FAILED, None, reason)))
            return
        state = session.take_state()  # what resume rebuilds on this host
        inbox.put(
            ("done", host.name, HostResult(host.name, _status(outcome), outcome, None, state))
        )

    def start(host: Host) -> None:
        emit(
            StepStarted(
                plan.step,
                attempts[host.name],
                "command",
                command=plan.command,
                cwd=plan.cwd,
                host=host.name,
            )
        )
        counter = _Counter()
        thread = threading.Thread(target=worker, args=(host, counter), daemon=True)
        running[host.name] = (thread, counter)
        thread.start()

    def flush(name: str) -> None:
        text = decoders[name].decode(streams[name].flush(), final=True)
        if text:
            emit(Output(plan.step, attempts[name], text, host=name))

    while running or again or (pending and not stopped):
        now = time.monotonic()
        while again and again[0][0] <= now and len(running) < plan.limit and not stopped:
            start(again.pop(0)[1])  # a host tried again keeps its place in its batch
        can_start = not stopped and (not plan.batches or not (running or again))
        while can_start and pending and len(running) < plan.limit:
            start(pending.pop(0))
        if stopped and again and not running:
            again.clear()  # Ctrl-C or a failure elsewhere: no host is tried again
            continue
        wait = 0.2 if not again else min(0.2, max(0.0, again[0][0] - now))
        try:
            kind, name, item = inbox.get(timeout=wait)
        except queue.Empty:
            tick()
            if interrupted():
                stopped = True  # Ctrl-C: no new host starts; each running one is told
                for _, counter in running.values():
                    counter.add()
            continue
        if kind == "output":
            assert isinstance(item, bytes)
            text = decoders[name].decode(streams[name].feed(item))
            if text:
                emit(Output(plan.step, attempts[name], text, host=name))
            continue
        assert isinstance(item, HostResult)
        thread, _ = running.pop(name)
        thread.join()
        flush(name)
        outcome = item.outcome
        retry = (
            item.status in (StepStatus.FAILED, StepStatus.TIMED_OUT)
            and attempts[name] < attempt + plan.retries
            and not stopped
        )
        emit(
            StepFinished(
                plan.step,
                attempts[name],
                item.status,
                reason=(
                    f"{item.reason + '; ' if item.reason else ''}tried again"
                    f" ({attempts[name] - attempt + 1} of {plan.retries} retries)"
                )
                if retry
                else item.reason,
                result=None
                if outcome is None
                else StepResult(
                    exit_code=outcome.exit_code,
                    signal=outcome.signal,
                    duration=round(outcome.duration, 6),
                    timed_out=outcome.timed_out,
                    interrupted=outcome.interrupted,
                ),
                host=name,
                state=item.state,
            )
        )
        results[name] = item  # the last attempt's, until another one ends
        if retry:
            attempts[name] += 1
            host = next(h for h in plan.hosts if h.name == name)
            again.append((time.monotonic() + plan.retry_delay, host))
            again.sort(key=lambda waiting: waiting[0])
            continue
        if item.status is not StepStatus.SUCCEEDED and not stopped:
            if plan.policy == "continue":
                continue
            if plan.policy == "ask" and ask_continue(name, item):
                continue
            stopped = True
    return [results[h.name] for h in plan.hosts if h.name in results]


def _status(outcome: Outcome) -> StepStatus:
    if outcome.ok:
        return StepStatus.SUCCEEDED
    if outcome.timed_out:
        return StepStatus.TIMED_OUT
    if outcome.interrupted:
        return StepStatus.INTERRUPTED
    return StepStatus.FAILED


def host_summary(results: Sequence[HostResult], total: int) -> str:
    """`2 of 3 hosts failed: web2 (exit status 1), web3 (connection refused); 1 not run`."""
    failed = [r for r in results if r.status is not StepStatus.SUCCEEDED]
    not_run = total - len(results)
    if not failed and not not_run:
        return f"succeeded on all {total} hosts" if total != 1 else "succeeded on its host"
    parts = []
    if failed:
        parts.append(
            f"{len(failed)} of {total} hosts failed: "
            + ", ".join(f"{r.host} ({_why(r)})" for r in failed)
        )
    if not_run:
        parts.append(f"{not_run} not run")
    return "; ".join(parts)


def _why(result: HostResult) -> str:
    outcome = result.outcome
    if outcome is None:
        return result.reason or "did not run"
    if outcome.timed_out:
        return "timed out"
    if outcome.interrupted:
        return "interrupted"
    if outcome.signal:
        return f"signal {outcome.signal}"
    return f"exit status {outcome.exit_code}"
