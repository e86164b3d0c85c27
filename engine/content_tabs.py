"""A markdown-it plugin for mkdocs-material's content tabs (`=== "Ubuntu"` + indented content).

Runbooks put alternative procedures in tabs (one per operating system, cloud or version); the
parser must see the commands inside as steps and know which tab each belongs to. Modelled on
mdit_py_plugins' admonition rule: the same indentation and closing rules as mkdocs' own
`pymdownx.tabbed`. Consecutive tabs form one tab set (`meta["first"]` marks a set's first tab).
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock

_OPENER = re.compile(r'^===(\+|!)?[ \t]+"(.*)"[ \t]*$')
_INDENT = 4


def content_tabs_plugin(md: MarkdownIt) -> None:
    """Adds `tab_open`/`tab_close` tokens (meta: `label`, `first`) around each tab's content."""
    md.block.ruler.before(
        "fence", "content_tab", _content_tab, {"alt": ["paragraph", "reference", "blockquote"]}
    )


def _content_tab(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    if state.sCount[start_line] - state.blkIndent >= 4:
        return False
    start = state.bMarks[start_line] + state.tShift[start_line]
    if not state.src.startswith("===", start):
        return False
    opener = _OPENER.match(state.src[start : state.eMarks[start_line]])
    if opener is None:
        return False
    if silent:
        return True

    old_parent, old_line_max, old_indent = state.parentType, state.lineMax, state.blkIndent
    state.parentType = "content_tab"
    state.blkIndent = state.sCount[start_line] + _INDENT
    next_line = start_line
    was_empty = False
    while True:
        next_line += 1
        if next_line >= end_line:
            break
        is_empty = state.isEmpty(next_line)
        if is_empty and was_empty:
            break
        was_empty = is_empty
        if not is_empty and state.sCount[next_line] < state.blkIndent:
            break
    state.lineMax = next_line

    previous = state.tokens[-1] if state.tokens else None
    token = state.push("tab_open", "div", 1)
    token.block = True
    token.markup = "==="
    token.info = opener.group(2)
    token.map = [start_line, next_line]
    token.meta = {
        "label": opener.group(2),
        "first": opener.group(1) == "!" or previous is None or previous.type != "tab_close",
    }
    state.md.block.tokenize(state, start_line + 1, next_line)
    token = state.push("tab_close", "div", -1)
    token.block = True

    state.parentType, state.lineMax, state.blkIndent = old_parent, old_line_max, old_indent
    state.line = next_line
    return True
