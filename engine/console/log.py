"""Past runs on the terminal: `runbook log list/show/search/verify`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.console.terminal import Terminal
from engine.console.text import PlainConsole, Text
from engine.duration import elapsed_text, when
from engine.record import RunDetail, RunSummary

if TYPE_CHECKING:  # into a pipe the log commands print without loading rich
    from rich.console import Console

    from engine.journal.chain import Head
    from engine.journal.copy import CopyReport
    from engine.journal.query import SearchHit
    from engine.journal.verify import JournalVerification, Verification

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "aborted": "yellow",
    "interrupted": "yellow",
    "running": "cyan",
    "done": "green",
    "skipped": "dim",
    "timed-out": "bold red",
}


def runs_table(terminal: Terminal, runs: list[RunSummary], more: bool = False) -> None:
    """The runs, one aligned line each; `more`: older runs match too (said on stderr)."""
    if not runs:
        terminal.err.print(Text("No runs match.", style="dim"))
        return
    # Plain aligned lines rather than a rich Table: hundreds of runs print at once.
    rows = [
        (
            run.id,
            when(run.started),
            run.path,
            run.operator,
            run.status + (f", {run.note}" if run.note else ""),
            elapsed_text(run.duration),
        )
        for run in runs
    ]
    header = ("run", "started", "runbook", "operator", "status", "duration")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    terminal.out.print(
        Text("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), style="bold")
    )
    for row in rows:
        line = Text(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=False)) + "  "
        )
        style = STATUS_STYLE.get(row[4].split(",")[0], "")
        line.append(row[4].ljust(widths[4]), style=style)
        line.append("  " + row[5])
        terminal.out.print(line)
    if more:
        terminal.err.print(
            Text(f"(the {len(runs)} newest shown; older runs match: --limit N or --all)", "dim")
        )


def run_detail(terminal: Terminal, detail: RunDetail, step_id: str | None) -> None:
    out = terminal.out
    run = detail.summary
    if step_id is None:
        out.print(Text.assemble(("Run ", "bold"), (run.id, "bold"), f"  {run.title}"))
        facts = [
            ("runbook", run.path),
            ("status", run.status + (f": {detail.message}" if detail.message else "")),
            ("operator", run.who),
            ("started", when(run.started)),
            ("ended", when(run.ended)),
            ("duration", elapsed_text(run.duration)),
            ("version", run.version),
        ]
        facts += [(f"param {k}", str(v)) for k, v in run.params.items()]
        for name, value in facts:
            out.print(Text.assemble((f"  {name:<10} ", "dim"), value))
    for step in detail.steps:
        if step_id is not None and step.id != step_id:
            continue
        out.print()
        out.print(
            Text.assemble(
                ("● ", STATUS_STYLE.get(step.status or "", "yellow")),
                (step.id, "bold"),
                "  ",
                (
                    step.status or "started, no result",
                    STATUS_STYLE.get(step.status or "", "yellow"),
                ),
                f"  ({step.reason})" if step.reason else "",
            )
        )
        if step.text:
            out.print(Text(f"  ☐ {step.text}"))
        for answer in step.answers:
            note = f" ({answer.note})" if answer.note else ""
            out.print(
                Text(
                    f"  {when(answer.time)}  {answer.question}: {answer.answer}{note}",
                    style="cyan",
                )
            )
        for attempt in step.attempts:
            if not attempt.command:
                continue
            result = (
                f"exit {attempt.exit_code}"
                if attempt.exit_code is not None
                else f"{attempt.status}" + (f" ({attempt.reason})" if attempt.reason else "")
                if attempt.status
                else "no result (the engine stopped)"
            )
            on = f" on {attempt.host}" if attempt.host else ""
            out.print(
                Text(
                    f"  attempt {attempt.number}{on}{' (edited)' if attempt.edited else ''}"
                    f" at {when(attempt.started)}: {result}, {elapsed_text(attempt.duration)}",
                    style="dim",
                )
            )
            for line, starts in _command_lines(attempt.command):
                out.print(Text(f"    {'$ ' if starts else '  '}{line}", style="bold"))
            _write_indented(out, attempt.output, plain=not out.is_terminal)


def _write_indented(out: Console | PlainConsole, output: str, plain: bool) -> None:
    """A step's recorded output, indented, written as it is: a megabyte of lines per write,
    not a rich print per line (40 MB of output took 74 s that way) nor one copy of it all
    (memory stays near the output's own size); its colours kept on a terminal, and as text
    (`plain`: no escape sequences, what a carriage return overwrote left out) elsewhere."""
    text = output.rstrip("\n")
    if not text.strip("\n"):
        return
    if not isinstance(out, PlainConsole) and out.record:  # one that keeps what it printed
        shown = _plain(text) if plain else text
        out.print(Text("    " + shown.replace("\n", "\n    ")))
        return
    start = 0
    while start < len(text):
        end = text.find("\n", start + _PIECE)
        end = len(text) if end < 0 else end  # pieces end at a line's end
        piece = _plain(text[start:end]) if plain else text[start:end]
        out.file.write("    " + piece.replace("\n", "\n    ") + "\n")
        start = end + 1
    out.file.flush()


_PIECE = 1 << 20


def search_hits(terminal: Terminal, hits: list[SearchHit]) -> None:
    if not hits:
        terminal.err.print(Text("No matches.", style="dim"))
        return
    for hit in hits:
        terminal.out.print(
            Text.assemble(
                (hit.run.id, "bold"),
                f"  {when(hit.run.started)}  {hit.run.path}  ",
                (hit.step or "-", "cyan"),
                f" [{hit.field}]  ",
                hit.line,
            )
        )


def verifications(terminal: Terminal, results: list[Verification]) -> None:
    bad = [r for r in results if not r.ok]
    listed = results if len(results) <= 100 else bad  # a large journal lists its failures only
    for result in listed:
        if result.ok:
            note = f"  ({result.note})" if result.note else ""
            terminal.out.print(
                Text(
                    f"ok    {result.run_id}  {result.events} events  head {result.head[:16]}{note}"
                )
            )
        else:
            terminal.out.print(Text(f"FAIL  {result.run_id}  {result.problem}", style="bold red"))
    events = sum(r.events for r in results)
    summary = f"{len(results)} run(s), {events} events checked: "
    summary += f"{len(bad)} failed" if bad else "the chains are intact"
    if len(listed) < len(results):
        summary += f" ({len(results) - len(listed)} intact runs not listed)"
    terminal.err.print(Text(summary, style="bold red" if bad else "green"))


def journal_verification(terminal: Terminal, checked: JournalVerification) -> None:
    """Every run, then the chain over runs: its breaks, or the head it ends at."""
    verifications(terminal, checked.runs)
    for problem in checked.problems:
        terminal.out.print(Text(f"FAIL  journal  {problem}", style="bold red"))
    older = sum(1 for r in checked.runs if r.note.startswith("older"))
    parts = [f"chain over runs: {checked.head.describe()}"]
    if checked.unsealed:
        parts.append(f"{checked.unsealed} run(s) not sealed yet (running or interrupted)")
    if older:
        parts.append(f"{older} run(s) of the older chain format, not sealed")
    line = "; ".join(parts)
    if checked.problems:
        terminal.err.print(Text(f"{line}: {len(checked.problems)} break(s)", style="bold red"))
    else:
        terminal.err.print(Text(line, style="green"))


def head(terminal: Terminal, current: Head, runs: int, as_json: bool) -> None:
    if as_json:
        terminal.json({"runs": runs, "seals": current.seals, "head": current.hash})
        return
    terminal.out.print(f"{runs} run(s), {current.seals} seal(s), head {current.hash}")


def copy_report(terminal: Terminal, report: CopyReport) -> None:
    terminal.out.print(
        f"{report.source} -> {report.target}: {report.copied} run(s) copied,"
        f" {report.extended} extended, {report.present} already there;"
        f" {report.events} event(s) written"
    )
    for side, checked in (("source", report.source_check), ("target", report.target_check)):
        bad = [r for r in checked.runs if not r.ok]
        if checked.ok:
            terminal.err.print(
                Text(f"{side} verified: {len(checked.runs)} run(s), {checked.head.describe()}")
            )
            continue
        for result in bad:
            terminal.out.print(Text(f"FAIL  {side}  {result.run_id}  {result.problem}", "bold red"))
        for problem in checked.problems:
            terminal.out.print(Text(f"FAIL  {side}  journal  {problem}", style="bold red"))


def migrated(terminal: Terminal, where: str, before: int, after: int) -> None:
    if before == after:
        terminal.out.print(f"{where}: schema version {after}, up to date")
    else:
        terminal.out.print(f"{where}: schema version {before or 'none'} -> {after}")


_ESCAPES = re.compile(
    r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>]"
)


def _plain(text: str) -> str:
    """Output as text for a pipe or a file: terminal escape sequences and carriage returns out."""
    text = _ESCAPES.sub("", text)
    if "\r" not in text:
        return text
    # What a terminal would leave of each line: the text after its last carriage return.
    # Whole-text substitutions, not a list of every line (a step's output can be gigabytes).
    return _CR_END.sub("", _CR_OVERWRITTEN.sub("", text))


_CR_OVERWRITTEN = re.compile(r"[^\n]*\r(?=[^\r\n])")
_CR_END = re.compile(r"\r+(?=\n|$)")


_HEREDOC = re.compile(r"(?<![<\w])<<(-?)\s*(['\"]?)([\w.-]+)\2")


def _command_lines(command: str) -> list[tuple[str, bool]]:
    """Each line of a command, and whether it starts a command (shown after `$ `): not the
    body of a here-document, nor the line after a trailing backslash."""
    lines: list[tuple[str, bool]] = []
    pending: list[tuple[str, bool]] = []  # here-documents opened on the line: (end, strip tabs)
    continued = False
    for line in command.rstrip("\n").splitlines():
        if pending:
            end, tabs = pending[0]
            lines.append((line, False))
            if (line.lstrip("\t") if tabs else line) == end:
                pending.pop(0)
            continue
        lines.append((line, not continued))
        continued = line.endswith("\\")
        pending = [(m.group(3), m.group(1) == "-") for m in _HEREDOC.finditer(line)]
    return lines
