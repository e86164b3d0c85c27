"""The operator's side of `runbook run`: the event stream shown live, and every prompt."""

from __future__ import annotations

import getpass
import re
import sys
import termios
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text

from engine.console.terminal import EditorFailed, Terminal, _section_path
from engine.events import (
    Answer,
    Event,
    Output,
    Question,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    StepStatus,
)
from engine.model import Param, Step, StepKind
from engine.plan import Plan
from engine.record import format_seconds, step_flags
from engine.run import Choice
from engine.shell import Outcome

if TYPE_CHECKING:
    from rich.syntax import Syntax

# -- run ------------------------------------------------------------------------------------


STEP_KEYS = {"r": "run", "\r": "run", "\n": "run", "s": "skip", "e": "edit", "a": "abort"}
MANUAL_KEYS = {"d": "done", "\r": "done", "\n": "done", "s": "skip", "a": "abort"}
FAILURE_KEYS = {
    "r": "retry",
    "s": "skip",
    "e": "edit",
    "o": "shell",
    "c": "continue",
    "b": "rollback",
    "a": "abort",
}
STEP_HELP = (
    "r/Enter run the command   s skip it   e edit it in $EDITOR first   a abort the run\n"
    "Ctrl-C while a step runs stops the step; at a prompt it stops the run."
)
FAILURE_HELP = (
    "r retry   e edit the command, then retry   o open a shell in the step's directory\n"
    "s skip (the step counts as skipped)   c continue (the step counts as failed)\n"
    "b run the failure handler (rollback) and stop   a abort the run"
)


class RunConsole:
    """The operator's side of `runbook run`: shows the event stream, asks at each prompt."""

    def __init__(self, terminal: Terminal, plan: Plan | None, interactive: bool) -> None:
        self.terminal = terminal
        self.out = terminal.out
        self.plan = plan
        self.interactive = interactive
        self.sections = {s.slug: s for s in plan.runbook.sections} if plan else {}
        self._progress_shown = False
        self._at_line_start = True
        self._step_started = 0.0
        self._position = ""
        self._current = ""

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        match event:
            case Output(text=text):
                self._clear_progress()
                sys.stdout.write(text)
                sys.stdout.flush()
                self._at_line_start = text.endswith("\n")
            case RunStarted():
                self.out.print(
                    Text.assemble(
                        ("▶ ", "bold green"),
                        (event.title, "bold"),
                        f"  ({len(event.steps)} steps, {event.path})",
                    )
                )
            case StepStarted():
                self._step_started = time.monotonic()
                self._current = event.step
                if event.kind == "command" and event.attempt > 1:
                    self.out.print(Text(f"  ↻ attempt {event.attempt}", style="yellow"))
            case StepFinished():
                self._finish_output()
                self._step_finished(event)
            case Answer(question=Question.EXPECT):
                self._finish_output()
                self.out.print(
                    Text(f"  ↳ answered /{event.pattern}/ with {event.answer}", style="dim")
                )
                self._at_line_start = True
            case RunFinished():
                self._finish_output()
                self._run_finished(event)
            case _:
                pass

    def _finish_output(self) -> None:
        self._clear_progress()
        if not self._at_line_start:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._at_line_start = True

    def _step_finished(self, event: StepFinished) -> None:
        status, step, result = event.status, event.step, event.result
        took = f" in {format_seconds(result.duration)}" if result is not None else ""
        if status in (StepStatus.SUCCEEDED, StepStatus.DONE):
            self.out.print(Text(f"  ✓ {step} {status}{took}", style="green"))
        elif status is StepStatus.SKIPPED:
            reason = event.reason or event.note or ""
            self.out.print(
                Text(f"  ↷ {step} skipped" + (f" ({reason})" if reason else ""), style="dim")
            )
        else:
            detail = _outcome_text(event)
            self.out.print(Text(f"  ✗ {step} {status}: {detail}{took}", style="bold red"))

    def _run_finished(self, event: RunFinished) -> None:
        status, message = str(event.status), event.message
        style = {"succeeded": "bold green", "failed": "bold red"}.get(status, "bold yellow")
        self.out.print()
        self.out.print(Text(f"Run {status}" + (f": {message}" if message else ""), style=style))

    # -- progress -------------------------------------------------------------------------------

    def _clear_progress(self) -> None:
        if self._progress_shown:
            sys.stdout.write("\r\x1b[K")
            self._progress_shown = False

    def tick(self) -> None:
        """While a step is quiet: a progress line, erased as soon as output resumes."""
        if not (self.out.is_terminal and self._at_line_start):
            return
        elapsed = time.monotonic() - self._step_started
        if elapsed < 1:
            return
        sys.stdout.write(
            f"\r\x1b[2m  … {self._position} {self._current} running for {format_seconds(elapsed)}"
            " (Ctrl-C stops it)\x1b[0m\x1b[K"
        )
        sys.stdout.flush()
        self._progress_shown = True

    # -- prompts --------------------------------------------------------------------------------

    def _header(self, step: Step, position: int, total: int) -> None:
        self._position = f"[{position}/{total}]"
        path = _section_path(step.section, self.sections)
        line = Text.assemble(
            ("\n" + self._position + " ", "bold"),
            (path + " > ", "cyan"),
            (step.id, "bold"),
        )
        flags = step_flags(step)
        if flags:
            line.append("  " + " ".join(flags), style="yellow")
        self.out.print(line)

    def ask_step(self, step: Step, command: str, position: int, total: int) -> Choice:
        self._header(step, position, total)
        self.out.print(_highlighted(command))
        while True:
            key = self._key("Run it? [R]un / [s]kip / [e]dit / [a]bort / [?] ")
            if key in STEP_KEYS:
                return Choice(STEP_KEYS[key])
            self.out.print(Text(STEP_HELP, style="dim"))

    def ask_danger(self, step: Step) -> bool:
        self.out.print(Text("This step is marked dangerous.", style="bold red"))
        typed = self._line(f"Type the step id ({step.id}) to run it: ")
        if typed.strip() == step.id:
            return True
        self.out.print(Text("That is not the step id; the step did not run.", style="yellow"))
        return False

    def ask_manual(self, step: Step, text: str, position: int, total: int) -> tuple[Choice, str]:
        self._header(step, position, total)
        self.out.print(Text.assemble(("  ☐ ", "bold"), text))
        while True:
            key = self._key("Done? [D]one / [s]kip / [a]bort ")
            if key in MANUAL_KEYS:
                choice = Choice(MANUAL_KEYS[key])
                note = self._line("Note (why skipped, optional): ") if choice is Choice.SKIP else ""
                return choice, note
            self.out.print(Text("d/Enter done   s skip (with a note)   a abort", style="dim"))

    def ask_failure(self, step: Step, outcome: Outcome, handler: str | None) -> Choice:
        self.out.print(
            Text.assemble(
                ("  Step ", "red"),
                (step.id, "bold red"),
                (f" (line {step.line}) failed", "red"),
            )
        )
        rollback = f" / [b] run {handler} and stop" if handler else ""
        while True:
            key = self._key(
                f"[r]etry / [e]dit and retry / [o]pen a shell / [s]kip / [c]ontinue{rollback}"
                " / [a]bort "
            )
            if key in FAILURE_KEYS and (key != "b" or handler):
                return Choice(FAILURE_KEYS[key])
            self.out.print(Text(FAILURE_HELP, style="dim"))

    def edit_command(self, command: str) -> str | None:
        try:
            edited = self.terminal.keyboard.edit(command, ".sh")
        except EditorFailed as exc:
            self.terminal.error(str(exc))
            return None
        if edited is None:
            self.out.print(Text("Not saved: the command is unchanged.", style="yellow"))
        return edited

    def step_io(self, step: Step, interactive: bool) -> StepTerminal:
        return StepTerminal(self, interactive and self.interactive)

    def ask_unfinished(self, step_id: str) -> Choice:
        """A step that started but has no result: the engine was stopped while it ran."""
        self.out.print(
            Text(
                f"Step {step_id} started but has no result (the engine was stopped).",
                style="yellow",
            )
        )
        keys = {
            "r": Choice.RUN,
            "\r": Choice.RUN,
            "\n": Choice.RUN,
            "d": Choice.DONE,
            "s": Choice.SKIP,
            "a": Choice.ABORT,
        }
        while True:
            key = self._key("[R]un it again / mark it [d]one / [s]kip it / [a]bort ")
            if key in keys:
                return keys[key]

    def confirm_changes(self, path: str, changes: list[str]) -> bool:
        self.out.print(Text(f"{path} changed since this run started:", style="bold yellow"))
        for change in changes or ["(text outside the steps)"]:
            self.out.print(Text(f"  {change}"))
        return self._key("Resume with the new version? [y/N] ") == "y"

    def confirm_without(self, commands: tuple[str, ...]) -> bool:
        """Resume although what earlier steps left running is gone."""
        return self._key("Resume without them? [y/N] ") == "y"

    def ask_param(self, param: Param) -> str:
        label = param.description or param.name
        if param.choices:
            self.out.print(Text(f"{param.name}: {label}", style="bold"))
            for number, choice in enumerate(param.choices, 1):
                self.out.print(Text(f"  {number}. {choice}"))
        while True:
            default = param.default or ""
            prompt = (
                f"{param.name}"
                + (f" [{'<secret>' if param.secret else default}]" if default else "")
                + ": "
            )
            value = self._line(prompt, secret=param.secret) or default
            if param.choices and value.isdigit() and 0 < int(value) <= len(param.choices):
                value = param.choices[int(value) - 1]
            problem = _param_problem(param, value)
            if problem is None:
                return value
            self.out.print(Text(problem, style="yellow"))

    def _key(self, prompt: str) -> str:
        self.out.print(Text(prompt, style="bold"), end="")
        key = self.terminal.keyboard.read_key()
        self.out.print(Text(key if key.isprintable() else ""))
        return key.lower()

    def _line(self, prompt: str, secret: bool = False) -> str:
        self.out.print(Text(prompt, style="bold"), end="")
        try:
            return getpass.getpass("") if secret else input()
        except EOFError:
            raise KeyboardInterrupt from None


class StepTerminal:
    """The operator's terminal while a step runs; raw input only for interactive steps."""

    def __init__(self, console: RunConsole, interactive: bool) -> None:
        self.console = console
        self.interactive = interactive and sys.stdin.isatty()
        self._saved: list[Any] | None = None

    @property
    def input_fd(self) -> int | None:
        return sys.stdin.fileno() if self.interactive else None

    def tick(self) -> None:
        if not self.interactive:
            self.console.tick()

    def __enter__(self) -> StepTerminal:
        if self.interactive:
            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            mode = termios.tcgetattr(fd)
            mode[0] &= ~(termios.ICRNL | termios.IXON)
            mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
            termios.tcsetattr(fd, termios.TCSANOW, mode)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None


def _param_problem(param: Param, value: str) -> str | None:
    if not value and param.required:
        return f"{param.name} is required"
    if param.choices and value not in param.choices:
        return f"choose one of: {', '.join(param.choices)}"
    if param.pattern and not re.fullmatch(param.pattern, value):
        return f"must match {param.pattern}"
    return None


def _outcome_text(event: StepFinished) -> str:
    result = event.result
    if result is None:
        return f"exit status {None}"
    if result.timed_out:
        return "timed out, its processes were stopped"
    if result.interrupted:
        return "interrupted (Ctrl-C)"
    if result.signal:
        return f"killed by signal {result.signal}"
    return f"exit status {result.exit_code}"


def print_dry_run(terminal: Terminal, plan: Plan, commands: list[tuple[Step, str]]) -> None:
    """The whole plan with final commands, as `run --dry-run` shows it; nothing runs."""
    out = terminal.out
    sections = {s.slug: s for s in plan.runbook.sections}
    out.print(
        Text(
            f"Dry run of {plan.runbook.title} ({plan.runbook.path}): nothing is executed",
            style="bold",
        )
    )
    for number, (step, command) in enumerate(commands, 1):
        line = Text.assemble(
            (f"\n[{number}/{len(commands)}] ", "bold"),
            (_section_path(step.section, sections) + " > ", "cyan"),
            (step.id, "bold"),
        )
        flags = step_flags(step)
        if flags:
            line.append("  " + " ".join(flags), style="yellow")
        out.print(line)
        if step.kind is StepKind.MANUAL:
            out.print(Text.assemble(("  ☐ ", "bold"), command))
        else:
            out.print(_highlighted(command))


def _highlighted(command: str) -> Syntax:
    """The command as shell code, coloured (pygments is loaded on the first prompt only)."""
    from rich.syntax import Syntax

    return Syntax(command.rstrip("\n"), "bash", theme="ansi_dark", background_color="default")
