"""The run loop in-process, as doit tests its runner with a FakeReporter: a real shell session,
a scripted operator, and a sink that records the typed events, compared exactly. Timestamps
and durations are zeroed; everything else must match."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from engine.events import (
    Answer,
    Event,
    Output,
    Question,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
    from_data,
    to_data,
)
from engine.model import Step
from engine.parameters import Parameters
from engine.plan import Plan
from engine.record import replay
from engine.run import Choice, Runner, RunOptions, preflight
from engine.shell import Outcome, ShellSession
from tests.conftest import plan as plan_of

SECRET = "s3cr3t-t0ken-value"


class Recorder:
    """The events a run emits, output chunks joined per attempt (chunking is the pty's)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        last = self.events[-1] if self.events else None
        if (
            isinstance(event, Output)
            and isinstance(last, Output)
            and (last.step, last.attempt, last.shell) == (event.step, event.attempt, event.shell)
        ):
            self.events[-1] = replace(last, text=last.text + event.text)
            return
        self.events.append(event)

    def normalised(self) -> list[Event]:
        """Times zeroed, durations zeroed: what is left is what the run decided."""
        out: list[Event] = []
        for event in self.events:
            if isinstance(event, StepFinished) and event.result is not None:
                event = replace(event, result=replace(event.result, duration=0.0))
            out.append(replace(event, time=0.0))
        return out


class Quiet:
    """The terminal side of a running step, for a run with nobody at the keyboard."""

    input_fd = None

    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def tick(self) -> None:
        return None


class ScriptedUI:
    """An operator who answers from a script, in order; asks are recorded."""

    def __init__(self, *answers: Choice | tuple[Choice, str] | str | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str]] = []
        self.edits: list[str] = []
        self.announced: list[tuple[str, str, str, str | None]] = []

    def _next(self, kind: str, step: Step) -> Choice | tuple[Choice, str] | str | None:
        self.asked.append((kind, step.id))
        assert self.answers, f"nothing scripted for {kind} at {step.id}"
        return self.answers.pop(0)

    def announce(
        self, step: Step, command: str, position: int, total: int, handler: str | None
    ) -> None:
        self.announced.append((step.id, command, f"{position}/{total}", handler))

    def announce_rollback(self, target: str, steps: int) -> None:
        self.announced.append(("rollback", target, str(steps), None))

    def ask_branch(self, step: Step, labels: list[str]) -> str | None:
        answer = self._next("branch", step)
        assert isinstance(answer, str | None)
        return answer  # type: ignore[return-value]

    def ask_step(self, step: Step, command: str, position: int, total: int) -> Choice:
        answer = self._next("step", step)
        assert isinstance(answer, Choice)
        return answer

    def ask_danger(self, step: Step) -> bool:
        return self._next("danger", step) is Choice.RUN

    def ask_manual(self, step: Step, text: str, position: int, total: int) -> tuple[Choice, str]:
        answer = self._next("manual", step)
        return answer if isinstance(answer, tuple) else (answer, "")

    def ask_failure(self, step: Step, outcome: Outcome, handler: str | None) -> Choice:
        answer = self._next("failure", step)
        assert isinstance(answer, Choice)
        return answer

    def edit_command(self, command: str) -> str | None:
        return self.edits.pop(0) if self.edits else None

    def step_io(self, step: Step, interactive: bool) -> Quiet:
        return Quiet()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ShellSession]:
    shell = ShellSession(
        cwd=str(tmp_path),
        env=dict(os.environ, TOKEN=SECRET, HOME=str(tmp_path)),
        secret_variables=("TOKEN",),
    )
    yield shell
    shell.close()


ROTATE = """
---
title: Rotate
params:
  node: {default: a}
  token: {secret: true}
---
# Rotate

```bash {id: check}
echo checking {{ node }} "$TOKEN"
```

```bash {id: version, capture: version}
echo 1.2.3
```

- [ ] Tell the channel

```bash {id: never, when: "node == 'none'"}
echo never
```

```bash {id: gate}
echo "gate {{ version }}"; exit 3
```
"""


def run(
    plan: Plan,
    session: ShellSession,
    ui: ScriptedUI,
    options: RunOptions,
    values: dict[str, str] | None = None,
) -> tuple[RunStatus, list[Event]]:
    recorder = Recorder()
    params = Parameters.of(plan, values or {})
    result = Runner(plan, params, session, ui, recorder, options).run()
    return result.status, recorder.normalised()


def test_an_operator_run_emits_exactly_these_events(session: ShellSession) -> None:
    plan = plan_of(ROTATE)
    ui = ScriptedUI(Choice.RUN, Choice.RUN, Choice.DONE, Choice.RUN, Choice.SKIP)
    status, events = run(plan, session, ui, RunOptions(), {"node": "a", "token": SECRET})
    ok = StepStatus.SUCCEEDED
    assert events == [
        RunStarted(
            "t.md",
            "Rotate",
            {"node": "a", "token": "<secret>"},
            ("check", "version", "rotate-3", "never", "gate"),
            time=0.0,
        ),
        Answer("check", 0, Question.CONFIRM, "run", time=0.0),
        StepStarted("check", 1, "command", command='echo checking a "$TOKEN"\n', time=0.0),
        Output("check", 1, "checking a [secret:token]\n", time=0.0),
        StepFinished("check", 1, ok, result=StepResult(0, None, 0.0), time=0.0),
        Answer("version", 0, Question.CONFIRM, "run", time=0.0),
        StepStarted("version", 1, "command", command="echo 1.2.3\n", time=0.0),
        Output("version", 1, "1.2.3\n", time=0.0),
        StepFinished(
            "version",
            1,
            ok,
            result=StepResult(0, None, 0.0, captured={"version": "1.2.3"}),
            time=0.0,
        ),
        StepStarted("rotate-3", 1, "manual", text="Tell the channel", time=0.0),
        Answer("rotate-3", 0, Question.MANUAL, "done", note="", time=0.0),
        StepFinished("rotate-3", 1, StepStatus.DONE, note="", time=0.0),
        StepFinished("never", 0, StepStatus.SKIPPED, reason="when: node == 'none'", time=0.0),
        Answer("gate", 0, Question.CONFIRM, "run", time=0.0),
        StepStarted("gate", 1, "command", command='echo "gate 1.2.3"; exit 3\n', time=0.0),
        Output("gate", 1, "gate 1.2.3\n", time=0.0),
        StepFinished("gate", 1, StepStatus.FAILED, result=StepResult(3, None, 0.0), time=0.0),
        Answer("gate", 1, Question.FAILURE, "skip", time=0.0),
        StepFinished(
            "gate",
            1,
            StepStatus.SKIPPED,
            reason="skipped by the operator after it failed",
            time=0.0,
        ),
        RunFinished(RunStatus.SUCCEEDED, message="2 steps skipped", time=0.0),
    ]
    assert status is RunStatus.SUCCEEDED
    assert ui.answers == []
    assert all(SECRET not in repr(to_data(e)) for e in events)


def test_every_event_reads_back_as_it_was_written(session: ShellSession) -> None:
    plan = plan_of(ROTATE)
    ui = ScriptedUI(Choice.RUN, Choice.RUN, (Choice.SKIP, "later"), Choice.RUN, Choice.ABORT)
    status, events = run(plan, session, ui, RunOptions(), {"token": SECRET})
    assert status is RunStatus.ABORTED
    for event in events:
        row = to_data(event)
        assert from_data(str(row.kind), row.step, row.attempt, row.time, row.data) == event


def test_unattended_run_skips_manual_steps_and_stops_at_a_failure(
    session: ShellSession,
) -> None:
    plan = plan_of(ROTATE)
    status, events = run(
        plan, session, ScriptedUI(), RunOptions(assume_yes=True), {"node": "a", "token": "x"}
    )
    assert status is RunStatus.FAILED
    manual = [e for e in events if isinstance(e, (Answer, StepFinished)) and e.step == "rotate-3"]
    note = "unattended run (--yes): nobody confirmed it"
    assert manual == [
        Answer("rotate-3", 0, Question.MANUAL, "skip", note=note, time=0.0),
        StepFinished("rotate-3", 1, StepStatus.SKIPPED, note=note, time=0.0),
    ]
    assert events[-1] == RunFinished(RunStatus.FAILED, ("gate",), "step 'gate' failed", time=0.0)
    steps, message = replay(events)
    assert [(s.id, s.status) for s in steps] == [
        ("check", "succeeded"),
        ("version", "succeeded"),
        ("rotate-3", "skipped"),
        ("never", "skipped"),
        ("gate", "failed"),
    ]
    assert message == "step 'gate' failed"
    assert steps[1].captured == {"version": "1.2.3"}
    assert steps[4].attempts[0].exit_code == 3


DANGER = """
# Rebuild

```bash {id: drop, confirm: danger}
echo dropping
```

```bash {id: load, on_failure: rollback}
echo loading
```

```bash {id: check}
echo checking
```

## Rollback

```bash {id: restore, confirm: danger}
echo restoring
```
"""


@pytest.mark.parametrize(
    ("options", "selected", "refused"),
    [
        (RunOptions(assume_yes=True), ["drop", "load", "check"], True),
        (RunOptions(assume_yes=True, start_from="check"), ["check"], False),
        (RunOptions(assume_yes=True, start_from="load"), ["load", "check"], True),  # handler
        (RunOptions(assume_yes=True, only=frozenset({"check"})), ["check"], False),
        (RunOptions(assume_yes=True, only=frozenset({"drop"})), ["drop"], True),
        (RunOptions(assume_yes=True, skip=frozenset({"drop", "load"})), ["check"], False),
        (RunOptions(assume_yes=True, done=frozenset({"drop", "load"})), ["check"], False),
        (RunOptions(assume_yes=True, allow_danger=True), ["drop", "load", "check"], False),
        (RunOptions(), ["drop", "load", "check"], False),
    ],
)
def test_one_selection_for_preflight_and_the_run(
    options: RunOptions, selected: list[str], refused: bool
) -> None:
    plan = plan_of(DANGER)
    assert options.select(plan) == selected
    problems = preflight(plan, Parameters.of(plan, {}), options)
    assert bool(problems) is refused, problems


def test_a_danger_step_before_from_is_not_asked_about(session: ShellSession) -> None:
    plan = plan_of(DANGER)
    options = RunOptions(assume_yes=True, start_from="check")
    assert preflight(plan, Parameters.of(plan, {}), options) == []
    status, events = run(plan, session, ScriptedUI(), options)
    assert status is RunStatus.SUCCEEDED
    assert [e.step for e in events if isinstance(e, StepStarted)] == ["check"]


def started(events: list[Event]) -> list[tuple[str, int]]:
    return [(e.step, e.attempt) for e in events if isinstance(e, StepStarted)]


def finished(events: list[Event]) -> list[tuple[str, int, StepStatus]]:
    return [(e.step, e.attempt, e.status) for e in events if isinstance(e, StepFinished)]


def test_retries_run_a_step_again_until_it_succeeds(session: ShellSession) -> None:
    plan = plan_of(
        """
        # Flaky

        ```bash {id: flaky, retries: 2}
        n=$(cat n 2>/dev/null || echo 0); echo $((n + 1)) > n; [ "$n" -ge 2 ]
        ```
        """
    )
    status, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True))
    assert status is RunStatus.SUCCEEDED
    assert finished(events) == [
        ("flaky", 1, StepStatus.FAILED),
        ("flaky", 2, StepStatus.FAILED),
        ("flaky", 3, StepStatus.SUCCEEDED),
    ]


ROLLBACK = """
# Upgrade

```bash {id: upgrade, on_failure: rollback}
echo upgrading; exit 1
```

```bash {id: verify}
echo verifying
```

## Rollback

```bash {id: downgrade}
echo downgrading
```
"""


def test_an_unattended_failure_runs_its_handler_then_the_run_fails(
    session: ShellSession,
) -> None:
    status, events = run(plan_of(ROLLBACK), session, ScriptedUI(), RunOptions(assume_yes=True))
    assert status is RunStatus.FAILED
    assert started(events) == [("upgrade", 1), ("downgrade", 1)]
    assert events[-1] == RunFinished(
        RunStatus.FAILED, ("upgrade",), "step 'upgrade' failed", time=0.0
    )


@pytest.mark.parametrize(
    ("choice", "ran", "status", "message"),
    [
        (Choice.CONTINUE, ["upgrade", "verify"], RunStatus.FAILED, "some steps failed"),
        (Choice.SKIP, ["upgrade", "verify"], RunStatus.SUCCEEDED, "1 step skipped"),
        (Choice.ROLLBACK, ["upgrade", "downgrade"], RunStatus.FAILED, "step 'upgrade' failed"),
        (Choice.ABORT, ["upgrade"], RunStatus.ABORTED, "aborted after step 'upgrade' failed"),
    ],
)
def test_the_failure_menu(
    session: ShellSession, choice: Choice, ran: list[str], status: RunStatus, message: str
) -> None:
    ui = ScriptedUI(Choice.RUN, choice, Choice.RUN, Choice.RUN)
    got, events = run(plan_of(ROLLBACK), session, ui, RunOptions())
    assert (got, [s for s, _ in started(events)]) == (status, ran)
    final = events[-1]
    assert isinstance(final, RunFinished) and final.message == message
    assert Answer("upgrade", 1, Question.FAILURE, str(choice), time=0.0) in events


def test_an_edited_command_is_what_runs_and_is_recorded_masked(session: ShellSession) -> None:
    plan = plan_of(
        """
        ---
        params:
          token: {secret: true}
        ---
        # Edit

        ```bash {id: call}
        echo calling
        ```
        """
    )
    ui = ScriptedUI(Choice.EDIT, Choice.RUN)
    ui.edits = [f"echo called with {SECRET}\n"]
    status, events = run(plan, session, ui, RunOptions(), {"token": SECRET})
    assert status is RunStatus.SUCCEEDED
    masked = "echo called with [secret:token]\n"
    assert Answer("call", 0, Question.EDIT, "edited", command=masked, time=0.0) in events
    [start] = [e for e in events if isinstance(e, StepStarted)]
    assert (start.command, start.edited) == (masked, True)
    assert Output("call", 1, "called with [secret:token]\n", time=0.0) in events


LOGIN = (
    "---\nparams:\n  token: {secret: true}\n---\n# Login\n\n"
    "```bash {id: login, expect: [{prompt: 'User:', send: ops},"
    " {prompt: 'Token:', send: '{{ token }}', secret: true}]}\n"
    'read -r -p "User: " u; read -r -s -p "Token: " t; echo; [ "$t" = "$TOKEN" ] && echo "hi $u"\n'
    "```\n"
)


def test_expect_answers_are_recorded_and_a_secret_one_is_not(session: ShellSession) -> None:
    plan = plan_of(LOGIN)
    status, events = run(plan, session, ScriptedUI(), RunOptions(True), {"token": SECRET})
    assert status is RunStatus.SUCCEEDED
    answers = [e for e in events if isinstance(e, Answer)]
    assert answers == [
        Answer("login", 1, Question.EXPECT, "ops", pattern="User:", time=0.0),
        Answer("login", 1, Question.EXPECT, "[secret]", pattern="Token:", time=0.0),
    ]
    assert SECRET not in repr([to_data(e) for e in events])


def test_a_danger_step_runs_only_once_its_id_is_typed(session: ShellSession) -> None:
    # The operator chooses run, mistypes the id (asked again), then types it.
    ui = ScriptedUI(Choice.RUN, Choice.SKIP, Choice.RUN, Choice.RUN, Choice.RUN, Choice.RUN)
    status, events = run(plan_of(DANGER), session, ui, RunOptions())
    assert status is RunStatus.SUCCEEDED
    assert ui.asked[:4] == [
        ("step", "drop"),
        ("danger", "drop"),
        ("step", "drop"),
        ("danger", "drop"),
    ]
    assert started(events) == [("drop", 1), ("load", 1), ("check", 1)]


def test_an_abort_at_the_first_prompt_runs_nothing(session: ShellSession) -> None:
    status, events = run(plan_of(DANGER), session, ScriptedUI(Choice.ABORT), RunOptions())
    assert status is RunStatus.ABORTED
    assert started(events) == []
    assert events[-1] == RunFinished(RunStatus.ABORTED, (), "aborted before step 'drop'", time=0.0)
