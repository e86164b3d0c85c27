"""The event stream of a run: one stream feeds the terminal, the journal and resume.

Every event is an immutable record with a kind, a UTC timestamp, and the step and attempt it
belongs to. Texts in events are already masked: secret values never enter the stream.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol


class EventKind(StrEnum):
    RUN_STARTED = "run-started"
    RUN_RESUMED = "run-resumed"
    STEP_STARTED = "step-started"
    OUTPUT = "output"
    ANSWER = "answer"
    STEP_FINISHED = "step-finished"
    RUN_FINISHED = "run-finished"


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    TIMED_OUT = "timed-out"
    INTERRUPTED = "interrupted"
    DONE = "done"  # a manual step the operator confirmed


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a run. `data` holds the kind's fields (JSON-compatible)."""

    kind: EventKind
    data: Mapping[str, object] = field(default_factory=dict)
    step: str | None = None
    attempt: int = 0
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def get(self, key: str, default: object = None) -> object:
        return self.data.get(key, default)


class EventSink(Protocol):
    """Anything that consumes the run's events: the console, the journal, a test recorder."""

    def emit(self, event: Event) -> None: ...


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
