"""A runbook page: the author's Markdown with annotations removed, and what `decorate` adds
to its HTML: a header per step, a header box (parameters, how to run it, its last run) and the
step graph as a mermaid flowchart.

Pure: the runbook, its plan and its recent runs in, Markdown and a `Decoration` out. A manual
step's badge is HTML kept in a `Stash` and only named in the Markdown. Everything taken from
the runbook or the journal that lands in HTML is escaped.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Sequence

from engine.annotation import split_info
from engine.duration import when
from engine.front_matter import toml_front_matter_end
from engine.labels import step_flags
from engine.model import Runbook, Step, StepKind
from engine.plan import EdgeKind, Plan
from engine.publish.decorate import Decoration
from engine.publish.stash import Stash
from engine.record import RunSummary

_FENCE = re.compile(r"^((?:[ \t]*>)*[ \t]*)(`{3,}|~{3,})(.*)$")
_FRONT_MATTER_END = re.compile(r"^(-{3,}|\.{3})\s*$")


_MARKDOWN_SYNTAX = str.maketrans(
    {"[": "&#91;", "]": "&#93;", "*": "&#42;", "_": "&#95;", "`": "&#96;", "|": "&#124;"}
)


def esc(text: object) -> str:
    """Recorded or authored text as inert HTML: escaped, and no Markdown syntax left in it."""
    return html.escape(str(text), quote=True).translate(_MARKDOWN_SYNTAX)


def cell(text: object) -> str:
    """Text for a Markdown table cell: escaped, on one line."""
    return esc(text).replace("\n", " ")


def strip_front_matter(lines: list[str]) -> list[str]:
    """The lines with the front matter (YAML, or Hugo's TOML) blanked: lines keep their numbers."""
    toml_end = toml_front_matter_end(lines)
    if toml_end is not None:
        return [""] * (toml_end + 1) + lines[toml_end + 1 :]
    if lines and re.fullmatch(r"-{3,}\s*", lines[0]):
        for index in range(1, len(lines)):
            if _FRONT_MATTER_END.match(lines[index]):
                return [""] * (index + 1) + lines[index + 1 :]
    return lines


def runbook_markdown(
    runbook: Runbook,
    plan: Plan,
    run_command: str,
    stash: Stash,
    recent_runs: Sequence[RunSummary] = (),
    run_href: Callable[[str], str] = lambda run_id: f"runs/{run_id}/",
) -> tuple[str, Decoration]:
    """The page's Markdown, structured as the author wrote it, and what `decorate` adds to
    its HTML: the header box, the graph and a header per command step.

    Only three things change in the Markdown, each within a line: annotations leave the fence
    info strings and the headings, and a manual step's badge joins the end of its task item's
    line. Front
    matter lines are blanked, not removed, so the step lines from the model still index the
    source; `run_href(id)` is the URL of a run's page, relative to this page.
    """
    lines = strip_front_matter(runbook.text.splitlines())
    for section in runbook.sections:  # a heading's annotation leaves it, as a fence's does
        if section.annotation and section.line <= len(lines):
            head, _, tail = lines[section.line - 1].rpartition(section.annotation)
            lines[section.line - 1] = head.rstrip() + tail
    numbers = {step_id: n for n, step_id in enumerate(_ordered_ids(plan), 1)}
    headers = []
    for step in sorted(runbook.steps, key=lambda s: s.line):
        index = step.line - 1
        if index >= len(lines):
            continue
        number = numbers.get(step.id)
        if step.kind is StepKind.COMMAND:
            headers.append((index, step.body, _command_header(step, number)))
        else:
            lines[index] = lines[index].rstrip() + " " + stash.inline(_manual_badge(step, number))
    box = _header_box(runbook, plan, run_command, recent_runs, run_href)
    decoration = Decoration(box, graph_html(plan), tuple(headers))
    return "\n".join(_plain_fence(line) for line in lines), decoration


def _ordered_ids(plan: Plan) -> list[str]:
    return list(plan.order) + [i for _, ids in plan.handlers for i in ids]


def _badges(step: Step) -> str:
    flags = (["manual"] if step.kind is StepKind.MANUAL else []) + step_flags(step)
    return " ".join(
        f'<span class="rb-badge rb-badge-{esc(flag.split("=")[0])}">{esc(flag)}</span>'
        for flag in flags
    )


def _command_header(step: Step, number: int | None) -> str:
    """A heading, so that search makes the step an entry of its own, titled by its id alone
    (a longer title ranked it below the page), with its command as the text."""
    label = f"Step {number}" if number else "Example"
    return (
        f'<h6 class="rb-step" id="step-{esc(step.id)}">'
        f'<a class="rb-step-link" href="#step-{esc(step.id)}" data-search-exclude>{label}</a> '
        f"<code>{esc(step.id)}</code> <span data-search-exclude>{_badges(step)}</span></h6>"
    )


def _manual_badge(step: Step, number: int | None) -> str:
    label = f"step {number}" if number else "step"
    return (
        f'<span class="rb-step rb-step-manual" id="step-{esc(step.id)}">'
        f'<a class="rb-step-link" href="#step-{esc(step.id)}">{label}</a> '
        f"<code>{esc(step.id)}</code> {_badges(step)}</span>"
    )


def _plain_fence(line: str) -> str:
    """`bash {id: x, ...}` → `bash`, keeping other fence options such as title="..."."""
    match = _FENCE.match(line)
    if not match or "{" not in match.group(3):
        return line
    info = split_info(match.group(3))
    if info.annotation is None:
        return line
    language = info.language or "text"
    return f"{match.group(1)}{match.group(2)}{language}{' ' + info.extra if info.extra else ''}"


def _header_box(
    runbook: Runbook,
    plan: Plan,
    run_command: str,
    recent: Sequence[RunSummary],
    run_href: Callable[[str], str],
) -> str:
    """The box under the title, as HTML: Markdown inside HTML (md_in_html) took as long to
    render as the rest of the page, and even passing this HTML through cost 0.5 ms (`Stash`)."""
    parts = ['<div class="rb-box">']
    if runbook.description:
        parts.append(f"<p>{esc(runbook.description)}</p>")
    facts = []
    if runbook.owner:
        facts.append(f"<strong>Owner</strong> {esc(runbook.owner)}")
    if runbook.tags:
        facts.append(
            "<strong>Tags</strong> " + " ".join(f"<code>{esc(t)}</code>" for t in runbook.tags)
        )
    steps = plan.steps()
    manual = sum(s.kind is StepKind.MANUAL for s in steps)
    facts.append(
        f"<strong>Steps</strong> {len(steps)} ({len(steps) - manual} commands, {manual} manual)"
    )
    parts.append("<p>" + " · ".join(facts) + "</p>")
    if runbook.params:
        parts.append(
            '<table class="rb-params"><thead><tr><th>Parameter</th><th>Default</th>'
            "<th>Description</th></tr></thead><tbody>"
        )
        for param in runbook.params:
            if param.secret:
                default = "<em>secret</em>"
            elif param.default is not None:
                default = f"<code>{esc(param.default)}</code>"
            else:
                default = "<em>required</em>"
            extra = f" (one of {', '.join(esc(c) for c in param.choices)})" if param.choices else ""
            parts.append(
                f"<tr><td><code>{esc(param.name)}</code></td><td>{default}</td>"
                f"<td>{esc(param.description)}{extra}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("<p>Run it:</p>")
    parts.append(
        f'<div class="highlight"><pre><span></span><code>{esc(run_command)}</code></pre></div>'
    )
    parts += _last_run(runbook, recent, run_href)
    parts += ["</div>", ""]
    return "\n".join(parts)


def _last_run(
    runbook: Runbook, recent: Sequence[RunSummary], run_href: Callable[[str], str]
) -> list[str]:
    if not recent:
        return ["<p><em>Never run (no run of it is in the journal).</em></p>"]
    last = recent[0]
    status = f'<span class="rb-status rb-status-{esc(last.status)}">{esc(last.status)}</span>'
    lines = [
        f'<p><strong>Last run</strong> <a href="{esc(run_href(last.id))}">'
        f"{esc(when(last.started))}</a> by {esc(last.operator)}: {status}</p>"
    ]
    succeeded = next((r for r in recent if r.status == "succeeded"), None)
    if succeeded is not None and succeeded.digest != runbook.digest:
        lines.append(
            '<div class="admonition warning"><p class="admonition-title">Changed since its last'
            " successful run</p><p>This runbook changed after its last successful run"
            f" ({esc(when(succeeded.started))}); the new version has not run successfully"
            " yet.</p></div>"
        )
    if len(recent) > 1:
        links = ", ".join(
            f'<a href="{esc(run_href(r.id))}">{esc(r.status)} {esc(when(r.started))}</a>'
            for r in recent[1:]
        )
        lines.append(f"<p>Earlier runs: {links}</p>")
    return lines


# mermaid refuses a diagram whose source is longer than this ("Maximum text size in diagram
# exceeded"); a graph that would be longer is given as a list of steps instead.
MERMAID_MAX_TEXT = 50_000
# A graph of more steps than this is collapsed: it is a help, not the page.
GRAPH_OPEN_STEPS = 8
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|<(?:https?|mailto):[^>]*>")


def _node_label(step: Step) -> str:
    text = step.id if step.kind is StepKind.COMMAND else step.body
    text = _LINK.sub(lambda m: m.group(1) or "", text)  # a link's text, never its target
    text = re.sub(r"[`*_\[\]]", "", text).strip() or step.id
    if len(text) > 40:
        text = text[:39] + "…"
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def graph_html(plan: Plan) -> str:
    """The graph, collapsed beyond GRAPH_OPEN_STEPS steps; drawn by runbook.js (which loads
    mermaid) only when open, and left out of the search index. Too large to draw: a list."""
    ids = _ordered_ids(plan)
    if not ids:
        return ""
    source = mermaid_source(plan)
    by_id = {s.id: s for s in plan.runbook.steps}
    count = f"{len(ids)} step{'s' if len(ids) != 1 else ''}"
    if len(source) > MERMAID_MAX_TEXT:
        items = "".join(
            f'<li><a href="#step-{esc(i)}"><code>{esc(i)}</code></a>'
            + (f" {esc(_node_label(by_id[i]))}" if by_id[i].kind is StepKind.MANUAL else "")
            + "</li>"
            for i in ids
        )
        return (
            f'<details class="rb-graph" data-search-exclude><summary>Steps ({count}: too many'
            f' to draw as a graph)</summary><ol class="rb-step-list">{items}</ol></details>'
        )
    opened = " open" if len(ids) <= GRAPH_OPEN_STEPS else ""
    shown = {flag for i in ids for flag in step_flags(by_id[i])} & _NODE_STYLES.keys()
    legend = " ".join(
        f'<span class="rb-legend rb-legend-{flag}">{flag}</span>'
        for flag in _NODE_STYLES
        if flag in shown
    )
    if legend:
        legend = f'<p class="rb-graph-legend">{legend}</p>'
    return (
        f'<details class="rb-graph" data-search-exclude{opened}><summary>Step graph'
        f' ({count})</summary><div class="rb-graph-draw" data-graph="{html.escape(source)}">'
        f"</div>{legend}</details>"
    )


def mermaid_source(plan: Plan) -> str:
    """The step graph as a mermaid flowchart: sections as subgraphs, flow and needs edges,
    failure handlers dashed, manual steps as rounded boxes, each node a link to its step."""
    ids = _ordered_ids(plan)
    runbook = plan.runbook
    by_id = {s.id: s for s in runbook.steps}
    node = {step_id: f"s{n}" for n, step_id in enumerate(ids)}
    lines = ["flowchart TD"]
    titles = {s.slug: s.title + (f" · on {s.target}" if s.target else "") for s in runbook.sections}
    groups: dict[str | None, list[str]] = {}
    for step_id in ids:
        groups.setdefault(by_id[step_id].section, []).append(step_id)
    for number, (section, members) in enumerate(groups.items()):
        if section is not None:
            title = _node_label_text(titles.get(section, section))
            lines.append(f'  subgraph g{number}["{title}"]')
        for step_id in members:
            step = by_id[step_id]
            label = _node_label(step)
            shape = f'("{label}")' if step.kind is StepKind.MANUAL else f'["{label}"]'
            lines.append(f"    {node[step_id]}{shape}")
        if section is not None:
            lines.append("  end")
    flow = _flow_edges(plan.order, by_id)
    for before, after, option in flow:
        arrow = f'-->|"{_node_label_text(option)}"|' if option else "-->"
        lines.append(f"  {node[before]} {arrow} {node[after]}")
    consecutive = {(before, after) for before, after, _ in flow}
    for edge in plan.edges:
        if (edge.source, edge.target) in consecutive:
            continue  # already drawn as an edge of the flow
        if edge.kind is EdgeKind.NEEDS and edge.source in node and edge.target in node:
            lines.append(f"  {node[edge.source]} -- needs --> {node[edge.target]}")
    for target, handler in plan.handlers:
        for step in runbook.steps:
            if step.on_failure == target and step.id in node and handler:
                lines.append(f"  {node[step.id]} -. on failure .-> {node[handler[0]]}")
        for before, after in itertools.pairwise(handler):
            lines.append(f"  {node[before]} --> {node[after]}")
    for step_id in ids:
        if re.fullmatch(r"[\w.-]+", step_id):
            lines.append(f'  click {node[step_id]} href "#step-{step_id}"')
    lines.extend(_node_classes(ids, by_id, node))
    return "\n".join(lines) + "\n"


# What the engine judged about a step, drawn on its node (the legend is in runbook.css).
_NODE_STYLES = {
    "danger": "stroke:#c62828,stroke-width:3px",
    "guessed": "stroke-dasharray:6 4",
    "interactive": "fill:#e3f2fd",
    "follow": "fill:#fff8e1",
}


def _node_classes(ids: Sequence[str], by_id: dict[str, Step], node: dict[str, str]) -> list[str]:
    """`class` lines giving danger, guessed, interactive and follow steps their look."""
    members: dict[str, list[str]] = {}
    for step_id in ids:
        step = by_id[step_id]
        for flag in step_flags(step):
            if flag in _NODE_STYLES:
                members.setdefault(flag, []).append(node[step_id])
    lines = [f"  classDef {flag} {_NODE_STYLES[flag]}" for flag in members]
    return lines + [f"  class {','.join(nodes)} {flag}" for flag, nodes in members.items()]


def _flow_edges(order: Sequence[str], by_id: dict[str, Step]) -> list[tuple[str, str, str | None]]:
    """The run's flow as edges; alternatives fork from the step before them, each edge
    labelled with its option, and join again at the step after them."""
    edges: list[tuple[str, str, str | None]] = []
    tails: list[str] = []  # the steps the next one follows
    entry: list[str] = []  # the steps before the current choice
    last: dict[str, str] = {}  # the current choice's options, each to its latest step
    choice: str | None = None
    for step_id in order:
        branch = by_id[step_id].branch
        if branch is None or branch.choice != choice:
            if choice is not None:
                tails = list(last.values())
            choice, last, entry = None, {}, tails
        if branch is None:
            edges.extend((tail, step_id, None) for tail in tails)
            tails = [step_id]
            continue
        choice = branch.choice
        if branch.label in last:
            edges.append((last[branch.label], step_id, None))
        else:
            edges.extend((tail, step_id, branch.label) for tail in entry)
        last[branch.label] = step_id
    return edges


def _node_label_text(text: str) -> str:
    return re.sub(r"[\"<>]", "", text)[:60] or "section"
