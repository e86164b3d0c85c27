"""run: walks the plan, asks the operator through a UI object, executes steps in the shell
session, and emits every event. The only stage that orchestrates side effects; it prints
nothing itself (the console does, from the events and the UI calls).
"""

from __future__ import annotations

import codecs
import functools
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from engine.events import (
    Answer,
    Event,
    EventSink,
    Output,
    Provenance,
    Question,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    SessionState,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
)
from engine.masking import StreamMasker
from engine.model import Confirm, Step, StepKind, Target
from engine.parameters import Parameters
from engine.plan import Plan
from engine.shell import Outcome, Responder, ShellError, ShellSession, StepIO, StepRefused
from engine.targets import DEFAULT_FORKS, Host, is_group, is_template, resolve
from engine.templates import (
    RenderedStep,
    TemplateProblem,
    Unquoted,
    evaluate_condition,
    plain_values,
    render_step,
    render_text,
)
from engine.titles import is_optional

if TYPE_CHECKING:  # steps on targets load their machinery only when a run has some
    from engine.fanout import HostResult
    from engine.remote import TargetSessions


class Choice(StrEnum):
    """What the operator (or the unattended policy) decides at a prompt."""

    RUN = "run"
    SKIP = "skip"
    EDIT = "edit"
    ABORT = "abort"
    RETRY = "retry"
    SHELL = "shell"
    DONE = "done"
    CONTINUE = "continue"
    ROLLBACK = "rollback"


class RunUI(Protocol):
    """What the run loop asks the operator; the console implements it. `ask_manual` returns
    (RUN, command) when the operator runs one of the commands the step offers."""

    def announce(
        self, step: Step, command: str, position: int, total: int, handler: str | None
    ) -> None: ...
    def announce_rollback(self, target: str, steps: int) -> None: ...
    def ask_branch(self, step: Step, labels: list[str]) -> str | None: ...
    def ask_step(self, step: Step, command: str, position: int, total: int) -> Choice: ...
    def ask_danger(self, step: Step) -> bool: ...
    def ask_manual(
        self, step: Step, text: str, position: int, total: int
    ) -> tuple[Choice, str]: ...
    def ask_failure(self, step: Step, outcome: Outcome, handler: str | None) -> Choice: ...
    def edit_command(self, command: str) -> str | None: ...
    def step_io(self, step: Step, interactive: bool) -> StepIOContext: ...


class StepIOContext(Protocol):
    """The terminal side of a running step: where output goes, input, progress ticks."""

    def __enter__(self) -> StepIOContext: ...
    def __exit__(self, *exc: object) -> None: ...

    @property
    def input_fd(self) -> int | None: ...

    def tick(self) -> None: ...


FOLLOW_STOPPED = "stopped: a follow step runs until Ctrl-C or its timeout"


class RunAborted(Exception):
    """The operator (or the unattended policy) stopped the run."""


class RunInterrupted(Exception):
    """Ctrl-C at a prompt: the run stops cleanly."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    assume_yes: bool = False
    allow_danger: bool = False
    start_from: str | None = None
    only: frozenset[str] = frozenset()
    skip: frozenset[str] = frozenset()
    done: frozenset[str] = frozenset()  # finished in the run being resumed: not run again
    run_guessed: bool = False  # with --yes, also run blocks the engine guessed are commands
    choose: tuple[str, ...] = ()  # --choose LABEL: the options taken, matched case-insensitively
    # On resume: the choices the run already made (choice -> option, None for none): kept.
    chosen: tuple[tuple[str, str | None], ...] = ()
    hosts_done: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # resume
    forks: int | None = None  # --forks N: hosts of a group at once (a step's `forks` wins)
    targets: tuple[Target, ...] = ()  # from --inventory; the runbook's own targets win

    def select(self, plan: Plan) -> list[str]:
        """The steps of the flow this run takes, in order: the one selection used by the
        pre-flight check, the dry run, the run and resume."""
        order = list(plan.order)
        if self.start_from:
            order = order[order.index(self.start_from) :]
        if self.only:
            order = [i for i in order if i in self.only]
        return [i for i in order if i not in self.skip and i not in self.done]


@dataclass(slots=True)
class RunResult:
    status: RunStatus
    failed_steps: list[str] = field(default_factory=list)
    message: str = ""


class _Interrupts:
    """Ctrl-C while a step runs is counted here (and forwarded by the shell), not raised."""

    def __init__(self) -> None:
        self.pending = 0
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self) -> _Interrupts:
        self.pending = 0
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.pending += 1

    def take(self) -> bool:
        if self.pending:
            self.pending -= 1
            return True
        return False

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


class Runner:
    """One run of a plan. Build it, then call `run()`; events go to `sink`."""

    def __init__(
        self,
        plan: Plan,
        params: Parameters,
        session: ShellSession,
        ui: RunUI,
        sink: EventSink,
        options: RunOptions,
        provenance: Provenance | None = None,
        captured: Mapping[str, str] | None = None,
        remote: TargetSessions | None = None,
    ) -> None:
        self.plan = plan
        self.remote = remote
        self.session = session
        self.ui = ui
        self.sink = sink
        self.options = options
        self.provenance = provenance
        self.params = params
        self.masker = params.masker
        runbook = plan.runbook
        self.context: dict[str, object] = dict(runbook.env)
        self.context.update(params.context())
        self.context.update(captured or {})
        self.by_id = {s.id: s for s in runbook.steps}
        self.failed: list[str] = []
        self.go_on: set[str] = set()  # failed steps the operator chose to continue past
        self._continued: dict[str, bool] = {}  # fanned-out steps continued past a host failure
        self._hosts_done: dict[str, tuple[str, ...]] = dict(options.hosts_done)
        # choice -> the option taken (None: none); on resume, what the run chose before
        self.chosen: dict[str, str | None] = dict(options.chosen)
        self._step_session = session

    # -- the run ------------------------------------------------------------------------------

    def run(self, resumed: bool = False) -> RunResult:
        """Run the selected steps; with `resumed`, continue a run recorded earlier."""
        runbook = self.plan.runbook
        start = RunResumed if resumed else RunStarted
        self.emit(
            start(
                path=runbook.path,
                title=runbook.title,
                params=self.params.shown([p.name for p in runbook.params]),
                steps=tuple(self.options.select(self.plan)),
                provenance=self.provenance,
            )
        )
        result = RunResult(RunStatus.FAILED, message="engine error")
        try:
            result = self._run_steps()
        except RunAborted as stop:
            result = RunResult(RunStatus.ABORTED, self.failed, str(stop))
        except (RunInterrupted, KeyboardInterrupt):
            result = RunResult(RunStatus.INTERRUPTED, self.failed, "interrupted")
        finally:
            self.emit(RunFinished(result.status, tuple(result.failed_steps), result.message))
        return result

    def _run_steps(self) -> RunResult:
        ids = self.options.select(self.plan)
        skipped = 0
        for position, step_id in enumerate(ids, 1):
            step = self.by_id[step_id]
            status = self.run_step(step, position, len(ids))
            skipped += status is StepStatus.SKIPPED
            if status.finished:
                continue
            self.failed.append(step.id)
            action = self._after_failure_policy(step)
            if action == "continue":
                continue
            if action == "handler":
                self._run_handler(step.on_failure)
            return RunResult(RunStatus.FAILED, self.failed, f"step '{step.id}' failed")
        if self.failed:
            return RunResult(RunStatus.FAILED, self.failed, "some steps failed")
        return RunResult(
            RunStatus.SUCCEEDED, message=f"{plural(skipped, 'step')} skipped" if skipped else ""
        )

    def _after_failure_policy(self, step: Step) -> str:
        """What a failure that the operator did not resolve leads to."""
        if step.on_failure == "continue" or step.id in self.go_on:
            return "continue"
        if self.plan.handler(step.on_failure):
            if self.options.assume_yes and step.inference("on_failure") is not None:
                return "abort"  # a rollback the engine only inferred is never run unasked
            return "handler"
        return "abort"

    def _run_handler(self, target: str) -> None:
        ids = self.plan.handler(target)
        self.ui.announce_rollback(target, len(ids))
        for position, step_id in enumerate(ids, 1):
            status = self.run_step(self.by_id[step_id], position, len(ids), handler=target)
            if not status.finished:
                self.failed.append(step_id)
                return

    # -- one step -----------------------------------------------------------------------------

    def run_step(
        self, step: Step, position: int, total: int, handler: str | None = None
    ) -> StepStatus:
        if step.branch is not None:
            taken = self._branch_taken(step)
            if taken is None or taken.casefold() != step.branch.label.casefold():
                why = f"option {taken!r} was chosen" if taken else "no option was chosen"
                self.emit(
                    StepFinished(
                        step.id,
                        0,
                        StepStatus.SKIPPED,
                        f"option {step.branch.label!r} not taken: {why}",
                    )
                )
                return StepStatus.SKIPPED
        if step.when:
            try:
                wanted = evaluate_condition(step.when, plain_values(self.context))
            except TemplateProblem as problem:
                raise RunAborted(f"{self._where(step)}: {problem.message}") from None
            if not wanted:
                self.emit(StepFinished(step.id, 0, StepStatus.SKIPPED, f"when: {step.when}"))
                return StepStatus.SKIPPED
        if step.kind is StepKind.MANUAL:
            return self._manual(step, position, total)
        return self._command(step, position, total, handler)

    def _branch_taken(self, step: Step) -> str | None:
        """The option taken at the step's choice: asked once per choice, and journalled."""
        assert step.branch is not None
        choice = step.branch.choice
        if choice in self.chosen:
            return self.chosen[choice]
        labels = branch_labels(self.plan, choice)
        picked = chosen_option(labels, self.options.choose)
        if picked is not None:
            note = "--choose"
        elif self.options.assume_yes and is_fallback(labels):
            note = "unattended run: a fallback is taken only with --choose"
        elif self.options.assume_yes:
            raise RunAborted(
                f"{self._where(step)}: step '{step.id}' is one option of a choice between "
                f"{', '.join(labels)}; an unattended run needs --choose LABEL"
            )
        else:
            picked, note = self.ui.ask_branch(step, labels), "operator"
        self.chosen[choice] = picked
        self.emit(
            Answer(
                step.id,
                0,
                Question.BRANCH,
                picked or "none",
                note=f"{note}; options: {', '.join(labels)}",
            )
        )
        return picked

    def _manual(self, step: Step, position: int, total: int) -> StepStatus:
        text = self._render_text(step)
        self.emit(StepStarted(step.id, 1, "manual", text=text))
        text = self.masker.mask(text)
        # The operator sees each offered command as it would run (values in, secrets masked).
        shown = replace(step, offers=tuple(self._shown_offer(step, o) for o in step.offers))
        self.ui.announce(shown, text, position, total, None)
        attempt = 1
        while True:
            if self.options.assume_yes:
                # Nobody is there to do it: an unattended run records the step as not done.
                choice, note = Choice.SKIP, "unattended run (--yes): nobody confirmed it"
            else:
                choice, note = self.ui.ask_manual(shown, text, position, total)
            if choice is not Choice.RUN:
                break
            attempt += 1
            self.emit(Answer(step.id, attempt, Question.MANUAL, "run", command=note))
            offer = step.offers[shown.offers.index(note)] if note in shown.offers else note
            if self._run_offer(step, offer, attempt) and len(step.offers) == 1:
                return StepStatus.SUCCEEDED
        self.emit(Answer(step.id, 0, Question.MANUAL, str(choice), note=note))
        if choice is Choice.ABORT:
            self.emit(StepFinished(step.id, attempt, StepStatus.SKIPPED, reason="aborted"))
            raise RunAborted(f"aborted at step '{step.id}'")
        status = StepStatus.DONE if choice is Choice.DONE else StepStatus.SKIPPED
        self.emit(StepFinished(step.id, attempt, status, note=note))
        return status

    def _shown_offer(self, step: Step, offer: str) -> str:
        try:
            rendered = render_step(offer, step.cwd, step.env, (), self.context)
        except TemplateProblem:
            return offer  # said when it is run
        return self.masker.mask(rendered.command)

    def _run_offer(self, step: Step, command: str, attempt: int) -> bool:
        """A command a manual step offers, run as a command step would be: True if it worked."""
        try:
            rendered = render_step(command, step.cwd, step.env, (), self.context)
        except TemplateProblem as problem:
            raise RunAborted(f"{self._where(step)}: {problem.message}") from None
        from engine.danger import find_danger  # the danger table: only for offered commands

        if find_danger(command) is not None:
            # `r` is no more than a command step's Enter: a destructive one needs its id typed.
            typed = self.ui.ask_danger(step)
            self.emit(Answer(step.id, attempt, Question.CONFIRM, "run" if typed else "skip"))
            if not typed:
                return False
        return self._execute(step, rendered, rendered.command, attempt, False)[1]

    def _render_text(self, step: Step) -> str:
        try:
            return render_text(step.body, self.context)
        except TemplateProblem as problem:
            raise RunAborted(f"{self._where(step, problem.line)}: {problem.message}") from None

    def _render(self, step: Step) -> RenderedStep:
        answers = tuple((e.prompt, e.send, e.secret) for e in step.expect)
        try:
            return render_step(
                step.command,
                step.cwd,
                step.env,
                answers,
                self.context,
                interpreter=step.interpreter,
            )
        except TemplateProblem as problem:
            raise RunAborted(f"{self._where(step, problem.line)}: {problem.message}") from None

    def _where(self, step: Step, line: int = 1) -> str:
        return f"{self.plan.runbook.path}:{step.source_line(line)}"

    def _command(self, step: Step, position: int, total: int, handler: str | None) -> StepStatus:
        rendered = self._render(step)
        command = rendered.command
        edited = False
        if not step.run:
            return StepStatus.SKIPPED
        if step.guessed and self.options.assume_yes and not self.options.run_guessed:
            self.emit(
                StepFinished(
                    step.id,
                    0,
                    StepStatus.SKIPPED,
                    reason="guessed to be commands (an unlabelled block): --yes runs it only"
                    " with --run-guessed",
                )
            )
            return StepStatus.SKIPPED
        self.ui.announce(step, self.masker.mask(command), position, total, handler)
        while True:
            choice = self._confirm(step, command, position, total)
            if choice is Choice.SKIP:
                self.emit(StepFinished(step.id, 0, StepStatus.SKIPPED, reason="operator"))
                return StepStatus.SKIPPED
            if choice is Choice.ABORT:
                raise RunAborted(f"aborted before step '{step.id}'")
            if choice is Choice.EDIT:
                new = self.ui.edit_command(command)
                if new is not None and new != command:
                    command, edited = new, True
                    self.emit(Answer(step.id, 0, Question.EDIT, "edited", command=command))
                continue
            break
        if step.target is not None:
            hosts = self._hosts(step)
            if len(hosts) > 1 or is_group(step.target, self._targets()):
                return self._fan_out(step, rendered, command, hosts)
        attempt = 0
        while True:
            attempt += 1
            outcome, ok = self._execute(step, rendered, command, attempt, edited)
            if ok:
                return StepStatus.SUCCEEDED
            if attempt <= step.retries and not outcome.interrupted:
                time.sleep(step.retry_delay)
                continue
            status = _failure_status(outcome)
            if self.options.assume_yes or step.on_failure == "continue":
                return status
            choice = self._failure_menu(step, outcome, rendered, attempt)
            if choice is Choice.EDIT:
                new = self.ui.edit_command(command)
                if new is not None:
                    command, edited = new, new != rendered.command
                    self.emit(Answer(step.id, 0, Question.EDIT, "edited", command=command))
                continue
            if choice is Choice.RETRY:
                continue
            if choice is Choice.SKIP:
                self.emit(
                    StepFinished(
                        step.id,
                        attempt,
                        StepStatus.SKIPPED,
                        reason="skipped by the operator after it failed",
                    )
                )
                return StepStatus.SKIPPED
            if choice is Choice.CONTINUE:
                self.go_on.add(step.id)
                return status
            if choice is Choice.ROLLBACK:
                return status
            raise RunAborted(f"aborted after step '{step.id}' failed")

    def _failure_menu(
        self, step: Step, outcome: Outcome, rendered: RenderedStep, attempt: int
    ) -> Choice:
        """Ask until the operator picks something other than opening a shell."""
        target = step.on_failure if self.plan.handler(step.on_failure) else None
        while True:
            choice = self.ui.ask_failure(step, outcome, target)
            self.emit(Answer(step.id, attempt, Question.FAILURE, str(choice)))
            if choice is not Choice.SHELL:
                return choice
            self._debug_shell(step, rendered)

    def _confirm(self, step: Step, command: str, position: int, total: int) -> Choice:
        if step.confirm is Confirm.DANGER:
            if self.options.assume_yes:
                if not self.options.allow_danger:
                    raise RunAborted(
                        f"step '{step.id}' is marked confirm: danger; "
                        "unattended runs need --allow-danger to run it"
                    )
                self.emit(Answer(step.id, 0, Question.CONFIRM, "run", note="--yes --allow-danger"))
                return Choice.RUN
            while True:
                choice = self.ui.ask_step(step, self.masker.mask(command), position, total)
                if choice is not Choice.RUN or self.ui.ask_danger(step):
                    break
            self.emit(Answer(step.id, 0, Question.CONFIRM, str(choice)))
            return choice
        if self.options.assume_yes or (step.confirm is Confirm.NO and not step.guessed):
            return Choice.RUN
        choice = self.ui.ask_step(step, self.masker.mask(command), position, total)
        self.emit(Answer(step.id, 0, Question.CONFIRM, str(choice)))
        return choice

    # -- steps on targets -------------------------------------------------------------------

    def _targets(self) -> tuple[Target, ...]:
        """The runbook's targets, then the inventory's it does not name itself."""
        own = self.plan.runbook.targets
        names = {t.name for t in own}
        return own + tuple(t for t in self.options.targets if t.name not in names)

    def _hosts(self, step: Step) -> tuple[Host, ...]:
        """The hosts a step's target names, its template (`{{ pod }}`) rendered first."""
        assert step.target is not None
        name = step.target
        if is_template(name):
            try:
                name = render_text(name, self.context).strip()
            except TemplateProblem as problem:
                raise RunAborted(f"{self._where(step)}: target: {problem.message}") from None
            if not name:
                raise RunAborted(f"{self._where(step)}: target {step.target!r} is empty")
        return resolve(name, self._targets())

    def _exec_words(self, step: Step, host: Host) -> tuple[str, ...] | None:
        """An exec target's command, its values escaped for the shell, as words."""
        if host.exec is None:
            return None
        try:
            text = render_step(host.exec, None, (), (), self.context).command
            return tuple(shlex.split(text))
        except TemplateProblem as problem:
            where = f"{self.plan.runbook.path}:{host.line}" if host.line else self._where(step)
            raise RunAborted(f"{where}: target {host.name}: {problem.message}") from None
        except ValueError as exc:
            raise RunAborted(f"{self._where(step)}: target {host.name}: {exc}") from None

    def _target_session(self, step: Step) -> tuple[ShellSession, str]:
        """The session of a step's single target host (started on first use). Raises
        ShellError when it cannot be reached: a failure of the step on that host."""
        host = self._hosts(step)[0]
        if self.remote is None:
            raise RunAborted(f"{self._where(step)}: steps on targets need remote sessions")
        return self.remote.session(host.name, host.ssh, self._exec_words(step, host)), host.name

    def _fan_out(
        self, step: Step, rendered: RenderedStep, command: str, hosts: tuple[Host, ...]
    ) -> StepStatus:
        """The step on each host of its group: parallel up to `forks`, or `serial` at a time."""
        from engine.fanout import FanOutPlan, fan_out, host_summary

        if self.remote is None:
            raise RunAborted(f"{self._where(step)}: steps on targets need remote sessions")
        if step.interactive:
            raise RunAborted(
                f"{self._where(step)}: step '{step.id}' is interactive: it cannot run on"
                f" {len(hosts)} hosts at once"
            )
        policy = {"abort": "stop"}.get(step.on_failure, step.on_failure)
        if policy not in ("stop", "continue", "ask"):
            policy = "stop"  # a failure handler runs once the fan-out has stopped
        if policy == "ask" and self.options.assume_yes:
            policy = "stop"  # nobody to ask
        answers = tuple(
            Responder(re.compile(prompt), send, "secret" if secret else "", expect.multiline)
            for expect, (prompt, send, secret) in zip(step.expect, rendered.answers, strict=True)
        )
        limit = step.serial or step.forks or self.options.forks or DEFAULT_FORKS
        plan = FanOutPlan(
            step=step.id,
            command=command,
            hosts=hosts,
            exec_words={h.name: w for h in hosts if (w := self._exec_words(step, h)) is not None},
            limit=limit,
            batches=step.serial is not None,
            policy=policy,
            interpreter=step.interpreter,
            cwd=rendered.cwd,
            env=dict(rendered.env),
            timeout=step.timeout or self.plan.runbook.timeout,
            responders=answers,
            retries=step.retries,
            retry_delay=step.retry_delay,
        )
        done = self._hosts_done.get(step.id, ())
        announce = getattr(self.ui, "announce_hosts", None)
        if announce is not None:
            left = [h.name for h in hosts if h.name not in done]
            announce(step, left, limit, step.serial is not None, policy)
        with _Interrupts() as interrupts:
            results = fan_out(
                plan,
                self.remote,
                self.emit,
                self.masker,
                functools.partial(self._ask_host_failure, step),
                interrupts.take,
                self._tick,
                skip=done,
            )
        ran = len(hosts) - len([h for h in hosts if h.name in done])
        failed = [r for r in results if r.status is not StepStatus.SUCCEEDED]
        status = StepStatus.SUCCEEDED
        if any(r.status is StepStatus.INTERRUPTED for r in results):
            status = StepStatus.INTERRUPTED
        elif failed or len(results) < ran:
            status = StepStatus.FAILED
        if status is not StepStatus.SUCCEEDED and self._continued.get(step.id):
            self.go_on.add(step.id)  # the operator chose to go on past a host's failure
        self.emit(StepFinished(step.id, 0, status, reason=host_summary(results, ran)))
        if status is StepStatus.INTERRUPTED:
            raise RunInterrupted()
        return status

    def _ask_host_failure(self, step: Step, host: str, result: HostResult) -> bool:
        """`on_failure: ask`: go on with the other hosts? The answer is journalled."""
        from engine.fanout import host_summary

        ask = getattr(self.ui, "ask_host_failure", None)
        go_on = bool(ask(step, host, host_summary([result], 1))) if ask is not None else False
        self.emit(
            Answer(
                step.id, 0, Question.FAILURE, "continue" if go_on else "abort", note=f"host {host}"
            )
        )
        if go_on:
            self._continued[step.id] = True
        return go_on

    def _execute(
        self, step: Step, rendered: RenderedStep, command: str, attempt: int, edited: bool
    ) -> tuple[Outcome, bool]:
        """Run one attempt; the outcome, and whether it counts as a success (a follow step
        stopped by Ctrl-C or its timeout does)."""
        session, host = self.session, None
        self._step_session = session  # where the failure menu's shell opens
        if step.target is not None:
            try:
                session, host = self._target_session(step)
            except ShellError as exc:
                # Could not reach the host: the step failed there, the engine did not.
                name = self._hosts(step)[0].name
                self.emit(StepStarted(step.id, attempt, "command", command=command, host=name))
                self.emit(StepFinished(step.id, attempt, StepStatus.FAILED, reason=str(exc)))
                return Outcome(None), False
            self._step_session = session
        self.emit(
            StepStarted(
                step.id,
                attempt,
                "command",
                command=command,
                edited=edited,
                cwd=rendered.cwd,
                interactive=step.interactive,
                host=host,
            )
        )
        stream = StreamMasker(self.masker)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        captured = bytearray()
        responders = [
            Responder(re.compile(prompt), send, "secret" if secret else "", expect.multiline)
            for expect, (prompt, send, secret) in zip(step.expect, rendered.answers, strict=True)
        ]
        timeout = step.timeout or self.plan.runbook.timeout
        with self.ui.step_io(step, step.interactive) as terminal, _Interrupts() as interrupts:

            def on_output(data: bytes) -> None:
                if step.capture:
                    captured.extend(data)
                text = decoder.decode(stream.feed(data))
                if text:
                    self.sink.emit(Output(step.id, attempt, text, host=host))

            def on_answer(responder: Responder, seen: str) -> None:
                answer = "[secret]" if responder.label == "secret" else responder.send
                self.emit(
                    Answer(
                        step.id, attempt, Question.EXPECT, answer, pattern=responder.prompt.pattern
                    )
                )

            io = StepIO(
                on_output=on_output,
                responders=responders,
                on_answer=on_answer,
                input_fd=terminal.input_fd,
                interrupt_requested=interrupts.take,
                tick=functools.partial(_both, terminal.tick, self._tick),
                on_waiting=self._on_waiting(step, attempt, terminal),
                on_notice=self._on_notice(step, attempt, terminal),
            )
            try:
                outcome = session.run_step(
                    command,
                    io,
                    interpreter=step.interpreter,
                    cwd=rendered.cwd,
                    env=dict(rendered.env),
                    timeout=timeout,
                    interactive=step.interactive,
                    no_input=self.options.assume_yes and not step.expect and not step.interactive,
                )
            except ShellError as exc:
                self.emit(StepFinished(step.id, attempt, StepStatus.FAILED, reason=str(exc)))
                hint = "" if isinstance(exc, StepRefused) else " (did the step end the shell?)"
                raise RunAborted(f"step '{step.id}': {exc}{hint}") from None
            rest = decoder.decode(stream.flush(), final=True)
            if rest:
                self.sink.emit(Output(step.id, attempt, rest, host=host))
        stopped = step.follow and (outcome.interrupted or outcome.timed_out)
        ok = outcome.ok or stopped
        kept: dict[str, str] = {}
        if step.capture and outcome.ok:
            value = _strip_ansi(captured.decode("utf-8", "replace")).strip()
            self.context[step.capture] = value
            kept[step.capture] = value
        self.emit(
            StepFinished(
                step.id,
                attempt,
                StepStatus.SUCCEEDED if ok else _failure_status(outcome),
                reason="stopped: a follow step runs until Ctrl-C or its timeout"
                if stopped
                else None,
                result=StepResult(
                    exit_code=outcome.exit_code,
                    signal=outcome.signal,
                    duration=round(outcome.duration, 6),
                    timed_out=outcome.timed_out,
                    interrupted=outcome.interrupted,
                    captured=kept,
                ),
                state=self._session_state(self._step_session),
            )
        )
        return outcome, ok

    def _on_notice(
        self, step: Step, attempt: int, terminal: StepIOContext
    ) -> Callable[[str], None]:
        """The engine's word while a step runs (what the next Ctrl-C does): the console's own
        look where it has one, else a `[runbook: ...]` line in the step's output (recorded,
        never part of a captured value)."""
        notice: Callable[[str], None] | None = getattr(terminal, "notice", None)
        if notice is not None:
            return notice

        def as_output(text: str) -> None:
            self.sink.emit(Output(step.id, attempt, f"\r\n[runbook: {text}]\r\n"))

        return as_output

    def _on_waiting(
        self, step: Step, attempt: int, terminal: StepIOContext
    ) -> Callable[[str], int | None] | None:
        """A step found waiting for input (no `interactive`, no `expect`): the operator is told
        and types the answer, a line at a time, on the keyboard the engine reads."""
        if self.options.assume_yes:
            return None  # nobody is there to answer: the shell says so
        waiting: Callable[[str], int | None] | None = getattr(terminal, "waiting_for_input", None)
        if waiting is not None:
            return waiting
        notice = self._on_notice(step, attempt, terminal)

        def operator_keys(question: str) -> int | None:
            if not sys.stdin.isatty():
                notice("the step is waiting for input, and there is no terminal to answer on")
                return None
            notice("the step is waiting for input: type the answer and press Enter")
            return sys.stdin.fileno()

        return operator_keys

    def _session_state(self, session: ShellSession) -> SessionState | None:
        """The session (local, or a target's) as the step left it, when it may have changed:
        what resume rebuilds."""
        take = getattr(session, "take_state", None)
        return take() if take is not None else None

    def _debug_shell(self, step: Step, rendered: RenderedStep) -> None:
        env = dict(rendered.env)
        env["PS1"] = f"(runbook {step.id}) \\w\\$ "
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = StreamMasker(self.masker)

        def on_output(data: bytes) -> None:
            text = decoder.decode(stream.feed(data))
            if text:
                self.sink.emit(Output(step.id, 0, text, shell=True))

        with self.ui.step_io(step, True) as terminal:
            io = StepIO(on_output=on_output, input_fd=terminal.input_fd, tick=terminal.tick)
            self._step_session.run_step(
                "exec bash --noprofile --norc -i", io, cwd=rendered.cwd, env=env, interactive=True
            )

    # -- events ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        tick = getattr(self.sink, "tick", None)
        if tick is not None:
            tick()

    def emit(self, event: Event) -> None:
        """Where events leave the runner: every text in them is masked here, once. (Output
        is masked as it streams, by a `StreamMasker` that sees secrets split across chunks.)"""
        self.sink.emit(_masked(event, self.params.masker.mask))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _both(first: Callable[[], None], second: Callable[[], None]) -> None:
    first()
    second()


def _failure_status(outcome: Outcome) -> StepStatus:
    if outcome.timed_out:
        return StepStatus.TIMED_OUT
    if outcome.interrupted:
        return StepStatus.INTERRUPTED
    return StepStatus.FAILED


def dry_run_commands(
    plan: Plan, params: Parameters, selected: list[str] | None = None
) -> list[tuple[Step, str]]:
    """The selected steps of the flow (all of them by default) and every handler's, rendered
    with the parameters; captured values, unknown before a real run, are placeholders. Raises
    RunAborted on a template that cannot render (an escape from the sandbox, say), so
    `preflight` catches it before anything runs."""
    context: dict[str, object] = dict(plan.runbook.env)
    context.update(params.values)
    by_id = {s.id: s for s in plan.runbook.steps}
    for step in plan.runbook.steps:
        if step.capture:
            context[step.capture] = Unquoted(f"<{step.capture} from step {step.id}>")
    flow = list(plan.order) if selected is None else selected
    ids = flow + [i for _, handler in plan.handlers for i in handler]
    rendered = []
    for step_id in ids:
        step = by_id[step_id]
        answers = tuple((e.prompt, e.send, e.secret) for e in step.expect)
        try:
            if step.kind is StepKind.COMMAND:
                command = render_step(
                    step.command, step.cwd, step.env, answers, context, interpreter=step.interpreter
                ).command
            else:
                command = render_text(step.body, context)  # prose is read, not run
            if step.when:
                evaluate_condition(step.when, context)
        except TemplateProblem as problem:
            line = step.source_line(problem.line)
            raise RunAborted(f"{plan.runbook.path}:{line}: {problem.message}") from None
        rendered.append((step, params.masker.mask(command)))
    return rendered


def preflight(plan: Plan, params: Parameters, options: RunOptions) -> list[str]:
    """What would stop the run part-way, found before anything runs."""
    problems = []
    try:
        dry_run_commands(plan, params)
    except RunAborted as exc:
        problems.append(str(exc))
    if options.assume_yes:
        problems += unattended_problems(plan, options)
    if options.assume_yes and not options.allow_danger:
        by_id = {s.id: s for s in plan.runbook.steps}
        ids = set(options.select(plan))
        handlers = {i for s in ids for i in plan.handler(by_id[s].on_failure)}
        danger = [
            s.id
            for s in plan.runbook.steps
            if s.id in ids | handlers and s.confirm is Confirm.DANGER
        ]
        if danger:
            problems.append(
                f"step(s) {', '.join(danger)} are marked confirm: danger; an unattended run"
                " needs --allow-danger to run them"
            )
    return problems


def branch_labels(plan: Plan, choice: str) -> list[str]:
    """The options of a choice, in the order of the document."""
    labels: list[str] = []
    for step in plan.runbook.steps:
        branch = step.branch
        if branch is not None and branch.choice == choice and branch.label not in labels:
            labels.append(branch.label)
    return labels


def is_fallback(labels: list[str]) -> bool:
    """A choice of one option that says when to take it ("If it will not stop", "Rollback",
    "Troubleshooting"): something to do only when needed, so an unattended run leaves it out
    unless told."""
    return len(labels) == 1 and is_optional(labels[0])


def chosen_option(labels: list[str], choose: tuple[str, ...]) -> str | None:
    """The option `--choose` picks among `labels` (case-insensitively), if any."""
    wanted = {c.strip().casefold() for c in choose}

    def names(label: str) -> set[str]:  # "Option 1: restart" is also "option 1" and "restart"
        head, _, tail = label.partition(":")
        return {label.casefold(), head.strip().casefold(), tail.strip().casefold()} - {""}

    return next((label for label in labels if names(label) & wanted), None)


def unattended_problems(plan: Plan, options: RunOptions) -> list[str]:
    """Steps an unattended run could not get through, named before anything runs: a choice
    nobody picked, a step that needs a terminal or never ends, with no answers or timeout."""
    problems = []
    by_id = {s.id: s for s in plan.runbook.steps}
    ids = options.select(plan)
    ids += [i for s in ids for i in plan.handler(by_id[s].on_failure) if i not in ids]
    choices = {choice for choice, _ in options.chosen}  # made before this resume
    for step_id in ids:
        step = by_id[step_id]
        branch = step.branch
        if branch is not None and branch.choice not in choices:
            choices.add(branch.choice)
            labels = branch_labels(plan, branch.choice)
            if chosen_option(labels, options.choose) is None and not is_fallback(labels):
                problems.append(
                    f"{plan.runbook.path}:{branch.line}: step '{step.id}' is one option of a"
                    f" choice between {', '.join(labels)}; an unattended run needs --choose"
                    " LABEL to pick one"
                )
        if step.kind is not StepKind.COMMAND or not step.run:
            continue
        if step.guessed and not options.run_guessed:
            continue  # skipped by --yes
        if step.expect or step.timeout or plan.runbook.timeout:
            continue
        for key in ("interactive", "follow"):
            if getattr(step, key):
                inferred = step.inference(key)
                why = f" ({inferred.reason})" if inferred else ""
                problems.append(
                    f"{plan.runbook.path}:{step.line}: step '{step.id}' is {key}{why}; an"
                    " unattended run needs `expect` answers or a `timeout` for it"
                )
                break
    return problems


def plural(count: int, noun: str) -> str:
    """`1 step`, `2 steps`."""
    return f"{count} {noun}{'s' * (count != 1)}"


def _masked(event: Event, mask: Callable[[str], str]) -> Event:
    """The event with every text that could hold a secret masked."""
    match event:
        case StepStarted():
            return replace(event, command=mask(event.command), text=mask(event.text))
        case Answer():
            return replace(
                event,
                answer=mask(event.answer),
                note=None if event.note is None else mask(event.note),
                command=None if event.command is None else mask(event.command),
            )
        case StepFinished():
            result = event.result
            if result is not None and result.captured:
                captured = {k: mask(v) for k, v in result.captured.items()}
                result = replace(result, captured=captured)
            state = event.state
            if state is not None:  # defence in depth: the session already drops secrets
                state = replace(
                    state,
                    cwd=mask(state.cwd),
                    variables=mask(state.variables),
                    functions=mask(state.functions),
                    left_running=tuple(mask(c) for c in state.left_running),
                )
            return replace(
                event,
                reason=None if event.reason is None else mask(event.reason),
                note=None if event.note is None else mask(event.note),
                result=result,
                state=state,
            )
        case _:
            return event
