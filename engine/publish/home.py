"""The site's home page when the docs have none: every runbook, what it is for, whose it is,
its size and its last run, with a filter. A project's own index.md is used instead.

Pure: one `HomeEntry` per runbook in, HTML out; everything from the runbooks and the journal
is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.duration import when
from engine.journal.query import RunSummary
from engine.publish.page import esc

HOME_TITLE = "Runbooks"


@dataclass(frozen=True, slots=True)
class HomeEntry:
    """A runbook as the home page lists it; `href` and `last_href` relative to the home page."""

    title: str
    href: str
    path: str
    description: str
    owner: str
    tags: tuple[str, ...]
    steps: int
    last: RunSummary | None = None
    last_href: str = ""


def home_html(entries: Sequence[HomeEntry], runs_href: str | None, runs_count: int) -> str:
    """The table of runbooks, by title, and a filter by words and by tag (runbook.js)."""
    entries = sorted(entries, key=lambda e: (e.title.casefold(), e.path))
    tags = sorted({tag for entry in entries for tag in entry.tags}, key=str.casefold)
    parts = ['<div class="rb-home-intro">']
    summary = f"{len(entries)} runbook{'s' if len(entries) != 1 else ''}"
    if runs_href is not None:
        summary += (
            f', <a href="{esc(runs_href)}">{runs_count} run{"s" if runs_count != 1 else ""}'
            " recorded</a>"
        )
    parts.append(f"<p>{summary}. Open one to read it; run it with <code>runbook run</code>.</p>")
    parts.append("</div>")
    parts.append('<div class="rb-filters rb-home-filters">')
    parts.append(
        '<label>Find <input type="search" data-rb-home-text placeholder="title, owner, tag…"'
        ' aria-label="Filter the runbooks"></label>'
    )
    if tags:
        options = "".join(f'<option value="{esc(t)}">{esc(t)}</option>' for t in tags)
        parts.append(
            '<label>Tag <select data-rb-home-tag><option value="">all</option>'
            f"{options}</select></label>"
        )
    parts.append(
        f'<span class="rb-home-count"><span data-rb-home-count>{len(entries)}</span> shown</span>'
    )
    parts.append("</div>")
    parts.append(
        '<div class="rb-home"><table><thead><tr><th>Runbook</th><th>Owner</th>'
        "<th>Steps</th><th>Last run</th></tr></thead><tbody>"
    )
    for entry in entries:
        parts.append(_row(entry))
    parts.append("</tbody></table></div>")
    return "\n".join(parts)


def _row(entry: HomeEntry) -> str:
    tags = " ".join(f'<code class="rb-tag">{esc(t)}</code>' for t in entry.tags)
    description = f'<div class="rb-home-description">{esc(entry.description)}</div>'
    if entry.last is None:
        last = '<span class="rb-home-never">never run</span>'
    else:
        run = entry.last
        status = f'<span class="rb-status rb-status-{esc(run.status)}">{esc(run.status)}</span>'
        stamp = esc(when(run.started))
        if entry.last_href:
            stamp = f'<a href="{esc(entry.last_href)}">{stamp}</a>'
        last = f"{status} {stamp} by {esc(run.operator)}"
    return (
        f'<tr data-tags="{esc(" ".join(entry.tags))}">'
        f'<td><a class="rb-home-title" href="{esc(entry.href)}">{esc(entry.title)}</a>'
        f' <span class="rb-home-path">{esc(entry.path)}</span>'
        f"{description if entry.description else ''}{tags}</td>"
        f"<td>{esc(entry.owner) or '—'}</td><td>{entry.steps}</td><td>{last}</td></tr>"
    )
