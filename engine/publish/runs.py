"""Run history pages: an index of runs and a page per run, from the journal.

Pure: run records in, Markdown out: its headings are Markdown, the rest is escaped HTML kept
in a `Stash`. Outputs keep their ANSI colours as HTML spans (ansi2html, which escapes the
text), so `<script>` in an output is shown as text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ansi2html import Ansi2HTMLConverter

from engine.publish.page import cell, esc
from engine.publish.stash import Stash
from engine.record import RunDetail, RunSummary, StepRecord, duration_text, when

_ANSI = Ansi2HTMLConverter(inline=False, escaped=True, dark_bg=True)
STATUS_COLOUR = {
    "succeeded": "#2e7d32",
    "done": "#2e7d32",
    "failed": "#c62828",
    "timed-out": "#c62828",
    "interrupted": "#ef6c00",
    "aborted": "#ef6c00",
    "skipped": "#9e9e9e",
}


def ansi_html(text: str) -> str:
    return _ANSI.convert(text, full=False)


def runs_index(runs: Sequence[RunSummary], detailed: set[str], stash: Stash) -> str:
    """Newest first, with filters by runbook and status (a small script on the page)."""
    paths = sorted({r.path for r in runs})
    statuses = sorted({r.status for r in runs})
    lines = [
        f"<p>{len(runs)} run(s) recorded in the journal, newest first.</p>",
        '<div class="rb-filters">',
        '<label>Runbook <select data-rb-filter="runbook"><option value="">all</option>'
        + "".join(f'<option value="{esc(p)}">{esc(p)}</option>' for p in paths)
        + "</select></label>",
        '<label>Status <select data-rb-filter="status"><option value="">all</option>'
        + "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in statuses)
        + "</select></label>",
        "</div>",
        "",
        '<div class="rb-runs" markdown="0">',
        "<table>",
        "<thead><tr><th>When</th><th>Runbook</th><th>Operator</th><th>Status</th>"
        "<th>Duration</th></tr></thead>",
        "<tbody>",
    ]
    for run in runs:
        started = esc(when(run.started))
        link = f'<a href="{esc(run.id)}/">{started}</a>' if run.id in detailed else started
        lines.append(
            f'<tr data-runbook="{esc(run.path)}" data-status="{esc(run.status)}">'
            f"<td>{link}</td><td>{esc(run.path)}</td><td>{esc(run.operator)}</td>"
            f'<td><span class="rb-status rb-status-{esc(run.status)}">{esc(run.status)}</span></td>'
            f"<td>{esc(duration_text(run.duration))}</td></tr>"
        )
    lines += ["</tbody>", "</table>", "</div>"]
    return "---\ntitle: Runs\n---\n\n# Runs\n" + stash.block("\n".join(lines))


@dataclass(frozen=True, slots=True)
class RunLinks:
    """URLs relative to a run's page: its runbook's page (None if it has none), the index."""

    runbook: str | None
    index: str

    def step(self, step_id: str) -> str | None:
        return f"{self.runbook}#step-{step_id}" if self.runbook else None


def run_page(detail: RunDetail, links: RunLinks, stash: Stash) -> str:
    """One run: facts, parameters, a timeline, and each step with its commands and output.

    The headings are Markdown (the table of contents and search sections come from them);
    everything under them is HTML, in the stash.
    """
    run = detail.summary
    title = f"Run {run.id}: {run.title} ({run.status})"
    lines = [
        "---",
        f"title: {json.dumps(re.sub(r'[<>&]', '', title))}",
        "template: runbook-run.html",
        "search:",
        "  boost: 0.5",
        "---",
        "",
        f"# {esc(title)}",
        stash.block(_facts(detail, links)),
    ]
    if run.params:
        params = run.params.items()
        rows = [(f"<code>{cell(k)}</code>", f"<code>{cell(v)}</code>") for k, v in params]
        lines += ["## Parameters", stash.block(_table(("Name", "Value"), rows))]
    lines += ["## Timeline", stash.block(f"<p>{timeline_svg(detail)}</p>"), "## Steps", ""]
    for step in detail.steps:
        lines += [f"### {esc(step.id)}", stash.block(_step_section(step, links.step(step.id)))]
    return "\n".join(lines) + "\n"


def _table(head: tuple[str, str], rows: Sequence[tuple[str, str]]) -> str:
    """A two-column table, as Python-Markdown's tables extension writes it."""
    body = "".join(f"<tr>\n<td>{a}</td>\n<td>{b}</td>\n</tr>\n" for a, b in rows)
    return (
        f"<table>\n<thead>\n<tr>\n<th>{head[0]}</th>\n<th>{head[1]}</th>\n</tr>\n</thead>\n"
        f"<tbody>\n{body}</tbody>\n</table>"
    )


def _facts(detail: RunDetail, links: RunLinks) -> str:
    run = detail.summary
    version = f"sha256 <code>{esc(run.digest[:16])}</code>"
    if run.git_commit:
        version += f", git <code>{esc(run.git_commit[:12])}</code>" + (
            " (uncommitted changes)" if run.git_dirty else ""
        )
    email = f" &lt;{cell(run.email)}&gt;" if run.email else ""
    runbook = (
        f'<a href="{html.escape(links.runbook)}">{esc(run.title)}</a>'
        if links.runbook
        else f"{esc(run.title)} (<code>{esc(run.path)}</code>)"
    )
    status = f'<span class="rb-status rb-status-{esc(run.status)}">{esc(run.status)}</span>'
    rows = [
        ("Runs", f'<a href="{html.escape(links.index)}">all runs</a>'),
        ("Status", status + (f" {cell(detail.message)}" if detail.message else "")),
        ("Operator", f"{cell(run.operator)}{email} on {cell(run.host)}"),
        ("Started", esc(when(run.started))),
        ("Ended", esc(when(run.ended))),
        ("Duration", esc(duration_text(run.duration))),
        ("Version", version),
    ]
    return _table(("Runbook", runbook), rows)


def _step_section(step: StepRecord, step_link: str | None) -> str:
    status = step.status or "started, no result"
    lines = [
        f'<p><span class="rb-status rb-status-{esc(step.status or "running")}">{esc(status)}</span>'
        + (f" {esc(step.reason)}" if step.reason else "")
        + (f' · <a href="{html.escape(step_link)}">in the runbook</a>' if step_link else "")
        + "</p>"
    ]
    if step.text:
        lines.append(f"<p>Manual step: {esc(step.text)}</p>")
    answers = []
    for answer in step.answers:
        note = f" ({esc(answer.note)})" if answer.note else ""
        answers.append(
            f"<li>{esc(when(answer.time))}: {esc(answer.question)} → "
            f"<strong>{esc(answer.answer)}</strong>{note}</li>"
        )
    if answers:
        lines += ["<ul>", *answers, "</ul>"]
    for attempt in step.attempts:
        if not attempt.command:
            continue
        result = f"exit code {attempt.exit_code}" if attempt.exit_code is not None else "no result"
        lines += [
            f"<p>Attempt {attempt.number}{' (edited)' if attempt.edited else ''},"
            f" {esc(when(attempt.started))}, {esc(result)},"
            f" {esc(duration_text(attempt.duration))}</p>",
            f'<pre class="rb-command"><code>{esc(attempt.command.rstrip())}</code></pre>',
            "",
        ]
        output = attempt.output
        if output:
            lines += [
                f'<details class="rb-output"><summary>Output ({_lines(output)})</summary>',
                f'<pre class="ansi2html-content">{ansi_html(output)}</pre>',
                "</details>",
                "",
            ]
    return "\n".join(lines)


def _lines(text: str) -> str:
    count = len(text.splitlines())
    return "1 line" if count == 1 else f"{count} lines"


def timeline_svg(detail: RunDetail) -> str:
    """One bar per step attempt, on the run's time axis, coloured by its status."""
    bars = []
    start = detail.summary.started
    end = detail.summary.ended or start
    for step in detail.steps:
        for attempt in step.attempts:
            if attempt.started is None:
                continue
            finished = attempt.ended or attempt.started
            end = max(end, finished)
            bars.append(
                (step.id, attempt.number, attempt.started, finished, attempt.status or step.status)
            )
    if not bars:
        return "<em>No step ran.</em>"
    span = max(end - start, 0.001)
    width, row, label = 720, 22, 200
    height = row * len(bars) + 24
    parts = [
        f'<svg class="rb-timeline" role="img" viewBox="0 0 {width} {height}" width="100%"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f"<title>Timeline of run {esc(detail.summary.id)}</title>"
    ]
    for index, (step_id, number, began, finished, status) in enumerate(bars):
        y = index * row + 4
        x = label + (began - start) / span * (width - label - 10)
        w = max((finished - began) / span * (width - label - 10), 2)
        colour = STATUS_COLOUR.get(status or "", "#1e88e5")
        name = step_id + (f" #{number}" if number > 1 else "")
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="14" fill="currentColor">{esc(name[:28])}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" rx="3" fill="{colour}">'
            f"<title>{esc(name)}: {esc(status or '')},"
            f" {esc(duration_text(finished - began))}</title></rect>"
        )
    parts.append(
        f'<text x="{label}" y="{height - 4}" font-size="13" fill="currentColor">0s</text>'
        f'<text x="{width - 60}" y="{height - 4}" font-size="13" fill="currentColor">'
        f"{esc(duration_text(span))}</text></svg>"
    )
    return "".join(parts)
