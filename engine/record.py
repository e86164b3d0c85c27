"""The record of a run, rebuilt from its events: what `log show`, `log export`, the run pages
and `resume` read. Pure: events in, plain data out; the formatters every view shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from engine.events import (
    Answer,
    Event,
    Output,
    RunFinished,
    RunResumed,
    RunStarted,
    SessionState,
    StepFinished,
    StepStarted,
)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as listed: who ran which version, when, and how it ended."""

    id: str
    path: str
    title: str
    operator: str
    email: str | None
    host: str
    pid: int
    started: float
    ended: float | None
    status: str
    params: dict[str, object]
    digest: str
    git_commit: str | None
    git_dirty: bool | None
    abspath: str = ""
    note: str = ""  # how a succeeded run ended, when not plainly: "2 steps skipped"

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def who(self) -> str:
        """Operator, email and host, for people: `ops <ops@example.com> on db1`."""
        return self.operator + (f" <{self.email}>" if self.email else "") + f" on {self.host}"

    @property
    def version(self) -> str:
        """sha256 (and git commit) of the runbook's text as run, for people."""
        return (
            f"sha256 {self.digest[:16]}"
            + (f", git {self.git_commit[:12]}" if self.git_commit else "")
            + (" (uncommitted changes)" if self.git_dirty else "")
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a step, as recorded."""

    number: int
    command: str = ""
    edited: bool = False
    started: float | None = None
    ended: float | None = None
    status: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration: float | None = None
    output: str = ""
    host: str | None = None  # the target host of a fanned-out step: one attempt per host
    reason: str = ""  # why it ended so, when the host said (could not connect, ...)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """Everything recorded about one step of a run."""

    id: str
    kind: str = "command"
    text: str = ""
    attempts: tuple[Attempt, ...] = ()
    answers: tuple[Answer, ...] = ()  # attempts numbered across resumes
    status: str | None = None
    reason: str = ""
    captured: Mapping[str, str] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return "".join(a.output for a in self.attempts)


@dataclass(frozen=True, slots=True)
class RunDetail:
    summary: RunSummary
    events: tuple[Event, ...]
    steps: tuple[StepRecord, ...]
    message: str = ""

    def step(self, step_id: str) -> StepRecord | None:
        return next((s for s in self.steps if s.id == step_id), None)

    @property
    def started(self) -> RunStarted | None:
        return next((e for e in self.events if isinstance(e, RunStarted)), None)

    @property
    def session_state(self) -> SessionState | None:
        """The local shell session as the last step that recorded it left it: what resume
        rebuilds."""
        for event in reversed(self.events):
            if isinstance(event, StepFinished) and event.state and event.state.host is None:
                return event.state
        return None

    @property
    def target_states(self) -> dict[str, SessionState]:
        """Each target's session as the last step on it left it (steps on one target)."""
        found: dict[str, SessionState] = {}
        for event in self.events:
            if isinstance(event, StepFinished) and event.state and event.state.host is not None:
                found[event.state.host] = event.state
        return found


def run_detail(summary: RunSummary, events: Iterable[Event]) -> RunDetail:
    """A run's steps rebuilt from its events."""
    recorded = tuple(events)
    steps, message = replay(recorded)
    return RunDetail(summary, recorded, tuple(steps), message)


@dataclass(slots=True)
class _Attempt:
    """An attempt while its events are replayed."""

    value: Attempt
    output: list[str] = field(default_factory=list)

    def freeze(self) -> Attempt:
        return replace(self.value, output="".join(self.output))


@dataclass(slots=True)
class _Step:
    """A step's record while its events are replayed."""

    id: str
    kind: str = "command"
    text: str = ""
    attempts: list[_Attempt] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    status: str | None = None
    reason: str = ""
    captured: dict[str, str] = field(default_factory=dict)

    def attempt(self, number: int, host: str | None = None) -> _Attempt:
        for attempt in self.attempts:
            if attempt.value.number == number and attempt.value.host == host:
                return attempt
        if host is None:  # a step on one target: its end (and the like) carry no host
            same = [a for a in self.attempts if a.value.number == number]
            if len(same) == 1:
                return same[0]
        created = _Attempt(Attempt(max(number, 1), host=host))
        self.attempts.append(created)
        return created

    def freeze(self) -> StepRecord:
        return StepRecord(
            self.id,
            self.kind,
            self.text,
            tuple(a.freeze() for a in self.attempts),
            tuple(self.answers),
            self.status,
            self.reason,
            MappingProxyType(dict(self.captured)),
        )


def replay(events: Iterable[Event]) -> tuple[list[StepRecord], str]:
    """Each step's record from the events, in the order the steps first appear; and the
    run's final message. A resumed run numbers attempts from 1 again: here they go on."""
    steps: dict[str, _Step] = {}
    offsets: dict[str, int] = {}
    message = ""
    for event in events:
        match event:
            case RunFinished():
                message = event.message
                continue
            case RunResumed():
                offsets = {
                    s.id: max((a.value.number for a in s.attempts), default=0)
                    for s in steps.values()
                }
                continue
            case RunStarted():
                continue
        number = event.attempt + offsets.get(event.step, 0) if event.attempt else 0
        record = steps.setdefault(event.step, _Step(event.step))
        match event:
            case StepStarted():
                record.kind = event.kind
                record.text = event.text or record.text
                attempt = record.attempt(number, event.host)
                attempt.value = replace(
                    attempt.value, command=event.command, edited=event.edited, started=event.time
                )
                record.status = None
            case Output():
                record.attempt(number, event.host).output.append(event.text)
            case Answer():
                record.answers.append(replace(event, attempt=number))
            case StepFinished(host=str()):  # one host's end: the step goes on
                result = event.result
                attempt = record.attempt(number, event.host)
                attempt.value = replace(
                    attempt.value,
                    ended=event.time,
                    status=str(event.status),
                    exit_code=result.exit_code if result else None,
                    signal=result.signal if result else None,
                    duration=result.duration if result else None,
                    reason=event.reason or "",
                )
            case StepFinished():
                record.status = str(event.status)
                record.reason = event.reason or event.note or ""
                result = event.result
                if result is not None:
                    record.captured.update(result.captured)
                if number:
                    attempt = record.attempt(number)
                    attempt.value = replace(
                        attempt.value,
                        ended=event.time,
                        status=record.status,
                        exit_code=result.exit_code if result else None,
                        signal=result.signal if result else None,
                        duration=result.duration if result else None,
                    )
    return [s.freeze() for s in steps.values()], message
