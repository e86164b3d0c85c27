"""The terminal: every line the CLI prints goes through here (rich), nothing else prints.

Colours only when the output is a terminal; text written to a pipe or a file stays plain
(written without loading rich: `text.py`), and rich's markup is never applied to runbook
text (a `[code]` in a message stays as it is).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from engine.console.text import PlainConsole, Text, prints_plainly
from engine.diagnostics import Diagnostic
from engine.duration import format_duration
from engine.labels import step_flags
from engine.model import Param, Section, Step, StepKind, Target
from engine.targets import is_group, resolve

if TYPE_CHECKING:  # kept out of start-up: `runbook log` needs none of them
    from rich.console import Console
    from rich.table import Table

    from engine.check import CheckResult, FixReport
    from engine.plan import Plan


def _ranges(numbers: Iterable[int]) -> str:
    from engine.source import format_line_ranges

    return format_line_ranges(list(numbers))


def _width(stream: object) -> int | None:
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else 160


def _console(stderr: bool) -> Console | PlainConsole:
    """rich's Console on a terminal; into a pipe or a file, plain writes (rich not loaded),
    not cut to 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    if prints_plainly(stream):
        return PlainConsole(stderr=stderr, width=160)
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=_width(stream))


class EditorFailed(Exception):
    """The editor could not be started, or failed: a one-line message."""


class Keyboard(Protocol):
    """The operator's keys and editor; the CLI supplies them, a test can script them."""

    def read_key(self) -> str:
        """One key press, without waiting for Enter."""
        ...

    def edit(self, text: str, extension: str) -> str | None:
        """`text` edited in the operator's editor; None when it was not saved."""
        ...


class NoKeyboard:
    """For commands that never ask: a key or an edit asked for is a bug."""

    def read_key(self) -> str:
        raise RuntimeError("this command reads no keys")

    def edit(self, text: str, extension: str) -> str | None:
        raise RuntimeError("this command edits nothing")


class Terminal:
    """Output for one CLI invocation: stdout for results, stderr for errors; the keyboard."""

    def __init__(
        self,
        out: Console | PlainConsole | None = None,
        err: Console | PlainConsole | None = None,
        keyboard: Keyboard | None = None,
    ) -> None:
        self.out = out or _console(stderr=False)
        self.err = err or _console(stderr=True)
        self.keyboard: Keyboard = keyboard or NoKeyboard()

    # -- messages ---------------------------------------------------------------------------

    def error(self, message: str) -> None:
        self.err.print(Text.assemble(("runbook: error: ", "bold red"), message))

    def warning(self, message: str) -> None:
        self.err.print(Text.assemble(("runbook: warning: ", "bold yellow"), message))

    def run_footer(self, run_id: str) -> None:
        self.out.print(Text(f"Recorded as run {run_id}: runbook log show {run_id}", style="dim"))

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
            style = (
                "bold red" if item.is_error else "yellow" if item.severity == "warning" else "cyan"
            )
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
        notes = sum(r.notes for r in results)
        files = len(results)
        style = "bold red" if errors else ("yellow" if warnings else "green")
        self.err.print(
            Text(
                f"{files} file{'s' * (files != 1)} checked: "
                f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
                + (f", {notes} note{'s' * (notes != 1)}" if notes else ""),
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
                        "notes": r.notes,
                        "diagnostics": [d.as_dict() for d in r.diagnostics],
                    }
                    for r in results
                ],
                "errors": sum(r.errors for r in results),
                "warnings": sum(r.warnings for r in results),
                "notes": sum(r.notes for r in results),
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
                lines = _ranges(report.repaired)
                done.append(f"repaired {len(report.repaired)} line(s): {lines}")
            self.err.print(Text(f"{report.path}: " + "; ".join(done), style="green"))
        if report.unrestored:
            self.err.print(
                Text(
                    f"{report.path}: could not fully restore line(s) "
                    f"{_ranges(report.unrestored)}; edit them by hand",
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
                shown = step.command.strip()  # what runs: a session's prompts left out
                summary = shown.splitlines()[0] if shown else ""
                if summary:
                    more = " …" if len(shown.splitlines()) > 1 else ""
                    self.out.print(Text(f"         {summary[:100]}{more}", style="dim"))
                for line in _inference_lines(step):
                    self.out.print(Text(f"         {line}", style="cyan"))

    def _graph(self, plan: Plan) -> None:
        from engine.plan import EdgeKind

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
                "steps": [
                    _step_dict(by_id[i], role) | _target_dict(by_id[i], runbook.targets)
                    for i, role in roles
                ],
                "edges": [
                    {"from": e.source, "to": e.target, "kind": str(e.kind)} for e in plan.edges
                ],
                "errors": sum(d.is_error for d in plan.diagnostics),
            }
        )

    def json(self, value: object) -> None:
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _section_path(slug: str | None, sections: Mapping[str, Section], title: str = "") -> str:
    """Where a step stands: its headings, else the runbook's title (a page titled in its
    front matter often has no heading), else a plain "before the first heading"."""
    names = []
    while slug is not None and slug in sections:
        names.append(sections[slug].title)
        slug = sections[slug].parent
    return " > ".join(reversed(names)) or title or "(before the first heading)"


def _inference_lines(step: Step) -> list[str]:
    """What the engine concluded about a step and why, for `show`."""
    lines = [f"inferred {i.key}: {i.value} (line {i.line}): {i.reason}" for i in step.inferred]
    if step.guessed and not step.inference("guessed"):
        lines.append("guessed: an unlabelled block that reads as commands")
    if step.branch is not None:
        lines.append(
            f"option {step.branch.label!r} of a choice (line {step.branch.line}):"
            " the run asks which option to take"
        )
    lines += [f"offers: {offer}" for offer in step.offers]
    return lines


def append_flags(line: Text, flags: list[str]) -> None:
    """A step's flags after its header: danger in red, the rest in yellow."""
    for number, flag in enumerate(flags):
        line.append(" " if number else "  ")
        line.append(flag, style="bold red" if flag == "danger" else "yellow")


def _step_line(number: int, step: Step) -> Text:
    kind = "manual " if step.kind is StepKind.MANUAL else "command"
    line = Text.assemble(
        (f"  {number:>4}. ", "bold"),
        (f"[{kind}] ", "magenta"),
        (step.id, "bold"),
        f"  line {step.line}",
    )
    flags = step_flags(step)
    append_flags(line, flags)
    return line


def _params_table(params: tuple[Param, ...]) -> Table:
    from rich.table import Table  # only `show` prints a table
    from rich.text import Text

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
        if param.implicit:
            notes.append(f"from the text, line {param.line}")
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
        "type": param.type,
        "implicit": param.implicit,
    }


def _target_dict(step: Step, targets: tuple[Target, ...]) -> dict[str, object]:
    """Where a step runs: its target and, for a group, its hosts (a template: at run time)."""
    if step.target is None:
        return {"target": None}
    data: dict[str, object] = {"target": step.target}
    if step.target_section is not None:
        data["target_from_section"] = step.target_section  # the heading that said where
    if is_group(step.target, targets):
        data["hosts"] = [h.name for h in resolve(step.target, targets)]
    if step.forks is not None:
        data["forks"] = step.forks
    if step.serial is not None:
        data["serial"] = step.serial
    return data


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
        "command": step.command if step.kind is StepKind.COMMAND else None,
        "guessed": step.guessed,
        "follow": step.follow,
        "interactive": step.interactive,
        "confirm": str(step.confirm),
        "branch": None
        if step.branch is None
        else {"choice": step.branch.choice, "label": step.branch.label, "line": step.branch.line},
        "offers": list(step.offers),
        "inferred": [
            {"key": i.key, "value": i.value, "reason": i.reason, "line": i.line}
            for i in step.inferred
        ],
        **(
            {
                "expected": step.expected,
                "session": [
                    {"line": c.line, "command": c.command, "expected": c.expected}
                    for c in step.session
                ],
            }
            if step.session
            else {}
        ),
    }
