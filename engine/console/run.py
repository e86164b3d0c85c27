"""The operator's side of `runbook run`: the event stream shown live, and every prompt."""

from __future__ import annotations

import getpass
import re
import sys
import termios
import textwrap
import time
from typing import TYPE_CHECKING, Any

from engine.console.terminal import EditorFailed, Terminal, _section_path, append_flags
from engine.console.text import Text
from engine.duration import elapsed_text
from engine.events import (
    Answer,
    Event,
    Output,
    Question,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    StepFinished,
    StepStarted,
    StepStatus,
)
from engine.labels import step_flags
from engine.model import Param, Step, StepKind, Target
from engine.param_types import TYPE_NAMES, typed_value
from engine.parameters import SHOWN_SECRET
from engine.plan import Plan
from engine.regexes import matches
from engine.run import Choice, plural
from engine.shell import Outcome
from engine.targets import DEFAULT_FORKS, is_group, is_template, resolve

if TYPE_CHECKING:
    from rich.console import RenderableType
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
    "s skip (the step counts as skipped)   c continue (the step counts as failed)   a abort\n"
    "b run the failure handler (rollback) and stop"
)


SUMMARY_STYLE = {"succeeded": "green", "done": "green", "skipped": "yellow", "not reached": "dim"}


class RunConsole:
    """The operator's side of `runbook run`: shows the event stream, asks at each prompt."""

    def __init__(
        self, terminal: Terminal, plan: Plan | None, interactive: bool, quiet: bool = False
    ) -> None:
        self.terminal = terminal
        self.out = terminal.out
        self.plan = plan
        self.interactive = interactive
        self.quiet = quiet  # --quiet: the document's prose is not shown
        self.sections = {s.slug: s for s in plan.runbook.sections} if plan else {}
        self.by_id = {s.id: s for s in plan.runbook.steps} if plan else {}
        self._announced = ""
        self._selected: tuple[str, ...] = ()
        self._results: dict[str, tuple[str, str]] = {}  # step -> (status, why)
        self._progress_shown = False
        self._at_line_start = True
        self._step_started = 0.0
        self._position = ""
        self._current = ""
        self._fanned: set[str] = set()  # steps shown host by host, each line with its host
        self._partial: dict[str, str] = {}  # host -> its unfinished output line
        self._hosts: dict[str, list[StepFinished]] = {}  # step -> each host's end
        self._host_order: dict[str, list[str]] = {}  # step -> its hosts, in the group's order

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        match event:
            case Output(host=str() as host) if event.step in self._fanned:
                self._host_output(host, event.text)
            case StepStarted(host=str()) if event.step in self._fanned:
                pass
            case StepFinished(host=str() as host) if event.step in self._fanned:
                self._host_output(host, "", final=True)
                self._hosts.setdefault(event.step, []).append(event)
                self._host_finished(event)
            case Output(text=text):
                self._clear_progress()
                sys.stdout.write(text)
                sys.stdout.flush()
                self._at_line_start = text.endswith("\n")
            case RunStarted() | RunResumed():
                self._run_started(event)
            case StepStarted():
                self._step_started = time.monotonic()
                self._current = event.step
                if event.kind == "command" and event.attempt > 1:
                    self.out.print(Text(f"  ↻ attempt {event.attempt}", style="yellow"))
            case StepFinished():
                self._finish_output()
                if event.step in self._hosts:
                    order = self._host_order.get(event.step, [])
                    ends = sorted(
                        self._hosts.pop(event.step),
                        key=lambda e: order.index(e.host) if e.host in order else len(order),
                    )
                    self._host_table(ends)
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

    def _run_started(self, event: RunStarted | RunResumed) -> None:
        """The title, the description and the parameters in effect, before step 1."""
        self._selected = event.steps
        resumed = isinstance(event, RunResumed)
        run = event.provenance.run_id if event.provenance else ""
        self.out.print(
            Text.assemble(
                ("▶ ", "bold green"),
                ("Resuming run " + run + ": " if resumed else "", "bold yellow"),
                (event.title, "bold"),
                f"  ({plural(len(event.steps), 'step')}"
                + (" left" if resumed else "")
                + f", {event.path})",
            )
        )
        runbook = self.plan.runbook if self.plan else None
        if runbook is not None and runbook.description and not self.quiet:
            self.out.print(Text("  " + runbook.description))
        if event.params:
            from rich.table import Table
            from rich.text import Text as RichText

            table = Table(box=None, show_header=False, padding=(0, 1, 0, 2))
            table.add_column(style="cyan")
            table.add_column()
            for name, value in event.params.items():
                shown = f"[secret:{name}]" if value == SHOWN_SECRET else value
                table.add_row(RichText(name), RichText(shown))
            self.out.print(Text("  Parameters", style="bold"))
            self.out.print(table)

    def _finish_output(self) -> None:
        self._clear_progress()
        if not self._at_line_start:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._at_line_start = True

    def _step_finished(self, event: StepFinished) -> None:
        status, step, result = event.status, event.step, event.result
        why = event.reason or event.note or ""
        if status not in (StepStatus.SUCCEEDED, StepStatus.DONE, StepStatus.SKIPPED):
            why = _outcome_text(event)
        self._results[step] = (str(status), why)
        expected = self.by_id[step].expected if step in self.by_id else ""
        if expected and result is not None:
            self.out.print(Text("  expected (the runbook's example output):", style="dim"))
            self.out.print(Text("  " + expected.replace("\n", "\n  "), style="dim italic"))
        took = f" in {elapsed_text(result.duration)}" if result is not None else ""
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

    def _host_output(self, host: str, text: str, final: bool = False) -> None:
        """A host's output, a whole line at a time, each line behind its host's name."""
        text = self._partial.pop(host, "") + text
        lines = text.split("\n")
        rest = lines.pop()
        if final and rest.strip("\r"):
            lines.append(rest)
            rest = ""
        if rest:
            self._partial[host] = rest
        if not lines:
            return
        self._clear_progress()
        prefix = f"\x1b[36m{host}\x1b[0m | " if self.out.is_terminal else f"{host} | "
        sys.stdout.write("".join(f"{prefix}{line.rstrip(chr(13))}\n" for line in lines))
        sys.stdout.flush()
        self._at_line_start = True

    def _host_finished(self, event: StepFinished) -> None:
        """One host's end, as it happens."""
        mark, style = ("✓", "green") if event.status is StepStatus.SUCCEEDED else ("✗", "red")
        took = f" in {elapsed_text(event.result.duration)}" if event.result else ""
        why = "" if event.status is StepStatus.SUCCEEDED else ": " + _outcome_text(event)
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        again = "; tried again" if event.reason and "tried again" in event.reason else ""
        self.out.print(
            Text(f"  {mark} {event.host} {event.status}{attempt}{why}{took}{again}", style=style)
        )

    def _host_table(self, ends: list[StepFinished]) -> None:
        """After a fanned-out step: each host, its status, exit code and time."""
        width = max(len("host"), *(len(e.host or "") for e in ends))
        table = Text(f"  {'host'.ljust(width)}   status       exit   time", "bold")
        for end in ends:
            result = end.result
            code = "-" if result is None or result.exit_code is None else str(result.exit_code)
            took = elapsed_text(result.duration) if result else "-"
            status = str(end.status)
            style = "green" if end.status is StepStatus.SUCCEEDED else "red"
            table.append(f"\n  {(end.host or '').ljust(width)}   ")
            if end.attempt > 1:
                status += f" ({end.attempt})"
            table.append(status.ljust(12), style=style)
            table.append(f" {code.ljust(6)} {took}")
            if end.status is not StepStatus.SUCCEEDED and end.reason:
                table.append(f"   {end.reason}", style="dim")
        self.out.print(table)

    def announce_hosts(
        self, step: Step, hosts: list[str], limit: int, serial: bool, policy: str
    ) -> None:
        """Where a fanned-out step runs, how many at once, and what a failure does."""
        self._fanned.add(step.id)
        self._host_order[step.id] = hosts
        pace = f"{limit} at a time, in order" if serial else f"up to {limit} at a time"
        self.out.print(
            Text(
                f"  on {plural(len(hosts), 'host')}: {', '.join(hosts)} ({pace};"
                f" on a failure: {policy})",
                style="magenta",
            )
        )

    def ask_host_failure(self, step: Step, host: str, summary: str) -> bool:
        """`on_failure: ask`: a host failed; go on with the others?"""
        self.out.print(Text(f"  Step {step.id} failed on {host}: {summary}", style="red"))
        while True:
            key = self._key("[c]ontinue with the other hosts / [s]top (no new host starts) ")
            if key in ("c", "s"):
                return key == "c"

    def _run_finished(self, event: RunFinished) -> None:
        status, message = str(event.status), event.message
        style = {"succeeded": "bold green", "failed": "bold red"}.get(status, "bold yellow")
        if event.status is RunStatus.SUCCEEDED and message:
            style = "bold yellow"
        self.out.print()
        self._summary_table()
        separator = ", " if event.status is RunStatus.SUCCEEDED else ": "
        if event.status is RunStatus.INTERRUPTED:
            message = "resume it with `runbook resume`"
        self.out.print(
            Text(f"Run {status}" + (separator + message if message else ""), style=style)
        )

    def _summary_table(self) -> None:
        """Every step of the run: done, skipped (and why), failed, not reached."""
        ids = list(self._selected) + [i for i in self._results if i not in self._selected]
        if not ids:
            return
        # Aligned lines in one Text rather than a rich Table: a run can have hundreds of steps.
        rows = [(i, *self._results.get(i, ("not reached", ""))) for i in ids]
        width = max(len("step"), *(len(r[0]) for r in rows))
        status_width = max(len(r[1]) for r in rows)
        table = Text(f"  {'step'.ljust(width)}   {'status'.ljust(status_width)}   why", "bold")
        for step_id, status, why in rows:
            style = SUMMARY_STYLE.get(status, "red")
            table.append(f"\n  {step_id.ljust(width)}   ")
            table.append(status.ljust(status_width), style=style)
            table.append(f"   {why}".rstrip())
        self.out.print(table)

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
            f"\r\x1b[2m  … {self._position} {self._current} running for {elapsed_text(elapsed)}"
            " (Ctrl-C stops it)\x1b[0m\x1b[K"
        )
        sys.stdout.flush()
        self._progress_shown = True

    # -- prompts --------------------------------------------------------------------------------

    def _header(self, step: Step, position: int, total: int, handler: str | None = None) -> Text:
        where = f"rollback {position}/{total}" if handler else f"{position}/{total}"
        self._position = f"[{where}]"
        path = _section_path(
            step.section, self.sections, self.plan.runbook.title if self.plan else ""
        )
        line = Text.assemble(
            ("\n" + self._position + " ", "bold"),
            (path + " > ", "cyan"),
            (step.id, "bold"),
        )
        flags = step_flags(step)
        append_flags(line, flags)
        return line

    def announce(
        self, step: Step, command: str, position: int, total: int, handler: str | None
    ) -> None:
        """Before a step: its place, the prose before it, and what it runs or asks. Texts are
        joined into one print where they can be: each print costs a tenth of a millisecond."""
        shown = self._header(step, position, total, handler)
        if step.prose and not self.quiet:
            prose = _markdown(step.prose)
            if isinstance(prose, Text):
                if prose:
                    shown.append("\n")
                    shown.append_text(prose)
                    shown.append("\n")
            else:
                self.out.print(shown)
                self.out.print(prose)
                shown = Text()
        if step.kind is StepKind.COMMAND:
            command_text = self._command(command)
            if isinstance(command_text, Text):
                shown.append("\n" if shown else "")
                shown.append_text(command_text)
                self.out.print(shown)
            else:
                if shown:
                    self.out.print(shown)
                self.out.print(command_text)
        elif shown:
            self.out.print(shown)
        if step.kind is StepKind.MANUAL:
            mark = "☑" if step.checked else "☐"
            body = _markdown(command)
            if isinstance(body, Text):
                self.out.print(Text.assemble((f"  {mark} ", "bold"), body))
            else:
                self.out.print(Text(f"  {mark} (a step for you to do)", style="bold"))
                self.out.print(body)
            for number, offer in enumerate(step.offers, 1):
                self.out.print(Text(f"  offers [{number}] {offer}", style="cyan"))
        else:
            if step.follow:
                self.out.print(
                    Text("  This step runs until stopped: Ctrl-C ends it and the run goes on.")
                )
            if step.guessed:
                self.out.print(
                    Text(
                        "  guessed: an unlabelled block that reads as commands; check it first",
                        style="yellow",
                    )
                )
        self._announced = command

    def announce_rollback(self, target: str, steps: int) -> None:
        self._finish_output()
        self.out.print(
            Text(f"\n⟲ Rolling back: running {target} ({plural(steps, 'step')})", style="bold")
        )

    def ask_branch(self, step: Step, labels: list[str]) -> str | None:
        """Which option of a choice the run takes: one key; the others are skipped."""
        assert step.branch is not None
        self.out.print(Text("\nThe runbook offers a choice here; the run takes one option:"))
        keys = {}
        for number, label in enumerate(labels[:9], 1):
            keys[str(number)] = label
            self.out.print(Text(f"  [{number}] {label}"))
        self.out.print(Text("  [n] none of them"))
        while True:
            key = self._key(f"Which option? [1-{len(keys)}] / [n]one ")
            if key in keys:
                return keys[key]
            if key == "n":
                return None

    def _command(self, command: str) -> RenderableType:
        """The command, coloured on a terminal (plain into a pipe: no pygments to load)."""
        if self.out.is_terminal:
            return _highlighted(command)
        return Text(command.rstrip("\n"))

    def ask_step(self, step: Step, command: str, position: int, total: int) -> Choice:
        if command != self._announced:
            self.out.print(self._command(command))
            self._announced = command
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
        offer = " / [r]un the command" if step.offers else ""
        while True:
            key = self._key(f"Done? [D]one{offer} / [s]kip / [a]bort ")
            if key == "r" and step.offers:
                command = self._pick_offer(step.offers)
                if command is not None:
                    return Choice.RUN, command
                continue
            if key in MANUAL_KEYS:
                choice = Choice(MANUAL_KEYS[key])
                note = self._line("Note (why skipped, optional): ") if choice is Choice.SKIP else ""
                return choice, note
            self.out.print(
                Text(
                    "d/Enter done   s skip (with a note)   a abort"
                    + ("   r run a command the step offers" if step.offers else ""),
                    style="dim",
                )
            )

    def _pick_offer(self, offers: tuple[str, ...]) -> str | None:
        if len(offers) == 1:
            return offers[0]
        keys = {str(n): offer for n, offer in enumerate(offers[:9], 1)}
        key = self._key(f"Which command? [1-{len(keys)}] ")
        return keys.get(key)

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
            shown = FAILURE_HELP if handler else FAILURE_HELP.rsplit("\n", 1)[0]  # no [b]
            self.out.print(Text(shown, style="dim"))

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
    if value and param.type != "str" and typed_value(value, param.type) is None:
        return f"{param.name} must be a {TYPE_NAMES[param.type]}"
    if param.choices and value not in param.choices:
        return f"choose one of: {', '.join(param.choices)}"
    if param.pattern and not matches(param.pattern, value):
        return f"must match {param.pattern}"
    return None


def _outcome_text(event: StepFinished) -> str:
    result = event.result
    if result is None:
        return event.reason or "did not run to its end"
    if result.timed_out:
        return "timed out, its processes were stopped"
    if result.interrupted:
        return "interrupted (Ctrl-C)"
    if result.signal:
        return f"killed by signal {result.signal}"
    return f"exit status {result.exit_code}"


def _where_it_runs(
    step: Step, plan: Plan, forks: int | None, inventory: tuple[Target, ...] = ()
) -> str:
    """`runs on web: web1, web2, web3 (2 at a time)`, for the dry run; empty: runs here."""
    if step.target is None or step.kind is not StepKind.COMMAND:
        return ""
    if step.target_section is not None:
        title = next((s.title for s in plan.runbook.sections if s.slug == step.target_section), "")
        where = _where_it_runs_core(step, plan, forks, inventory)
        return f"{where}; set by its section '{title}'"
    return _where_it_runs_core(step, plan, forks, inventory)


def _where_it_runs_core(
    step: Step, plan: Plan, forks: int | None, inventory: tuple[Target, ...]
) -> str:
    assert step.target is not None
    if is_template(step.target):
        return f"runs on {step.target} (known at run time)"
    own = {t.name for t in plan.runbook.targets}
    targets = plan.runbook.targets + tuple(t for t in inventory if t.name not in own)
    hosts = resolve(step.target, targets)
    names = ", ".join(h.name for h in hosts)
    if not is_group(step.target, targets):
        host = hosts[0]
        how = f"ssh {host.ssh}" if host.ssh else f"exec: {host.exec}"
        return f"runs on {step.target} ({how})"
    if step.serial is not None:
        pace = f"{step.serial} at a time, in order"
    else:
        pace = f"up to {step.forks or forks or DEFAULT_FORKS} at a time"
    policy = {"continue": "a failure does not stop the others", "ask": "ask on a failure"}.get(
        step.on_failure, "a failure stops the hosts not yet started"
    )
    return f"runs on {step.target}: {names} ({pace}; {policy})"


def print_dry_run(
    terminal: Terminal,
    plan: Plan,
    commands: list[tuple[Step, str]],
    flow: int | None = None,
    forks: int | None = None,
    inventory: tuple[Target, ...] = (),
) -> None:
    """The selected steps with final commands, numbered as the run would number them, then
    the failure handlers' (rollback) steps apart; nothing runs."""
    flow = len(commands) if flow is None else flow
    handler_of = {i: target for target, ids in plan.handlers for i in ids}
    out = terminal.out
    sections = {s.slug: s for s in plan.runbook.sections}
    out.print(
        Text(
            f"Dry run of {plan.runbook.title} ({plan.runbook.path}): nothing is executed",
            style="bold",
        )
    )
    shown_handler = None
    for number, (step, command) in enumerate(commands, 1):
        place = f"{number}/{flow}"
        if number > flow:
            target = handler_of.get(step.id, "")
            if target != shown_handler:
                shown_handler = target
                steps = sum(1 for s, _ in commands[flow:] if handler_of.get(s.id) == target)
                out.print(
                    Text(
                        f"\nOn failure: {target} ({plural(steps, 'step')})", style="bold underline"
                    )
                )
            place = f"rollback {plan.handler(target).index(step.id) + 1}/{steps}"
        line = Text.assemble(
            (f"\n[{place}] ", "bold"),
            (_section_path(step.section, sections, plan.runbook.title) + " > ", "cyan"),
            (step.id, "bold"),
        )
        flags = step_flags(step)
        append_flags(line, flags)
        out.print(line)
        where = _where_it_runs(step, plan, forks, inventory)
        if where:
            out.print(Text("  " + where, style="magenta"))
        if step.kind is StepKind.MANUAL:
            out.print(Text.assemble(("  ☐ ", "bold"), command))
        else:
            out.print(_highlighted(command))


# A content tab's label line, and headings: the step's header already names its section.
_NOT_SHOWN = re.compile(r'^\s*===\+? +".*"\s*$\n?|^ {0,3}#{1,6}(?:\s.*)?$\n?', re.MULTILINE)
# Block markup the quick renderer leaves to rich: quotes, tables, fences, admonitions, HTML,
# rules and setext headings.
_BLOCKS = re.compile(r"^ {0,3}(?:>|\||```|~~~|!!!|\?\?\?|<|[=-]{3,}\s*$)", re.MULTILINE)
_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+(.*)$")
_INLINE = re.compile(
    r"\*\*(?P<strong>.+?)\*\*|__(?P<strong2>.+?)__|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?!\w)"
    r"|(?<!\w)_(?P<em2>[^_\s][^_]*?)_(?!\w)|`(?P<code>[^`]+)`"
    r"|!?\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)(?:\s+\"[^\"]*\")?\)"
)


_INDENTED_FENCE = re.compile(r"^( {4,})(`{3,}|~{3,}).*?^\1\2[`~]*[ \t]*$", re.MULTILINE | re.DOTALL)


def _unindented_fences(text: str) -> str:
    """Each fence indented four spaces or more, with its body, moved to the left margin."""
    if "    " not in text:
        return text

    def moved(match: re.Match[str]) -> str:
        return textwrap.dedent(match.group(0))

    return _INDENTED_FENCE.sub(moved, text)


def _markdown(text: str) -> RenderableType:
    """Markdown as the terminal shows it: emphasis, lists, links as their text and target.
    Paragraphs and lists are rendered here (tens of microseconds); block markup that needs
    more (tables, quotes, code blocks) goes to rich's Markdown, which takes milliseconds."""
    # Prose cut from a list keeps the item's indent: a fence indented four spaces there
    # would read as an indented code block on its own, so fences lose their indent.
    text = _unindented_fences(textwrap.dedent(_NOT_SHOWN.sub("", text).strip("\n"))).strip()
    if _BLOCKS.search(text):
        from rich.markdown import Markdown

        return Markdown(text, hyperlinks=False)
    shown = Text()
    paragraph: list[str] = []
    indent = ""

    def flush() -> None:
        if paragraph:
            if shown:
                shown.append("\n")
            shown.append(indent)
            _inline(" ".join(paragraph), shown)
            paragraph.clear()

    for line in text.splitlines():
        item = _ITEM.match(line)
        if item:
            flush()
            depth, marker, rest = item.groups()
            bullet = "•" if marker in "-*+" else marker
            indent = " " * (len(depth) + 1)
            paragraph.append(f"{bullet} {rest}")
        elif not line.strip():
            flush()
            indent = ""
            if shown and not shown.plain.endswith("\n\n"):
                shown.append("\n")
        else:
            paragraph.append(line.strip())
    flush()
    return shown


def _inline(text: str, into: Text) -> None:
    """Inline markup as styles: **strong**, *emphasis*, `code`, [text](target)."""
    at = 0
    for match in _INLINE.finditer(text):
        into.append(text[at : match.start()])
        kind = match.lastgroup
        if kind in ("strong", "strong2"):
            into.append(match.group(kind), style="bold")
        elif kind in ("em", "em2"):
            into.append(match.group(kind), style="italic")
        elif kind == "code":
            into.append(match.group("code"), style="cyan")
        else:
            label, url = match.group("text"), match.group("url")
            into.append(label or url, style="underline")
            if label and label != url:
                into.append(f" ({url})")
        at = match.end()
    into.append(text[at:])


def _highlighted(command: str) -> Syntax:
    """The command as shell code, coloured (pygments is loaded on the first prompt only)."""
    from rich.syntax import Syntax

    return Syntax(command.rstrip("\n"), "bash", theme="ansi_dark", background_color="default")
