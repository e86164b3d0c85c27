"""The terminal: every line the CLI prints goes through here (rich), nothing else prints.

Colours only when the output is a terminal; text written to a pipe or a file stays plain, and
rich's markup is never applied to runbook text (a `[code]` in a message stays as it is).
"""

from __future__ import annotations

import getpass
import json
import re
import sys
import termios
import time
from collections.abc import Iterable

import click
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from engine.check import CheckResult, FixReport
from engine.diagnostics import Diagnostic
from engine.duration import format_duration
from engine.events import Event, EventKind
from engine.model import Confirm, Param, Step, StepKind
from engine.plan import EdgeKind, Plan
from engine.run import Choice
from engine.shell import Outcome
from engine.source import format_line_ranges


class Terminal:
    """Output for one CLI invocation: stdout for results, stderr for errors."""

    def __init__(self, out: Console | None = None, err: Console | None = None) -> None:
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True)

    # -- messages ---------------------------------------------------------------------------

    def error(self, message: str) -> None:
        self.err.print(Text.assemble(("runbook: error: ", "bold red"), message))

    def internal_error(self, summary: str, trace_path: str) -> None:
        self.err.print(
            Text.assemble(
                ("runbook: internal error: ", "bold red"),
                summary,
                f" (this is a bug; the trace is in {trace_path})",
            )
        )

    # -- check ------------------------------------------------------------------------------

    def diagnostics(self, items: Iterable[Diagnostic]) -> None:
        for item in items:
            style = "bold red" if item.is_error else "yellow"
            line = Text.assemble(
                (f"{item.location}: ", "bold"),
                (f"{item.severity}: ", style),
                item.message,
                (f" [{item.code}]", "dim"),
            )
            self.out.print(line)
            if item.hint:
                self.out.print(Text.assemble(("  hint: ", "cyan"), item.hint))

    def check_summary(self, results: list[CheckResult]) -> None:
        errors = sum(r.errors for r in results)
        warnings = sum(r.warnings for r in results)
        files = len(results)
        style = "bold red" if errors else ("yellow" if warnings else "green")
        self.err.print(
            Text(
                f"{files} file{'s' * (files != 1)} checked: "
                f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
                style=style,
            )
        )

    def check_json(self, results: list[CheckResult]) -> None:
        self.json(
            {
                "files": [
                    {
                        "path": r.plan.runbook.path,
                        "errors": r.errors,
                        "warnings": r.warnings,
                        "diagnostics": [d.as_dict() for d in r.diagnostics],
                    }
                    for r in results
                ],
                "errors": sum(r.errors for r in results),
                "warnings": sum(r.warnings for r in results),
            }
        )

    def fix_report(self, report: FixReport) -> None:
        if not report.changed:
            self.err.print(Text(f"{report.path}: nothing to repair"))
        else:
            done = []
            if report.converted_from_legacy:
                done.append("converted from cp1252/Latin-1 to UTF-8")
            if report.repaired:
                lines = format_line_ranges(list(report.repaired))
                done.append(f"repaired {len(report.repaired)} line(s): {lines}")
            self.err.print(Text(f"{report.path}: " + "; ".join(done), style="green"))
        if report.unrestored:
            self.err.print(
                Text(
                    f"{report.path}: could not fully restore line(s) "
                    f"{format_line_ranges(list(report.unrestored))}; edit them by hand",
                    style="yellow",
                )
            )

    # -- show -------------------------------------------------------------------------------

    def plan(self, plan: Plan) -> None:
        runbook = plan.runbook
        self.out.print(Text(runbook.title, style="bold"))
        facts = [("file", runbook.path)]
        if runbook.owner:
            facts.append(("owner", runbook.owner))
        if runbook.tags:
            facts.append(("tags", ", ".join(runbook.tags)))
        if runbook.timeout:
            facts.append(("timeout", format_duration(runbook.timeout)))
        for name, value in facts:
            self.out.print(Text.assemble((f"  {name}: ", "dim"), value))
        if runbook.description:
            self.out.print(Text(f"  {runbook.description}"))
        if runbook.params:
            self.out.print()
            self.out.print(_params_table(runbook.params))
        self._steps(plan)
        self._graph(plan)

    def _steps(self, plan: Plan) -> None:
        runbook = plan.runbook
        titles = {s.slug: s for s in runbook.sections}
        by_id = {s.id: s for s in runbook.steps}
        groups: list[tuple[str, list[Step]]] = [("Steps", plan.steps())]
        for target, ids in plan.handlers:
            groups.append((f"On failure: {target}", [by_id[i] for i in ids]))
        display = [s for s in runbook.steps if not s.run]
        if display:
            groups.append(("Display only (run: false)", display))
        number = 0
        for heading, steps in groups:
            self.out.print()
            self.out.print(Text(f"{heading} ({len(steps)})", style="bold underline"))
            current: str | None = "\0"
            for step in steps:
                if step.section != current:
                    current = step.section
                    self.out.print(
                        Text("  " + _section_path(step.section, titles), style="bold cyan")
                    )
                number += 1
                self.out.print(_step_line(number, step))
                summary = step.body.strip().splitlines()[0] if step.body.strip() else ""
                if summary:
                    more = " …" if len(step.body.strip().splitlines()) > 1 else ""
                    self.out.print(Text(f"         {summary[:100]}{more}", style="dim"))

    def _graph(self, plan: Plan) -> None:
        edges = [e for e in plan.edges]
        if not edges:
            return
        self.out.print()
        self.out.print(Text("Graph", style="bold underline"))
        for edge in edges:
            arrow = " -> " if edge.kind is EdgeKind.NEEDS else " -.-> "
            label = "needs" if edge.kind is EdgeKind.NEEDS else "on failure"
            self.out.print(Text(f"  {edge.source}{arrow}{edge.target}  ({label})"))

    def plan_json(self, plan: Plan) -> None:
        runbook = plan.runbook
        by_id = {s.id: s for s in runbook.steps}
        roles = [(i, "flow") for i in plan.order]
        roles += [(i, "handler") for _, ids in plan.handlers for i in ids]
        roles += [(s.id, "display") for s in runbook.steps if not s.run]
        self.json(
            {
                "title": runbook.title,
                "path": runbook.path,
                "owner": runbook.owner,
                "tags": list(runbook.tags),
                "params": [_param_dict(p) for p in runbook.params],
                "steps": [_step_dict(by_id[i], role) for i, role in roles],
                "edges": [
                    {"from": e.source, "to": e.target, "kind": str(e.kind)} for e in plan.edges
                ],
                "errors": sum(d.is_error for d in plan.diagnostics),
            }
        )

    def json(self, value: object) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _section_path(slug: str | None, sections: dict) -> str:  # type: ignore[type-arg]
    names = []
    while slug is not None and slug in sections:
        names.append(sections[slug].title)
        slug = sections[slug].parent
    return " > ".join(reversed(names)) or "(before the first heading)"


def _step_line(number: int, step: Step) -> Text:
    kind = "manual " if step.kind is StepKind.MANUAL else "command"
    line = Text.assemble(
        (f"  {number:>4}. ", "bold"),
        (f"[{kind}] ", "magenta"),
        (step.id, "bold"),
        f"  line {step.line}",
    )
    flags = step_flags(step)
    if flags:
        line.append("  " + " ".join(flags), style="yellow")
    return line


def step_flags(step: Step) -> list[str]:
    """Short labels for what is special about a step."""
    flags = []
    if step.confirm is Confirm.DANGER:
        flags.append("danger")
    elif step.confirm is Confirm.NO:
        flags.append("no-confirm")
    if not step.run:
        flags.append("display-only")
    if step.timeout:
        flags.append(f"timeout={format_duration(step.timeout)}")
    if step.retries:
        flags.append(f"retries={step.retries}")
    if step.needs:
        flags.append("needs=" + ",".join(step.needs))
    if step.when:
        flags.append(f"when={step.when}")
    if step.on_failure != "abort":
        flags.append(f"on_failure={step.on_failure}")
    if step.interactive:
        flags.append("interactive")
    if step.expect:
        flags.append(f"expect={len(step.expect)}")
    if step.capture:
        flags.append(f"capture={step.capture}")
    if step.interpreter:
        flags.append(f"interpreter={step.interpreter}")
    if step.cwd:
        flags.append(f"cwd={step.cwd}")
    if step.checked:
        flags.append("checked")
    return flags


def _params_table(params: tuple[Param, ...]) -> Table:
    table = Table(title="Parameters", title_justify="left", title_style="bold", box=None)
    for column in ("name", "default", "choices", "description", ""):
        table.add_column(column, style="dim" if column == "" else None)
    for param in params:
        notes = []
        if param.secret:
            notes.append("secret")
        if param.required and param.default is None:
            notes.append("required")
        if param.pattern:
            notes.append(f"pattern {param.pattern}")
        table.add_row(
            Text(param.name),
            Text(_shown_default(param)),
            Text(", ".join(param.choices)),
            Text(param.description),
            Text(", ".join(notes)),
        )
    return table


def _shown_default(param: Param) -> str:
    if param.default is None:
        return ""
    return "<secret>" if param.secret else param.default


def _param_dict(param: Param) -> dict[str, object]:
    return {
        "name": param.name,
        "description": param.description,
        "default": None if param.default is None else _shown_default(param),
        "choices": list(param.choices),
        "pattern": param.pattern,
        "secret": param.secret,
        "required": param.required,
        "line": param.line,
    }


def _step_dict(step: Step, role: str) -> dict[str, object]:
    return {
        "id": step.id,
        "kind": str(step.kind),
        "section": step.section,
        "line": step.line,
        "needs": list(step.needs),
        "run": step.run,
        "role": role,
        "flags": step_flags(step),
    }


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
        self._tail: list[str] = []
        self._step_started = 0.0
        self._position = ""
        self._current = ""

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.OUTPUT:
            text = str(event.get("text", ""))
            self._clear_progress()
            sys.stdout.write(text)
            sys.stdout.flush()
            self._at_line_start = text.endswith("\n")
            self._tail = (self._tail + text.splitlines())[-20:]
        elif kind is EventKind.RUN_STARTED:
            steps = event.get("steps") or []
            self.out.print(
                Text.assemble(
                    ("▶ ", "bold green"),
                    (str(event.get("title")), "bold"),
                    f"  ({len(steps)} steps, {event.get('path')})",  # type: ignore[arg-type]
                )
            )
        elif kind is EventKind.STEP_STARTED:
            self._tail = []
            self._step_started = time.monotonic()
            self._current = event.step or ""
            if event.get("kind") == "command" and event.attempt > 1:
                self.out.print(Text(f"  ↻ attempt {event.attempt}", style="yellow"))
        elif kind is EventKind.STEP_FINISHED:
            self._finish_output()
            self._step_finished(event)
        elif kind is EventKind.ANSWER and event.get("question") == "expect":
            self._finish_output()
            self.out.print(
                Text(
                    f"  ↳ answered /{event.get('pattern')!s}/ with {event.get('answer')}",
                    style="dim",
                )
            )
            self._at_line_start = True
        elif kind is EventKind.RUN_FINISHED:
            self._finish_output()
            self._run_finished(event)

    def _finish_output(self) -> None:
        self._clear_progress()
        if not self._at_line_start:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._at_line_start = True

    def _step_finished(self, event: Event) -> None:
        status = str(event.get("status"))
        step = event.step or ""
        duration = event.get("duration")
        took = f" in {_seconds(duration)}" if isinstance(duration, int | float) else ""
        if status in ("succeeded", "done"):
            self.out.print(Text(f"  ✓ {step} {status}{took}", style="green"))
        elif status == "skipped":
            reason = event.get("reason") or event.get("note") or ""
            self.out.print(
                Text(f"  ↷ {step} skipped" + (f" ({reason})" if reason else ""), style="dim")
            )
        else:
            detail = _outcome_text(event)
            self.out.print(Text(f"  ✗ {step} {status}: {detail}{took}", style="bold red"))

    def _run_finished(self, event: Event) -> None:
        status = str(event.get("status"))
        message = str(event.get("message") or "")
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
            f"\r\x1b[2m  … {self._position} {self._current} running for {_seconds(elapsed)}"
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
        self.out.print(
            Syntax(command.rstrip("\n"), "bash", theme="ansi_dark", background_color="default")
        )
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
            edited = click.edit(command, extension=".sh", require_save=True)
        except click.UsageError as exc:
            self.terminal.error(str(exc))
            return None
        if edited is None:
            self.out.print(Text("Not saved: the command is unchanged.", style="yellow"))
        return edited

    def step_io(self, step: Step, interactive: bool) -> StepTerminal:
        return StepTerminal(self, interactive and self.interactive)

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
        key = click.getchar()
        self.out.print(Text(key if key.isprintable() else ""))
        return key.lower()

    def _line(self, prompt: str, secret: bool = False) -> str:
        self.out.print(Text(prompt, style="bold"), end="")
        return getpass.getpass("") if secret else input()


class StepTerminal:
    """The operator's terminal while a step runs; raw input only for interactive steps."""

    def __init__(self, console: RunConsole, interactive: bool) -> None:
        self.console = console
        self.interactive = interactive and sys.stdin.isatty()
        self._saved: list | None = None  # type: ignore[type-arg]

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


def _seconds(value: object) -> str:
    seconds = float(value)  # type: ignore[arg-type]
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(round(seconds))


def _outcome_text(event: Event) -> str:
    if event.get("timed_out"):
        return "timed out, its processes were stopped"
    if event.get("interrupted"):
        return "interrupted (Ctrl-C)"
    signum = event.get("signal")
    if signum:
        return f"killed by signal {signum}"
    return f"exit status {event.get('exit_code')}"


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
            out.print(
                Syntax(command.rstrip("\n"), "bash", theme="ansi_dark", background_color="default")
            )
