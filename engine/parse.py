"""parse: Markdown text → Runbook. Pure: the text comes in, the model and its diagnostics go out.

Parsing never fails: whatever is wrong becomes a diagnostic at its line, and the rest of the
runbook is still read (an unclosed fence is closed at the end of the document, as markdown-it does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import PurePath

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from engine.annotation import StepAttributes, annotate, split_info
from engine.diagnostics import DiagnosticSink
from engine.front_matter import FrontMatter, read_front_matter
from engine.infer import infer_steps
from engine.model import Runbook, Section, Step, StepKind
from engine.slugs import slugify, unique_slug

_TASK = re.compile(r"^\[([ xX])\](?:[ \t]+|$)")
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})")
_INLINE_MARKUP = re.compile(r"[`*_\[\]<>!&\\~]")


def make_markdown() -> MarkdownIt:
    """The one Markdown parser configuration used to read runbooks.

    Inline parsing is left out: steps need only the source of inline content, and the few
    headings are parsed inline on their own (`_plain_text`), which halves the parse time.
    """
    return MarkdownIt("commonmark").use(front_matter_plugin).disable("inline")


_MARKDOWN = make_markdown()
_INLINE = MarkdownIt("commonmark")


@dataclass(slots=True)
class _Draft:
    """A step before its id is settled (derived ids need every explicit id first)."""

    kind: StepKind
    line: int
    body: str
    body_line: int
    section: str | None
    language: str = ""
    attrs: StepAttributes | None = None
    checked: bool = False
    extra: str = ""


def parse_runbook(text: str, path: str = "<text>") -> Runbook:
    """Parse a runbook's text into the model, collecting every diagnostic on the way."""
    sink = DiagnosticSink(path)
    lines = text.splitlines()
    tokens = _MARKDOWN.parse(text)
    front = FrontMatter()
    sections: list[Section] = []
    drafts: list[_Draft] = []
    taken_slugs: set[str] = set()
    stack: list[Section] = []
    first_heading = ""

    if tokens and tokens[0].type == "front_matter":
        front = read_front_matter(tokens[0].content, 2, sink)
    elif lines and re.fullmatch(r"-{3,}\s*", lines[0]) and _looks_unclosed(lines):
        sink.error(
            1,
            "front-matter-unclosed",
            "front matter opened here is never closed",
            "end it with a line of three dashes (---)",
        )

    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            level = int(token.tag[1])
            title = _plain_text(tokens[index + 1])
            first_heading = first_heading or (title if level == 1 else "")
            while stack and stack[-1].level >= level:
                stack.pop()
            slug = unique_slug(slugify(title) or "section", taken_slugs)
            section = Section(slug, title, level, _line(token), stack[-1].slug if stack else None)
            sections.append(section)
            stack.append(section)
        elif kind == "fence":
            draft = _fence_step(token, lines, stack[-1].slug if stack else None, sink)
            if draft is not None:
                drafts.append(draft)
        elif kind == "inline" and index >= 2 and tokens[index - 2].type == "list_item_open":
            match = _TASK.match(token.content)
            if match and tokens[index - 1].type == "paragraph_open":
                drafts.append(
                    _Draft(
                        StepKind.MANUAL,
                        _line(token),
                        token.content[match.end() :].strip(),
                        _line(token),
                        stack[-1].slug if stack else None,
                        checked=match.group(1) != " ",
                    )
                )

    steps = _settle_ids(drafts, front, sink)
    title = front.title or first_heading or PurePath(path).stem
    runbook = Runbook(
        path=path,
        title=title,
        steps=steps,
        sections=tuple(sections),
        params=front.params,
        description=front.description,
        owner=front.owner,
        tags=front.tags,
        env=front.env,
        shell=front.shell,
        cwd=front.cwd,
        timeout=front.timeout,
        front_matter_keys=tuple(front.key_lines.items()),
        diagnostics=tuple(sink.items),
    )
    return infer_steps(runbook)


def _line(token: Token) -> int:
    return token.map[0] + 1 if token.map else 1


def _looks_unclosed(lines: list[str]) -> bool:
    """A leading `---` with no closing line: the front matter plugin left it as a rule."""
    return not any(re.fullmatch(r"(-{3,}|\.\.\.)\s*", line) for line in lines[1:])


def _plain_text(inline: Token) -> str:
    """A heading's text without its inline markup, as the site's table of contents shows it."""
    source = inline.content.strip()
    if not _INLINE_MARKUP.search(source):
        return source
    children = _INLINE.parseInline(source)[0].children or []
    text = "".join(c.content for c in children if c.type in ("text", "code_inline"))
    return text.strip() or source


def _fence_step(
    token: Token, lines: list[str], section: str | None, sink: DiagnosticSink
) -> _Draft | None:
    info = split_info(token.info)
    if not info.language and info.annotation is None:
        return None
    line = _line(token)
    fence_text = lines[line - 1] if line - 1 < len(lines) else ""
    opener = _FENCE_OPEN.match(fence_text)
    info_column = (opener.end() if opener else 0) + 1
    info_column += len(fence_text[info_column - 1 :]) - len(fence_text[info_column - 1 :].lstrip())
    attrs = annotate(info, line, info_column, sink)
    if not attrs.is_step:
        return None
    return _Draft(
        StepKind.COMMAND,
        line,
        token.content,
        line + 1,
        section,
        language=info.language,
        attrs=attrs,
        extra=info.extra,
    )


def _settle_ids(drafts: list[_Draft], front: FrontMatter, sink: DiagnosticSink) -> tuple[Step, ...]:
    explicit: dict[str, int] = {}
    for draft in drafts:
        if draft.attrs and draft.attrs.id:
            if draft.attrs.id in explicit:
                sink.error(
                    draft.line,
                    "duplicate-id",
                    f"step id '{draft.attrs.id}' is already used at line "
                    f"{explicit[draft.attrs.id]}",
                    "give each step its own id",
                    column=draft.attrs.key_columns.get(
                        "id", draft.attrs.key_columns.get("name", 1)
                    ),
                )
            else:
                explicit[draft.attrs.id] = draft.line
    taken = set(explicit)
    position: dict[str | None, int] = {}
    steps = []
    for draft in drafts:
        position[draft.section] = position.get(draft.section, 0) + 1
        if draft.attrs and draft.attrs.id:
            step_id, is_explicit = draft.attrs.id, True
        else:
            base = f"{draft.section or 'step'}-{position[draft.section]}"
            step_id, is_explicit = unique_slug(base, taken), False
        steps.append(_make_step(draft, step_id, is_explicit))
    return tuple(steps)


def _make_step(draft: _Draft, step_id: str, explicit: bool) -> Step:
    step = Step(
        id=step_id,
        kind=draft.kind,
        line=draft.line,
        body=draft.body,
        section=draft.section,
        body_line=draft.body_line,
        language=draft.language,
        checked=draft.checked,
        explicit_id=explicit,
        info_extra=draft.extra,
    )
    attrs = draft.attrs
    if attrs is None:
        return step
    return replace(
        step,
        interpreter=attrs.interpreter,
        run=attrs.run,
        needs=attrs.needs,
        when=attrs.when,
        confirm=attrs.confirm,
        timeout=attrs.timeout,
        retries=attrs.retries,
        retry_delay=attrs.retry_delay,
        on_failure=attrs.on_failure,
        expect=attrs.expect,
        interactive=attrs.interactive,
        cwd=attrs.cwd,
        env=attrs.env,
        capture=attrs.capture,
        key_columns=tuple(attrs.key_columns.items()),
    )
