"""Run history pages: an index of runs and a page per run, from the journal.

Pure: run records in, Markdown out: its headings are Markdown, the rest is escaped HTML kept
in a `Stash`. Outputs are rendered as a terminal showed them (`terminal_html`, which escapes
the text), so `<script>` in an output is shown as text. A page is written for auditors: who
ran it where at the top, a banner naming the step that failed (or the first event that does
not verify), that step's output open, and a replay of each output with its recorded timing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from engine.duration import elapsed_text, when
from engine.events import Output, RunResumed
from engine.publish.page import cell, esc
from engine.publish.stash import Stash
from engine.publish.terminal_html import terminal_html
from engine.record import Attempt, RunDetail, RunSummary, StepRecord

STATUS_COLOUR = {
    "succeeded": "#2e7d32",
    "done": "#2e7d32",
    "failed": "#c62828",
    "timed-out": "#c62828",
    "interrupted": "#ef6c00",
    "aborted": "#ef6c00",
    "skipped": "#9e9e9e",
}
FAILED = ("failed", "timed-out")
STATUS_MARK = {"succeeded": "✓", "done": "✓", "failed": "✗", "timed-out": "✗", "skipped": "↷"}
# A page embeds at most the first and the last EDGE characters of an output; the whole of it
# is written beside the page. A 200 MB step must not make a 200 MB page (or search index).
EDGE = 256 * 1024
# Shown without a box to open: a few lines say more than "Output (3 lines)".
SHORT_LINES, SHORT_CHARS = 8, 1200
REPLAY_MAX = 256 * 1024  # characters of output a replay carries; beyond, no replay
# The chunks of a run's replays, in one file beside its page, fetched when one is played: in
# the page they would double its size and its search indexing.
REPLAY_FILE = "replay.json"
TIMELINE_LABEL = 26  # characters of a step id beside its bar in the timeline


@dataclass(frozen=True, slots=True)
class RunLinks:
    """URLs relative to a run's page: its runbook's page (None if it has none), the index."""

    runbook: str | None
    index: str
    beside: str = ""  # prefix of the files written beside the page (its outputs, replays)

    def step(self, step_id: str) -> str | None:
        return f"{self.runbook}#step-{step_id}" if self.runbook else None


def output_file(step_id: str, attempt: int, host: str | None = None) -> str:
    """The name of an attempt's full output (on one host of a fanned-out step), written
    beside its run page."""
    name = f"{step_id}-{attempt}" + (f"-{host}" if host else "")
    return f"output-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"


def large_outputs(detail: RunDetail) -> Iterator[tuple[str, Attempt]]:
    """The attempts whose output is too large to embed: (file name, attempt)."""
    for step in detail.steps:
        for attempt in step.attempts:
            if len(attempt.output) > 2 * EDGE:
                yield output_file(step.id, attempt.number, attempt.host), attempt


def runs_index(
    runs: Sequence[RunSummary], detailed: set[str], stash: Stash, verification: str = ""
) -> str:
    """Newest first, with filters by runbook and status (a small script on the page), and by
    operator and host when a shared journal has more than one; the journal's verification
    state (HTML) above them, when the build checked it."""
    paths = sorted({r.path for r in runs})
    statuses = sorted({r.status for r in runs})
    # A team's journal: filters by who and where (only then, so one machine's page is as it was).
    extra = {
        name: values
        for name, values in (
            ("operator", sorted({r.operator for r in runs})),
            ("host", sorted({r.host for r in runs})),
        )
        if len(values) > 1
    }
    lines = [
        f"<p>{len(runs)} run(s) recorded in the journal, newest first.</p>",
        *([verification] if verification else []),
        '<div class="rb-filters">',
        '<label>Runbook <select data-rb-filter="runbook"><option value="">all</option>'
        + "".join(f'<option value="{esc(p)}">{esc(p)}</option>' for p in paths)
        + "</select></label>",
        '<label>Status <select data-rb-filter="status"><option value="">all</option>'
        + "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in statuses)
        + "</select></label>",
        *(
            f'<label>{name.capitalize()} <select data-rb-filter="{name}">'
            '<option value="">all</option>'
            + "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in values)
            + "</select></label>"
            for name, values in extra.items()
        ),
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
        who = "".join(f' data-{name}="{esc(getattr(run, name))}"' for name in extra)
        lines.append(
            f'<tr data-runbook="{esc(run.path)}" data-status="{esc(run.status)}"{who}>'
            f"<td>{link}</td><td>{esc(run.path)}</td><td>{esc(run.operator)}</td>"
            f'<td><span class="rb-status rb-status-{esc(run.status)}">{esc(run.status)}</span></td>'
            f"<td>{esc(elapsed_text(run.duration))}</td></tr>"
        )
    lines += ["</tbody>", "</table>", "</div>"]
    return "---\ntitle: Runs\n---\n\n# Runs\n" + stash.block("\n".join(lines))


def run_page(detail: RunDetail, links: RunLinks, stash: Stash, problem: str = "") -> str:
    """One run: who ran it where, what went wrong, facts, parameters, a timeline, and each
    step with its commands and output. `problem`: why the run's events do not verify.

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
        stash.block(_who(run) + _banners(detail, problem) + _facts(detail, links)),
    ]
    if run.params:
        params = run.params.items()
        rows = [(f"<code>{cell(k)}</code>", f"<code>{cell(v)}</code>") for k, v in params]
        lines += ["## Parameters", stash.block(_table(("Name", "Value"), rows))]
    lines += ["## Timeline", stash.block(f"<p>{timeline_svg(detail)}</p>"), "## Steps", ""]
    chunks = _chunks(detail)
    replayed = {key for key, played in chunks.items() if _replayable(played)}
    for step in detail.steps:
        lines += [
            stash.block(f'<span class="rb-anchor" id="step-{esc(step.id)}"></span>'),
            f"### {_mark(step.status)} {esc(step.id)}: {esc(step.status or 'unfinished')}",
            stash.block(_step_section(step, links, replayed)),
        ]
    return "\n".join(lines) + "\n"


def _mark(status: str | None) -> str:
    return STATUS_MARK.get(status or "", "•")


def _who(run: RunSummary) -> str:
    """The first line an auditor reads: who ran it, where, when."""
    email = f" &lt;{cell(run.email)}&gt;" if run.email else ""
    return (
        f'<p class="rb-who">Run by <strong>{cell(run.operator)}</strong>{email}'
        f" on <strong>{cell(run.host)}</strong> (pid {run.pid}),"
        f" {esc(when(run.started))}"
        + (f", from <code>{esc(run.abspath)}</code>" if run.abspath else "")
        + ".</p>"
    )


def _banners(detail: RunDetail, problem: str) -> str:
    """Red when the record does not verify or a step failed; orange when the run stopped."""
    parts = []
    if problem:
        parts.append(
            '<div class="rb-banner rb-banner-tampered" role="alert"><strong>This run\'s record'
            f" does not verify:</strong> {esc(problem)}. What this page shows may have been"
            " changed after the run.</div>"
        )
    failed = next((s for s in detail.steps if s.status in FAILED), None)
    status = detail.summary.status
    if failed is not None:
        last = failed.attempts[-1] if failed.attempts else None
        code = f", exit code {last.exit_code}" if last and last.exit_code is not None else ""
        reason = f": {esc(failed.reason)}" if failed.reason else ""
        parts.append(
            '<div class="rb-banner rb-banner-failed" role="alert">Step'
            f' <a href="#step-{esc(failed.id)}"><code>{esc(failed.id)}</code></a>'
            f" {esc(failed.status or '')}{esc(code)}{reason}.</div>"
        )
    elif status not in ("succeeded", "running"):
        stopped = next((s for s in reversed(detail.steps) if s.status is None), None)
        where = (
            f' at step <a href="#step-{esc(stopped.id)}"><code>{esc(stopped.id)}</code></a>'
            if stopped
            else ""
        )
        message = f": {esc(detail.message)}" if detail.message else ""
        parts.append(
            f'<div class="rb-banner rb-banner-stopped" role="alert">The run was'
            f" {esc(status)}{where}{message}.</div>"
        )
    return "".join(parts)


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
        ("Duration", esc(elapsed_text(run.duration))),
        ("Version", version),
    ]
    return _table(("Runbook", runbook), rows)


Chunks = dict[tuple[str, int], list[tuple[float, str]]]


def _chunks(detail: RunDetail) -> Chunks:
    """Each attempt's output as it arrived: (time, text), numbered as the record numbers
    attempts (a resumed run goes on from the attempts before it)."""
    chunks: Chunks = {}
    seen: dict[str, int] = {}
    offsets: dict[str, int] = {}
    for event in detail.events:
        if isinstance(event, RunResumed):
            offsets = dict(seen)
            continue
        attempt = getattr(event, "attempt", 0)
        step = getattr(event, "step", None)
        if not step or not attempt:
            continue
        number = attempt + offsets.get(step, 0)
        seen[step] = max(seen.get(step, 0), number)
        if isinstance(event, Output) and event.host is None:  # hosts' output: no replay
            chunks.setdefault((step, number), []).append((event.time, event.text))
    return chunks


def replay_data(detail: RunDetail) -> dict[str, list[tuple[float, str]]]:
    """What REPLAY_FILE holds: by `step/attempt`, (seconds from the attempt's start, text)."""
    starts = {(s.id, a.number): a.started for s in detail.steps for a in s.attempts}
    data = {}
    for (step, number), played in _chunks(detail).items():
        if _replayable(played):
            start = starts.get((step, number)) or played[0][0]
            data[f"{step}/{number}"] = [(round(max(t - start, 0.0), 3), c) for t, c in played]
    return data


def _replayable(played: list[tuple[float, str]]) -> bool:
    return len(played) > 1 and sum(len(t) for _, t in played) <= REPLAY_MAX


def _step_section(step: StepRecord, links: RunLinks, replayed: set[tuple[str, int]]) -> str:
    step_link = links.step(step.id)
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
    last = step.attempts[-1].number if step.attempts else 0
    for attempt in step.attempts:
        if not attempt.command:
            continue
        result = f"exit code {attempt.exit_code}" if attempt.exit_code is not None else "no result"
        if attempt.exit_code is None and attempt.reason:
            result = f"{attempt.status}: {attempt.reason}"
        lines += [
            f"<p>Attempt {attempt.number}"
            + (f" on <strong>{esc(attempt.host)}</strong>" if attempt.host else "")
            + f"{' (edited)' if attempt.edited else ''},"
            f" {esc(when(attempt.started))}, {esc(result)},"
            f" {esc(elapsed_text(attempt.duration))}</p>",
            f'<pre class="rb-command"><code>{esc(attempt.command.rstrip())}</code></pre>',
            "",
        ]
        if attempt.output:
            opened = step.status in FAILED and attempt.number == last
            replay = (
                f'<div class="rb-replay" data-rb-replay="{esc(step.id)}/{attempt.number}"'
                f' data-rb-src="{esc(links.beside + REPLAY_FILE)}"></div>'
                if (step.id, attempt.number) in replayed and attempt.host is None
                else ""
            )
            lines += [_output(step.id, attempt, opened, replay, links.beside), ""]
    return "\n".join(lines)


def _output(step_id: str, attempt: Attempt, opened: bool, replay: str, beside: str) -> str:
    """An attempt's output: inline when short, else in a box (open when it failed); capped
    at its first and last EDGE characters with a link to the whole; with its replay's player."""
    text = attempt.output
    count = text.count("\n") + (0 if text.endswith("\n") else 1)
    if len(text) > 2 * EDGE:
        skipped = len(text) - 2 * EDGE
        name = beside + output_file(step_id, attempt.number, attempt.host)
        body = (
            _term(text[:EDGE])
            + '<p class="rb-output-cut">… '
            + f"{skipped:,} characters not shown here:"
            + f' <a href="{esc(name)}">the whole output</a> ({len(text):,} characters,'
            " with its terminal control sequences) …</p>" + _term(text[-EDGE:])
        )
    else:
        body = _term(text)
    if count <= SHORT_LINES and len(text) <= SHORT_CHARS:
        return f'<div class="rb-output rb-output-inline">{replay}{body}</div>'
    lines = _lines(count)
    return (
        f'<details class="rb-output"{" open" if opened else ""}>'
        f"<summary>Output ({lines})</summary>{replay}{body}</details>"
    )


def _term(text: str) -> str:
    return f'<pre class="rb-term">{terminal_html(text.encode("utf-8", "replace"))}</pre>'


def _lines(count: int) -> str:
    return "1 line" if count == 1 else f"{count:,} lines"


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
        shown = name if len(name) <= TIMELINE_LABEL else name[: TIMELINE_LABEL - 1] + "…"
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="14" fill="currentColor">{esc(shown)}'
            f"<title>{esc(name)}</title></text>"
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" rx="3" fill="{colour}">'
            f"<title>{esc(name)}: {esc(status or '')},"
            f" {esc(elapsed_text(finished - began))}</title></rect>"
        )
    parts.append(
        f'<text x="{label}" y="{height - 4}" font-size="13" fill="currentColor">0s</text>'
        f'<text x="{width - 60}" y="{height - 4}" font-size="13" fill="currentColor">'
        f"{esc(elapsed_text(span))}</text></svg>"
    )
    return "".join(parts)
