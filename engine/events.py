"""The event stream of a run: one stream feeds the terminal, the journal and resume.

One frozen class per kind of event; sinks `match` on the classes. Every event has a UTC
timestamp; step events name their step and attempt. Texts in events are already masked:
secret values never enter the stream. `to_data`/`from_data` convert to and from the stored
form (kind, step, attempt, time, JSON data) with the keys journals have always had, so old
journals and their hash chains still read and verify.
"""

from __future__ import annotations

import time as clock
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol


class EventKind(StrEnum):
    RUN_STARTED = "run-started"
    RUN_RESUMED = "run-resumed"
    STEP_STARTED = "step-started"
    OUTPUT = "output"
    ANSWER = "answer"
    STEP_FINISHED = "step-finished"
    RUN_FINISHED = "run-finished"
    RUN_SEALED = "run-sealed"


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    TIMED_OUT = "timed-out"
    INTERRUPTED = "interrupted"
    DONE = "done"  # a manual step the operator confirmed

    @property
    def finished(self) -> bool:
        """Done with on purpose: not offered again by resume, not a failure."""
        return self in (StepStatus.SUCCEEDED, StepStatus.DONE, StepStatus.SKIPPED)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"


class Question(StrEnum):
    """What an answer answers."""

    CONFIRM = "confirm"  # run this step?
    MANUAL = "manual"  # a manual step: done or skipped
    FAILURE = "failure"  # the failure menu
    EDIT = "edit"  # the command was edited
    EXPECT = "expect"  # an `expect` prompt answered for the operator
    UNFINISHED = "unfinished"  # on resume, a step that had started without a result
    BRANCH = "branch"  # which option of a choice between alternatives the run takes


def _now() -> float:
    return clock.time()


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who runs which version where: recorded in the start (and each resume) of a run."""

    run_id: str
    journal: str
    digest: str
    operator: str
    host: str
    pid: int
    git_commit: str | None = None
    git_dirty: bool | None = None
    email: str | None = None
    replaced_lock: str | None = None  # the lock this run replaced (--force, or a stale one)

    def to_data(self) -> dict[str, object]:
        data: dict[str, object] = {
            "run_id": self.run_id,
            "journal": self.journal,
            "digest": self.digest,
            "operator": self.operator,
            "host": self.host,
            "pid": self.pid,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "email": self.email,
        }
        if self.replaced_lock is not None:
            data["replaced_lock"] = self.replaced_lock
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Provenance | None:
        if "run_id" not in data:
            return None
        return cls(
            run_id=str(data["run_id"]),
            journal=str(data.get("journal") or ""),
            digest=str(data.get("digest") or ""),
            operator=str(data.get("operator") or ""),
            host=str(data.get("host") or ""),
            pid=_int(data.get("pid")) or 0,
            git_commit=_str_or_none(data.get("git_commit")),
            git_dirty=None if data.get("git_dirty") is None else bool(data.get("git_dirty")),
            email=_str_or_none(data.get("email")),
            replaced_lock=_str_or_none(data.get("replaced_lock")),
        )


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run begins: the runbook, its parameters as shown (secrets masked), the selection."""

    path: str
    title: str
    params: Mapping[str, str]
    steps: tuple[str, ...]
    provenance: Provenance | None = None
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class RunResumed:
    """A recorded run continues (`runbook resume`): the same fields as its start."""

    path: str
    title: str
    params: Mapping[str, str]
    steps: tuple[str, ...]
    provenance: Provenance | None = None
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class StepStarted:
    """An attempt at a step begins: a command as run (masked), or a manual step's text."""

    step: str
    attempt: int
    kind: Literal["command", "manual"]
    command: str = ""
    text: str = ""
    edited: bool = False
    cwd: str | None = None
    interactive: bool = False
    host: str | None = None  # the target host it runs on (a key old journals lack)
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class Output:
    """Output of a step attempt (or of the debug shell opened after a failure)."""

    step: str
    attempt: int
    text: str
    shell: bool = False
    host: str | None = None
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class Answer:
    """The operator's (or the unattended policy's) answer to a question about a step."""

    step: str
    attempt: int
    question: Question
    answer: str
    note: str | None = None
    command: str | None = None  # question EDIT: the edited command (masked)
    pattern: str | None = None  # question EXPECT: the prompt's pattern
    time: float = field(default_factory=_now, kw_only=True)

    def fields(self) -> dict[str, object]:
        """The answer's recorded fields, as stored."""
        data: dict[str, object] = {"question": str(self.question), "answer": self.answer}
        for name in ("note", "command", "pattern"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


@dataclass(frozen=True, slots=True)
class StepResult:
    """How a command ended, as the shell saw it."""

    exit_code: int | None
    signal: int | None
    duration: float
    timed_out: bool = False
    interrupted: bool = False
    captured: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionState:
    """The shell session as a step left it, for `resume` to rebuild: what differs from the
    session's start (variables as `declare -p` lines, functions as `declare -f`), its
    directory, and what cannot be rebuilt (processes left running). A variable holding a
    secret's value is never in it."""

    cwd: str
    variables: str = ""
    functions: str = ""
    left_running: tuple[str, ...] = ()
    host: str | None = None  # the target whose session this is; None: the local one

    def to_data(self) -> dict[str, object]:
        data: dict[str, object] = {"cwd": self.cwd}
        if self.host is not None:
            data["host"] = self.host
        if self.variables:
            data["variables"] = self.variables
        if self.functions:
            data["functions"] = self.functions
        if self.left_running:
            data["left_running"] = list(self.left_running)
        return data

    @classmethod
    def from_data(cls, data: object) -> SessionState | None:
        if not isinstance(data, dict) or not isinstance(data.get("cwd"), str):
            return None
        running = data.get("left_running")
        return cls(
            cwd=data["cwd"],
            variables=str(data.get("variables") or ""),
            functions=str(data.get("functions") or ""),
            left_running=tuple(str(p) for p in running) if isinstance(running, list) else (),
            host=str(data["host"]) if isinstance(data.get("host"), str) else None,
        )


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step ends: its status, why (a reason or the operator's note), and how it ran.
    `state` is the session after it, recorded when the step may have changed it."""

    step: str
    attempt: int
    status: StepStatus
    reason: str | None = None
    note: str | None = None
    result: StepResult | None = None
    state: SessionState | None = None
    host: str | None = None  # one host's end; the step's own end has none
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class RunFinished:
    status: RunStatus
    failed: tuple[str, ...] = ()
    message: str = ""
    time: float = field(default_factory=_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class RunSealed:
    """The journal's seal after a run's end (engine/journal/chain.py): its number in the chain
    over runs, the seal it follows, how many of the run's events it covers. The journal writes
    it, not the run: it is not in the run's `Event` stream, and its hash is the stored row's."""

    seal: int
    previous: str
    events: int
    time: float = field(default_factory=_now, kw_only=True)


Event = RunStarted | RunResumed | StepStarted | Output | Answer | StepFinished | RunFinished
# What a journal stores: the run's events and the journal's seals.
Stored = Event | RunSealed


@dataclass(frozen=True, slots=True)
class Row:
    """An event in its stored form."""

    kind: EventKind
    step: str | None
    attempt: int
    time: float
    data: dict[str, object]


def to_data(event: Stored) -> Row:
    """The stored form of an event, with the JSON keys journals have always had."""
    match event:
        case RunStarted() | RunResumed():
            data: dict[str, object] = {
                "path": event.path,
                "title": event.title,
                "params": dict(event.params),
                "steps": list(event.steps),
            }
            if event.provenance is not None:
                data.update(event.provenance.to_data())
            kind = EventKind.RUN_STARTED if isinstance(event, RunStarted) else EventKind.RUN_RESUMED
            return Row(kind, None, 0, event.time, data)
        case StepStarted():
            if event.kind == "manual":
                data = {"kind": "manual", "text": event.text}
            else:
                data = {
                    "kind": "command",
                    "command": event.command,
                    "edited": event.edited,
                    "cwd": event.cwd,
                    "interactive": event.interactive,
                }
            if event.host is not None:  # a key old journals lack: their chains still verify
                data["host"] = event.host
            return Row(EventKind.STEP_STARTED, event.step, event.attempt, event.time, data)
        case Output():
            data = {"text": event.text}
            if event.shell:
                data["shell"] = True
            if event.host is not None:
                data["host"] = event.host
            return Row(EventKind.OUTPUT, event.step, event.attempt, event.time, data)
        case Answer():
            return Row(EventKind.ANSWER, event.step, event.attempt, event.time, event.fields())
        case StepFinished():
            data = {"status": str(event.status)}
            if event.reason is not None:
                data["reason"] = event.reason
            if event.note is not None:
                data["note"] = event.note
            if event.result is not None:
                result = event.result
                data.update(
                    captured=dict(result.captured),
                    exit_code=result.exit_code,
                    signal=result.signal,
                    duration=result.duration,
                    timed_out=result.timed_out,
                    interrupted=result.interrupted,
                )
            if event.state is not None:  # a key old journals lack: their chains still verify
                data["state"] = event.state.to_data()
            if event.host is not None:
                data["host"] = event.host
            return Row(EventKind.STEP_FINISHED, event.step, event.attempt, event.time, data)
        case RunFinished():
            data = {
                "status": str(event.status),
                "failed": list(event.failed),
                "message": event.message,
            }
            return Row(EventKind.RUN_FINISHED, None, 0, event.time, data)
        case RunSealed():
            data = {"seal": event.seal, "previous": event.previous, "events": event.events}
            return Row(EventKind.RUN_SEALED, None, 0, event.time, data)


def from_data(
    kind: str, step: str | None, attempt: int, at: float, data: Mapping[str, object]
) -> Stored:
    """An event from its stored form. Raises ValueError for a kind or field it cannot read."""
    match EventKind(kind):
        case EventKind.RUN_STARTED | EventKind.RUN_RESUMED:
            params = data.get("params")
            steps = data.get("steps")
            cls = RunStarted if kind == EventKind.RUN_STARTED else RunResumed
            return cls(
                path=str(data.get("path") or ""),
                title=str(data.get("title") or ""),
                params={str(k): _text(v) for k, v in params.items()}
                if isinstance(params, dict)
                else {},
                steps=tuple(str(s) for s in steps) if isinstance(steps, list) else (),
                provenance=Provenance.from_data(data),
                time=at,
            )
        case EventKind.STEP_STARTED:
            manual = data.get("kind") == "manual"
            return StepStarted(
                step=_step(step),
                attempt=attempt,
                kind="manual" if manual else "command",
                command=str(data.get("command") or ""),
                text=str(data.get("text") or ""),
                edited=bool(data.get("edited")),
                cwd=_str_or_none(data.get("cwd")),
                interactive=bool(data.get("interactive")),
                host=_str_or_none(data.get("host")),
                time=at,
            )
        case EventKind.OUTPUT:
            return Output(
                _step(step),
                attempt,
                str(data.get("text") or ""),
                bool(data.get("shell")),
                host=_str_or_none(data.get("host")),
                time=at,
            )
        case EventKind.ANSWER:
            return Answer(
                step=_step(step),
                attempt=attempt,
                question=Question(str(data.get("question"))),
                answer=str(data.get("answer") or ""),
                note=_str_or_none(data.get("note")),
                command=_str_or_none(data.get("command")),
                pattern=_str_or_none(data.get("pattern")),
                time=at,
            )
        case EventKind.STEP_FINISHED:
            result = None
            if "exit_code" in data or "duration" in data:
                captured = data.get("captured")
                duration = data.get("duration")
                result = StepResult(
                    exit_code=_int(data.get("exit_code")),
                    signal=_int(data.get("signal")),
                    duration=float(duration) if isinstance(duration, int | float) else 0.0,
                    timed_out=bool(data.get("timed_out")),
                    interrupted=bool(data.get("interrupted")),
                    captured={str(k): str(v) for k, v in captured.items()}
                    if isinstance(captured, dict)
                    else {},
                )
            return StepFinished(
                step=_step(step),
                attempt=attempt,
                status=StepStatus(str(data.get("status"))),
                reason=_str_or_none(data.get("reason")),
                note=_str_or_none(data.get("note")),
                result=result,
                state=SessionState.from_data(data.get("state")),
                host=_str_or_none(data.get("host")),
                time=at,
            )
        case EventKind.RUN_FINISHED:
            failed = data.get("failed")
            return RunFinished(
                status=RunStatus(str(data.get("status"))),
                failed=tuple(str(s) for s in failed) if isinstance(failed, list) else (),
                message=str(data.get("message") or ""),
                time=at,
            )
        case EventKind.RUN_SEALED:
            number, events = _int(data.get("seal")), _int(data.get("events"))
            previous = data.get("previous")
            if number is None or events is None or not isinstance(previous, str):
                raise ValueError("a seal without its number, the seal before it or its events")
            return RunSealed(number, previous, events, time=at)
    raise ValueError(f"unknown event kind {kind!r}")  # pragma: no cover (EventKind raised)


def _step(step: str | None) -> str:
    if not step:
        raise ValueError("a step event without its step")
    return step


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


class EventSink(Protocol):
    """Anything that consumes the run's events: the console, the journal, a test recorder."""

    def emit(self, event: Event) -> None: ...


class Ticking(Protocol):
    """A sink that buffers, and is told when the run is quiet."""

    def tick(self) -> None: ...


class Fanout:
    """Sends each event to several sinks in order; `tick` reaches those that buffer."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    def tick(self) -> None:
        for sink in self.sinks:
            tick = getattr(sink, "tick", None)
            if tick is not None:
                tick()
