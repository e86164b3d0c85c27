"""Step headers, the header box and the graph added to a runbook page's rendered HTML.

Inserting them into the Markdown changed the author's structure: a header and a blank line
before a fence in a list ended the list. So the Markdown is left as the author wrote it, and
each header is put into the HTML before the code block whose text is its step's fence, found
by content in source order. Pure: HTML and the page's source in, HTML out.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

_OPEN = re.compile(r"^((?:[ \t]*>)*[ \t]*)(`{3,}|~{3,})(.*)$")
_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.S)
_HIGHLIGHT = re.compile(r'<div class="(?:[^"]* )?highlight(?: [^"]*)?"[^>]*>')
_TAG = re.compile(r"<[^>]+>")
_H1_END = re.compile(r"</h1>")
_H2 = re.compile(r"<h2\b")
_PARAGRAPH = re.compile(r"\s*<p>.*?</p>", re.S)


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block of the source: its opening and closing line (0-based) and text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Decoration:
    """What a runbook page gets: `box` after its title, `graph` after its introduction, and a
    header before the code block of each step: (the step's 0-based line, its command, the
    header). A step in a fence goes before that fence's block; one that is not (an indented
    code block) before the first block showing its command."""

    box: str
    graph: str
    headers: tuple[tuple[int, str, str], ...]


def normalise(text: str) -> str:
    """Code text compared without indentation, trailing spaces or blank lines."""
    return "\n".join(s for line in text.splitlines() if (s := line.strip()))


def fences(lines: Sequence[str]) -> list[Fence]:
    """Every fenced block of the source, at any indentation, in block quotes too."""
    found: list[Fence] = []
    index = 0
    while index < len(lines):
        match = _OPEN.match(lines[index])
        if not match or (match.group(2)[0] == "`" and "`" in match.group(3)):
            index += 1
            continue
        quotes = match.group(1).count(">")
        marker = match.group(2)
        close = re.compile(rf"^(?:[ \t]*>){{0,{quotes}}}[ \t]*{marker[0]}{{{len(marker)},}}[ \t]*$")
        strip = re.compile(rf"^(?:[ \t]*>[ \t]?){{0,{quotes}}}")
        end = index + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        body = "\n".join(strip.sub("", line) for line in lines[index + 1 : end])
        found.append(Fence(index, end, normalise(body)))
        index = end + 1
    return found


def fence_of(all_fences: Sequence[Fence], line: int) -> Fence | None:
    """The fence holding 0-based `line` (its opening line or a line of its body)."""
    for fence in all_fences:
        if fence.start <= line <= fence.end:
            return fence
    return None


def decorate(page_html: str, decoration: Decoration, source: Sequence[str]) -> str:
    """The rendered page with the box, the graph and the step headers inserted."""
    inserts: list[tuple[int, int, str]] = []  # (position, order at that position, HTML)
    title = _H1_END.search(page_html)
    top = title.end() if title else 0
    if decoration.box:
        inserts.append((top, 0, decoration.box))
    blocks = _code_blocks(page_html)
    by_line = {fence.start: fence for fence in fences(source)}
    # The n-th fence of the source with a given text is the n-th code block with that text.
    seen: dict[str, int] = {}
    occurrence: dict[int, int] = {}
    for fence in by_line.values():
        occurrence[fence.start] = seen.get(fence.text, 0)
        seen[fence.text] = occurrence[fence.start] + 1
    positions: dict[str, list[int]] = {}
    for position, text in blocks:
        positions.setdefault(text, []).append(position)
    first_step_block: int | None = None
    all_fences = list(by_line.values())
    grouped: dict[int, list[str]] = {}
    unfenced: list[tuple[str, str]] = []
    for line, command, header in decoration.headers:
        holder = fence_of(all_fences, line)
        if holder is not None:
            grouped.setdefault(holder.start, []).append(header)
        elif normalise(command):
            unfenced.append((normalise(command), header))
    placed: list[tuple[int, str]] = []
    for start, group in sorted(grouped.items()):
        fence = by_line[start]
        found = positions.get(fence.text, [])
        if found:
            placed.append((found[min(occurrence[start], len(found) - 1)], "".join(group)))
    for command, header in unfenced:
        found = [position for position, text in blocks if command in text]
        if found:
            placed.append((found[0], header))
    for position, header in placed:
        inserts.append((position, 2, header))
        if first_step_block is None or position < first_step_block:
            first_step_block = position
    if decoration.graph:
        # After the introduction: before the first section, unless a step comes first; then
        # after the paragraphs that follow the title.
        heading = _H2.search(page_html, top)
        if heading and (first_step_block is None or heading.start() < first_step_block):
            where = heading.start()
        else:
            where = top
            while paragraph := _PARAGRAPH.match(page_html, where):
                where = paragraph.end()
        inserts.append((where, 1, decoration.graph))
    if not inserts:
        return page_html
    parts, last = [], 0
    for position, _, fragment in sorted(inserts, key=lambda item: (item[0], item[1])):
        parts += [page_html[last:position], fragment]
        last = position
    parts.append(page_html[last:])
    return "".join(parts)


def _code_blocks(page_html: str) -> list[tuple[int, str]]:
    """(where a header goes, normalised text) of each <pre> of the page, in order: before
    the highlight wrapper that holds it (a title or a line-number table included)."""
    blocks = []
    for match in _PRE.finditer(page_html):
        position = match.start()
        wrappers = list(_HIGHLIGHT.finditer(page_html, max(0, position - 3000), position))
        wrapper = wrappers[-1] if wrappers else None
        if wrapper is not None:
            between = page_html[wrapper.end() : position]
            if "</pre>" not in between or "highlighttable" in between:
                position = wrapper.start()
        text = html.unescape(_TAG.sub("", match.group(1)))
        blocks.append((position, normalise(text)))
    return blocks
