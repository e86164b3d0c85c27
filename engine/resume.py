"""resume: continue a failed or interrupted run, from what its journal recorded.

Finished steps are not run again; parameters (secret ones asked again), captured values and
the shell session (directory, variables, functions) come back from the events. A step started
without a result may have run: it is never run again without the operator's word.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.console.run import RunConsole
from engine.console.terminal import Terminal
from engine.events import Answer, Question, RunStatus, StepFinished, StepStatus
from engine.journal import query
from engine.journal.location import Location, exists
from engine.journal.storage import Store, open_store
from engine.launch import (
    Launch,
    LaunchError,
    acquire_lock,
    check_before_running,
    collect_params,
    provenance,
    run_in_session,
    with_targets,
)
from engine.loader import RunbookNotFound, read_runbook
from engine.model import Runbook
from engine.parameters import Parameters
from engine.parse import parse_runbook
from engine.plan import Plan, plan_runbook
from engine.record import RunDetail, StepRecord
from engine.run import Choice, RunOptions


def changed_steps(old_text: str, new: Runbook) -> list[str]:
    """Step ids whose text or settings differ between the version a run used and now."""
    old = {s.id: s for s in parse_runbook(old_text, new.path).steps}
    current = {s.id: s for s in new.steps}
    changes = []
    for step_id in sorted(set(old) | set(current)):
        before, after = old.get(step_id), current.get(step_id)
        if before is None:
            changes.append(f"{step_id}: added")
        elif after is None:
            changes.append(f"{step_id}: removed")
        elif replace(before, line=0, body_line=0, key_columns=()) != replace(
            after, line=0, body_line=0, key_columns=()
        ):
            changes.append(f"{step_id}: changed")
    return changes


def resume_run(
    reference: str,
    given: dict[str, str],
    yes: bool,
    allow_danger: bool,
    force: bool,
    journal: Location,
    terminal: Terminal,
    rerun_unfinished: bool = False,
    run_guessed: bool = False,
    choose: tuple[str, ...] = (),
    forks: int | None = None,
    ssh_config: str | None = None,
    inventory: Path | None = None,
) -> int:
    """Continue an interrupted or failed run at its first unfinished step."""
    if not exists(journal):
        raise LaunchError(f"no runs recorded yet (no journal at {journal})")
    store = open_store(journal)
    try:
        try:
            summary = store.find_run(reference)
        except query.RunNotFound as exc:
            raise LaunchError(str(exc)) from None
        if summary.status == RunStatus.SUCCEEDED:
            raise LaunchError(f"run {summary.id} succeeded: there is nothing to resume")
        if summary.status == RunStatus.RUNNING:
            raise LaunchError(
                f"run {summary.id} is still running (pid {summary.pid} on {summary.host})"
            )
        detail = store.read_run(summary)
        old_text, abspath = store.runbook_text(summary.id)
        asked = _Resume(given, yes, allow_danger, force, journal, terminal)
        asked.rerun_unfinished = rerun_unfinished
        asked.run_guessed, asked.choose = run_guessed, choose
        asked.forks, asked.ssh_config, asked.inventory = forks, ssh_config, inventory
        return _resume(store, detail, old_text, Path(abspath), asked)
    finally:
        store.close()


class _Resume:
    """What the operator asked of `resume`."""

    def __init__(
        self,
        given: dict[str, str],
        yes: bool,
        allow_danger: bool,
        force: bool,
        journal: Location,
        terminal: Terminal,
    ) -> None:
        self.given, self.yes, self.allow_danger, self.force = given, yes, allow_danger, force
        self.journal, self.terminal = journal, terminal
        self.rerun_unfinished = False
        self.run_guessed = False
        self.choose: tuple[str, ...] = ()
        self.forks: int | None = None  # steps on other machines: as `run` takes them
        self.ssh_config: str | None = None
        self.inventory: Path | None = None


def recorded_params(runbook: Runbook, recorded: dict[str, object]) -> dict[str, str]:
    """The parameters a run had, but the secret ones: never recorded, so asked for again."""
    return {
        name: str(value)
        for name, value in recorded.items()
        if not ((param := runbook.param(name)) is not None and param.secret)
    }


def _resume(store: Store, detail: RunDetail, old_text: str, abspath: Path, asked: _Resume) -> int:
    summary, terminal, yes = detail.summary, asked.terminal, asked.yes
    shown_path = summary.path if Path(summary.path).exists() else str(abspath)
    try:
        runbook = read_runbook(Path(shown_path))
    except RunbookNotFound as exc:
        raise LaunchError(f"cannot resume run {summary.id}: {exc}") from None
    plan = plan_runbook(runbook)
    if not plan.ok:
        terminal.diagnostics([d for d in plan.diagnostics if d.is_error])
        raise LaunchError(f"{runbook.path} has errors now; fix them to resume")
    interactive = not yes
    console = RunConsole(terminal, plan, interactive)
    if runbook.digest != summary.digest:
        changes = changed_steps(old_text, runbook)
        if yes and not asked.force:
            raise LaunchError(
                f"{runbook.path} changed since run {summary.id} started ("
                + ", ".join(changes or ["text only"])
                + "); use --force to resume with the new version"
            )
        if not yes and not console.confirm_changes(runbook.path, changes):
            raise LaunchError("resume cancelled")
    values = collect_params(
        runbook, {**recorded_params(runbook, summary.params), **asked.given}, interactive, terminal
    )
    started = detail.started
    selection = list(started.steps) if started and started.steps else list(plan.order)
    done: set[str] = set()
    captured: dict[str, str] = {}
    decisions: list[tuple[str, Choice]] = []
    hosts_done: dict[str, tuple[str, ...]] = {}
    for record in detail.steps:
        captured.update(record.captured)
        finished_on = _hosts_finished(record)
        if finished_on:  # a fanned-out step runs again only where it did not finish
            hosts_done[record.id] = finished_on
            if record.status is None or not StepStatus(record.status).finished:
                terminal.warning(
                    f"step {record.id} finished on {', '.join(finished_on)}: if it runs again,"
                    " it runs only on its other hosts"
                )
        if record.status is not None and StepStatus(record.status).finished:
            done.add(record.id)
        elif record.status is None and record.id in selection:
            choice = _unfinished(record.id, summary.id, asked, console)
            decisions.append((record.id, choice))
            if choice in (Choice.DONE, Choice.SKIP):
                done.add(record.id)
    state = detail.session_state
    if state is not None and state.left_running:
        _confirm_left_running(state.left_running, asked, console)
    options = RunOptions(
        assume_yes=yes,
        allow_danger=asked.allow_danger,
        only=frozenset(selection),
        done=frozenset(done),
        run_guessed=asked.run_guessed,
        choose=asked.choose,
        chosen=tuple(choices_made(plan, detail).items()),
        hosts_done=hosts_done,
    )
    options = with_targets(options, asked.forks, asked.inventory)
    params = Parameters.of(plan, values)
    check_before_running(plan, params, options)
    facts = provenance(runbook, summary.id, asked.journal)
    acquire_lock(store, runbook.path, str(abspath), facts, asked.force, terminal)
    writer = store.continue_run(summary.id)
    try:
        for step_id, choice in decisions:
            writer.emit(Answer(step_id, 0, Question.UNFINISHED, str(choice)))
            if choice is not Choice.RUN:
                status = StepStatus.DONE if choice is Choice.DONE else StepStatus.SKIPPED
                writer.emit(StepFinished(step_id, 0, status, reason="on resume"))
        launch = Launch(
            plan,
            params,
            options,
            terminal,
            interactive,
            asked.journal,
            asked.force,
            captured,
            restore=state,
            target_states=detail.target_states,
            ssh_config=asked.ssh_config,
        )
        return run_in_session(launch, writer, facts, resumed=True)
    finally:
        store.unlock(str(abspath), summary.id)


def choices_made(plan: Plan, detail: RunDetail) -> dict[str, str | None]:
    """The options the run took at its choices, from its journalled answers: a resumed run
    goes on down the same branch, and is not asked again."""
    by_id = {step.id: step for step in plan.runbook.steps}
    made: dict[str, str | None] = {}
    for record in detail.steps:
        step = by_id.get(record.id)
        if step is None or step.branch is None:
            continue
        for answer in record.answers:
            if answer.question == Question.BRANCH:
                made[step.branch.choice] = None if answer.answer == "none" else answer.answer
    return made


def _hosts_finished(record: StepRecord) -> tuple[str, ...]:
    """The hosts a fanned-out step succeeded on, by each host's last attempt."""
    last: dict[str, str | None] = {}
    for attempt in record.attempts:
        if attempt.host is not None:
            last[attempt.host] = attempt.status
    return tuple(host for host, status in last.items() if status == StepStatus.SUCCEEDED)


def _unfinished(step_id: str, run_id: str, asked: _Resume, console: RunConsole) -> Choice:
    """A step whose start is recorded but not its end: it may have run (its side effect done,
    the engine killed before it recorded the end). Never run again without a word."""
    may_have_run = (
        f"step {step_id} of run {run_id} started but its end was not recorded:"
        " it may have run, in part or in full"
    )
    if asked.yes:
        if not asked.rerun_unfinished:
            raise LaunchError(
                f"{may_have_run}; resume without --yes to choose (run it again, mark it done,"
                " or abort), or give --rerun-unfinished to run it again"
            )
        asked.terminal.warning(f"{may_have_run}; running it again (--rerun-unfinished)")
        return Choice.RUN
    asked.terminal.warning(may_have_run)
    choice = console.ask_unfinished(step_id)
    if choice is Choice.ABORT:
        raise LaunchError("resume cancelled")
    return choice


def _confirm_left_running(commands: tuple[str, ...], asked: _Resume, console: RunConsole) -> None:
    """Processes an earlier step left running (a background job, an open ssh) are gone with
    the old session: a new one cannot bring them back. Said, and confirmed."""
    listed = "; ".join(commands)
    asked.terminal.warning(
        f"cannot restore what earlier steps left running, later steps may need it: {listed}"
    )
    if not asked.yes and not console.confirm_without(commands):
        raise LaunchError("resume cancelled")
