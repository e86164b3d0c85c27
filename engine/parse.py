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
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from engine.annotation import (
    SHELL_LANGUAGES,
    StepAttributes,
    annotate,
    annotate_section,
    split_heading,
    split_info,
)
from engine.classify import BlockKind, inline_command, judge_block
from engine.content_tabs import content_tabs_plugin
from engine.diagnostics import DiagnosticSink
from engine.front_matter import FrontMatter, read_front_matter, toml_front_matter_end
from engine.infer import infer_steps
from engine.model import Branch, Runbook, Section, SessionCommand, Step, StepKind
from engine.placeholders import find_implicit
from engine.sessions import prompt_lines, read_session
from engine.slugs import UniqueSlugs, slugify

_TASK = re.compile(r"^\[([ xX])\](?:[ \t]+|$)")
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})")
_INLINE_MARKUP = re.compile(r"[`*_\[\]<>!&\\~]")
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_CONTAINERS = frozenset(
    {"bullet_list_open", "ordered_list_open", "list_item_open", "tab_open", "admonition_open"}
)
_UNLABELLED = frozenset({"", "text", "txt", "plain", "plaintext"})
_LAST_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")
# The paragraph before a block saying that what follows is output: "Expected output:",
# "The output should look like this:", "You should see:", "It returns:".
_OUTPUT_LABEL = re.compile(
    r"\b(expected|sample|example|typical|similar)\s+(output|result|response)\b"
    r"|^\s*(output|result|response)\s*:?\s*$"
    r"|\b(output|result|response)\s+(should|will|would|might|may)\s+(look|read|be|show|resemble)\b"
    r"|\byou(?:\s+should|\s+will|'ll)\s+(see|get)\b"
    r"|^\W*(it|this|that|which|the\s+command|the\s+script)?\s*(returns|prints|outputs)\b[^.!?]*:\s*$"
    r"|\bsomething\s+like\b[^.!?]*:\s*$",
    re.IGNORECASE,
)
# Sibling headings that are alternatives: "Option 1", "Alternative B", "Method 2", "If ...".
_ALTERNATIVE = re.compile(
    r"^((option|alternative|method|approach|variant|scenario)\s*[\w.]*\b|if\b|in case\b|only if\b)",
    re.IGNORECASE,
)


def make_markdown() -> MarkdownIt:
    """The one Markdown parser configuration used to read runbooks.

    Inline parsing is left out: steps need only the source of inline content, and the few
    headings are parsed inline on their own (`_plain_text`), which halves the parse time.
    Admonitions and content tabs are read as containers, so the commands inside are steps.
    """
    return (
        MarkdownIt("commonmark")
        .use(front_matter_plugin)
        .use(admon_plugin)
        .use(content_tabs_plugin)
        .disable("inline")
    )


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
    command: str = ""
    command_lines: tuple[int, ...] = ()
    session: tuple[SessionCommand, ...] = ()
    classes: tuple[str, ...] = ()
    guessed: bool = False
    branch: Branch | None = None
    offers: tuple[str, ...] = ()
    end: int = 0  # the last source line of the step (1-based)
    prose: str = ""


def parse_runbook(text: str, path: str = "<text>") -> Runbook:
    """Parse a runbook's text into the model, collecting every diagnostic on the way."""
    sink = DiagnosticSink(path)
    lines = text.splitlines()
    front = FrontMatter()
    toml_end = toml_front_matter_end(lines)
    if toml_end is not None:
        # Hugo's TOML front matter: read, then blanked so the lines still count for the rest.
        front = read_front_matter("\n".join(lines[1:toml_end]), 2, sink, toml=True)
        text = "\n" * (toml_end + 1) + "\n".join(lines[toml_end + 1 :])
    tokens = _MARKDOWN.parse(text)
    sections: list[Section] = []
    drafts: list[_Draft] = []
    section_slug = UniqueSlugs()
    stack: list[Section] = []
    first_heading = ""

    if tokens and tokens[0].type == "front_matter":
        front = read_front_matter(tokens[0].content, 2, sink)
    elif (
        toml_end is None
        and lines
        and re.fullmatch(r"-{3,}\s*", lines[0])
        and _looks_unclosed(lines)
    ):
        sink.error(
            1,
            "front-matter-unclosed",
            "front matter opened here is never closed",
            "end it with a line of three dashes (---)",
        )

    containers: list[Token] = []  # open lists, list items, tabs, admonitions; innermost last
    tab_sets = 0
    item_offer: _Draft | None = None  # a list item's commands, until the item ends
    # Bullet items offering commands, each with its list: kept if that list also holds a step
    # (then it is a procedure, not a list of remarks).
    bullet_offers: list[tuple[_Draft, Token]] = []
    said_before = ""  # the paragraph just before the current block, if any
    details: list[tuple[str, int]] = []  # open <details> blocks: their summary and line
    for index, token in enumerate(tokens):
        kind = token.type
        section = stack[-1].slug if stack else None
        if kind == "heading_open":
            level = int(token.tag[1])
            text, annotation = split_heading(tokens[index + 1].content)
            title = _plain_text(text)
            first_heading = first_heading or (title if level == 1 else "")
            while stack and stack[-1].level >= level:
                stack.pop()
            slug = section_slug(slugify(title) or "section")
            parent = stack[-1].slug if stack else None
            heading = Section(slug, title, level, _line(token), parent)
            if annotation is not None:
                written = lines[heading.line - 1] if heading.line <= len(lines) else ""
                column = written.rfind(annotation) + 1 or 1
                target = annotate_section(annotation, heading.line, column, sink)
                heading = replace(
                    heading, target=target, annotation=annotation, annotation_column=column
                )
            sections.append(heading)
            stack.append(heading)
        elif kind.endswith("_open") and kind in _CONTAINERS:
            if kind == "tab_open" and token.meta.get("first"):
                tab_sets += 1
            token.meta["set"] = tab_sets
            containers.append(token)
        elif kind.endswith("_close") and kind.replace("_close", "_open") in _CONTAINERS:
            closed = containers.pop() if containers else None
            if closed is not None and closed.type == "list_item_open" and item_offer:
                if _in_ordered_list(containers):
                    drafts.append(item_offer)
                else:
                    bullet_offers.append((item_offer, _innermost_list(containers)))
                item_offer = None
        elif kind == "html_block":
            _follow_details(token, details)
        elif kind in ("fence", "code_block"):
            after_output = _OUTPUT_LABEL.search(said_before) is not None
            draft = _fence_step(token, lines, section, sink, after_output)
            if draft is not None:
                draft.branch = _container_branch(containers, details, section)
                drafts.append(draft)
                item_offer = None  # the item's own fence is its step
                if containers:
                    _innermost_list(containers).meta["has_step"] = True
        if kind == "inline" and tokens[index - 1].type == "paragraph_open":
            said_before = _LAST_SENTENCE.split(token.content.strip())[-1]
        elif kind not in ("paragraph_open", "paragraph_close") and not kind.endswith("_close"):
            said_before = ""
        if kind == "inline" and index >= 2 and tokens[index - 2].type == "list_item_open":
            match = _TASK.match(token.content)
            if tokens[index - 1].type != "paragraph_open":
                continue
            if match:
                drafts.append(
                    _Draft(
                        StepKind.MANUAL,
                        _line(token),
                        token.content[match.end() :].strip(),
                        _line(token),
                        section,
                        checked=match.group(1) != " ",
                        branch=_container_branch(containers, details, section),
                        offers=_offered_commands(token.content),
                        end=_end(token),
                    )
                )
            else:
                offers = _offered_commands(token.content)
                if offers:
                    item_offer = _Draft(
                        StepKind.MANUAL,
                        _line(token),
                        token.content.strip(),
                        _line(token),
                        section,
                        branch=_container_branch(containers, details, section),
                        offers=offers,
                        end=_end(token),
                    )

    kept = [draft for draft, in_list in bullet_offers if in_list.meta.get("has_step")]
    if kept:
        drafts = sorted([*drafts, *kept], key=lambda d: d.line)
    _branch_sections(drafts, sections)
    if toml_end is not None:
        prose_from = toml_end + 2
    elif tokens and tokens[0].type == "front_matter":
        prose_from = _end(tokens[0]) + 1
    else:
        prose_from = 1
    _attach_prose(drafts, lines, prose_from)
    if not drafts:
        _warn_no_steps(tokens, sink)
    steps = _settle_ids(drafts, front, sink, _section_targets(sections))
    _note_section_targets(sections, steps, sink)
    implicit = find_implicit(steps, front.params, (name for name, _ in front.env), sink)
    title = front.title or first_heading or PurePath(path).stem
    runbook = Runbook(
        path=path,
        title=title,
        steps=tuple(implicit.steps),
        sections=tuple(sections),
        params=front.params + tuple(implicit.params),
        description=front.description,
        owner=front.owner,
        tags=front.tags,
        env=front.env,
        shell=front.shell,
        cwd=front.cwd,
        timeout=front.timeout,
        targets=front.targets,
        ssh_config=front.ssh_config,
        front_matter_keys=tuple(front.key_lines.items()),
        diagnostics=tuple(sink.items),
    )
    return infer_steps(runbook)


def _line(token: Token) -> int:
    return token.map[0] + 1 if token.map else 1


def _end(token: Token) -> int:
    return token.map[1] if token.map else _line(token)


def _attach_prose(drafts: list[_Draft], lines: list[str], first_line: int) -> None:
    """Each step's prose: the source between the previous step (or the front matter) and it,
    shown to the operator before the step runs, as the page shows it to a reader."""
    previous = first_line - 1
    for draft in drafts:
        start = draft.line - 1
        if draft.kind is StepKind.MANUAL:
            start = max(previous, start)
        draft.prose = "\n".join(lines[previous:start]).strip("\n")
        previous = max(previous, draft.end)


def _looks_unclosed(lines: list[str]) -> bool:
    """A leading `---` with no closing line: the front matter plugin left it as a rule."""
    return not any(re.fullmatch(r"(-{3,}|\.\.\.)\s*", line) for line in lines[1:])


def _plain_text(text: str) -> str:
    """A heading's text without its inline markup, as the site's table of contents shows it."""
    source = text.strip()
    if not _INLINE_MARKUP.search(source):
        return source
    children = _INLINE.parseInline(source)[0].children or []
    text = "".join(c.content for c in children if c.type in ("text", "code_inline"))
    return text.strip() or source


def _fence_step(
    token: Token,
    lines: list[str],
    section: str | None,
    sink: DiagnosticSink,
    after_output: bool,
) -> _Draft | None:
    """The step of a fence or an indented code block, if it is one. An unlabelled block is
    judged by its content, and never taken for commands right after "Expected output:"."""
    info = split_info(token.info)
    line = _line(token)
    body_line = line + 1 if token.type == "fence" else line  # an indented block has no fence
    session = read_session(token.content, info.language, body_line)
    if session is None and info.annotation is None and info.language in _UNLABELLED:
        judged = judge_block(token.content)
        if after_output or judged.kind is not BlockKind.COMMANDS:
            return None
        return _Draft(
            StepKind.COMMAND, line, token.content, body_line, section, guessed=True, end=_end(token)
        )
    if token.type == "code_block" and after_output:
        return None  # an indented terminal session shown as the output of the one before
    fence_text = lines[line - 1] if line - 1 < len(lines) else ""
    opener = _FENCE_OPEN.match(fence_text)
    info_column = (opener.end() if opener else 0) + 1
    info_column += len(fence_text[info_column - 1 :]) - len(fence_text[info_column - 1 :].lstrip())
    # A session runs in the runbook's shell whatever its fence says (console, terminal, ...).
    attrs = annotate(
        info if session is None else replace(info, language="bash"), line, info_column, sink
    )
    if not attrs.is_step:
        return None
    draft = _Draft(
        StepKind.COMMAND,
        line,
        token.content,
        body_line,
        section,
        language=info.language,
        attrs=attrs,
        extra=info.extra,
        command=token.content,
        classes=info.classes,
        end=_end(token),
    )
    if session is None and attrs.run and not attrs.interpreter and "$" in token.content:
        for offset in prompt_lines(token.content)[:1]:
            sink.warning(
                body_line + offset,
                "prompt-in-script",
                "this line begins with a prompt, so the shell would run it as a command",
                "remove the prompt, or begin the block with a prompt line to read it as a"
                " terminal session (its other lines are then expected output)",
            )
    if session is not None:
        draft.command = session.command_text + "\n"
        draft.command_lines = session.command_lines()
        draft.session = session.commands
        if info.language in SHELL_LANGUAGES or not info.language:
            sink.info(
                line,
                "session-in-shell-fence",
                f"this {info.language or 'unlabelled'} block is read as a terminal session:"
                f" {len(session.commands)} command(s) after prompts run; the other lines are"
                " their expected output and never run",
                "label it ```console to say so, or remove the prompts and output to run it"
                " as a script",
            )
    return draft


_DETAILS = re.compile(
    r"<details\b[^>]*>|</details\s*>|<summary\b[^>]*>(.*?)</summary\s*>", re.IGNORECASE | re.DOTALL
)
_TAGS = re.compile(r"<[^>]+>")


def _follow_details(token: Token, details: list[tuple[str, int]]) -> None:
    """Keep `details` (the open <details> blocks, innermost last) up to date with an HTML block."""
    for match in _DETAILS.finditer(token.content):
        if match.group(0).startswith("</"):
            if details:
                details.pop()
        elif match.group(1) is not None:
            if details:
                summary = " ".join(_TAGS.sub("", match.group(1)).split())
                details[-1] = (summary, details[-1][1])
        else:
            details.append(("", _line(token)))


def _container_branch(
    containers: list[Token], details: list[tuple[str, int]], section: str | None
) -> Branch | None:
    """The innermost content tab holding a step, as a branch of its tab set; else a collapsed
    block that holds a conditional step ("??? warning "If it will not stop"", or <details> with
    such a summary), as the one option of its own choice: taken only when the operator says so."""
    tab = _tab_branch(containers, section)
    if tab is not None:
        return tab
    titled = [(t.content.strip(), _line(t)) for t in containers if t.type == "admonition_open"]
    for title, line in reversed([*titled, *details]):
        if _ALTERNATIVE.match(title):
            return Branch(f"{section or 'top'}-if-{line}", title, line)
    return None


def _tab_branch(containers: list[Token], section: str | None) -> Branch | None:
    """The innermost content tab holding a step, as a branch of its tab set."""
    tab = next((t for t in reversed(containers) if t.type == "tab_open"), None)
    if tab is None:
        return None
    return Branch(f"{section or 'top'}-tabs-{tab.meta['set']}", tab.meta["label"], _line(tab))


def _in_ordered_list(containers: list[Token]) -> bool:
    lists = [t for t in containers if t.type in ("ordered_list_open", "bullet_list_open")]
    return bool(lists) and lists[-1].type == "ordered_list_open"


def _innermost_list(containers: list[Token]) -> Token:
    """The list the current item belongs to (a tab or admonition when not in a list)."""
    lists = [t for t in containers if t.type in ("ordered_list_open", "bullet_list_open")]
    return lists[-1] if lists else containers[-1]


def _offered_commands(text: str) -> tuple[str, ...]:
    """The inline code spans of a list item that read as commands, in order."""
    return tuple(
        m.group(1).strip() for m in _CODE_SPAN.finditer(text) if inline_command(m.group(1))
    )


def _branch_sections(drafts: list[_Draft], sections: list[Section]) -> None:
    """Steps under sibling headings that read as alternatives ("Option 1", "If ...") become
    branches of one choice; a tab inside such a section stays the innermost choice."""
    by_slug = {s.slug: s for s in sections}
    choice_of: dict[str, tuple[str, Section]] = {}
    run: list[Section] = []
    for section in [*sections, None]:
        if (
            section is not None
            and _ALTERNATIVE.match(section.title)
            and (not run or (run[-1].parent, run[-1].level) == (section.parent, section.level))
        ):
            run.append(section)
            continue
        if section is not None and run and section.level > run[-1].level:
            continue  # a subsection of the last option belongs to it
        for option in run:
            choice_of[option.slug] = (run[0].slug, option)
        run = [section] if section is not None and _ALTERNATIVE.match(section.title) else []
    if not choice_of:
        return
    for draft in drafts:
        if draft.branch is not None:
            continue
        slug = draft.section
        while slug is not None and slug not in choice_of:
            slug = by_slug[slug].parent if slug in by_slug else None
        if slug is not None:
            choice, option = choice_of[slug]
            draft.branch = Branch(choice, option.title, option.line)


def _warn_no_steps(tokens: list[Token], sink: DiagnosticSink) -> None:
    """A page with no steps whose code blocks look like commands: say which, so an author
    sees why nothing would run (indented code, a fence in another language)."""
    found: list[str] = []
    for token in tokens:
        code = token.type in ("code_block", "fence") and token.map
        if code and judge_block(token.content).kind is BlockKind.COMMANDS:
            how = "an indented code block" if token.type == "code_block" else "a fence"
            found.append(f"line {_line(token)} ({how} of commands)")
    if found:
        sink.warning(
            1,
            "no-steps",
            "this page gives no steps, but these look like commands: " + ", ".join(found[:8]),
            "fence commands as ```bash, or write the procedure as a numbered list",
        )


def _section_targets(sections: list[Section]) -> dict[str, tuple[str, str]]:
    """Each section's target and the section that set it: its own annotation's, or the
    nearest enclosing section's."""
    found: dict[str, tuple[str, str]] = {}
    for section in sections:  # a parent always comes before its subsections
        if section.target is not None:
            found[section.slug] = (section.target, section.slug)
        elif section.parent in found:
            found[section.slug] = found[section.parent]
    return found


def _note_section_targets(
    sections: list[Section], steps: tuple[Step, ...], sink: DiagnosticSink
) -> None:
    """Say at each heading with a target which steps it sends there (an inference made
    visible), or that it sends none."""
    for section in sections:
        if section.target is None:
            continue
        count = sum(s.target_section == section.slug for s in steps)
        if count:
            sink.info(
                section.line,
                "section-target",
                f"{count} command step(s) of this section and its subsections run on"
                f" '{section.target}'",
                "a step's own `target:` wins over its section's",
                column=section.annotation_column,
            )
        else:
            sink.warning(
                section.line,
                "section-target",
                f"this section's target '{section.target}' has no effect: none of its"
                " command steps is without a target of its own",
                column=section.annotation_column,
            )


def _settle_ids(
    drafts: list[_Draft],
    front: FrontMatter,
    sink: DiagnosticSink,
    section_targets: dict[str, tuple[str, str]],
) -> tuple[Step, ...]:
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
    step_id_for = UniqueSlugs(set(explicit))
    position: dict[str | None, int] = {}
    steps = []
    for draft in drafts:
        position[draft.section] = position.get(draft.section, 0) + 1
        if draft.attrs and draft.attrs.id:
            step_id, is_explicit = draft.attrs.id, True
        else:
            base = f"{draft.section or 'step'}-{position[draft.section]}"
            step_id, is_explicit = step_id_for(base), False
        inherited = None
        if draft.kind is StepKind.COMMAND and draft.section is not None:
            inherited = section_targets.get(draft.section)
        steps.append(_make_step(draft, step_id, is_explicit, inherited))
    return tuple(steps)


def _make_step(
    draft: _Draft, step_id: str, explicit: bool, inherited: tuple[str, str] | None = None
) -> Step:
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
        command=draft.command or draft.body,
        command_lines=draft.command_lines,
        session=draft.session,
        classes=draft.classes,
        guessed=draft.guessed,
        branch=draft.branch,
        offers=draft.offers,
        prose=draft.prose,
    )
    attrs = draft.attrs
    if inherited is not None and (attrs is None or attrs.target is None):
        step = replace(step, target=inherited[0], target_section=inherited[1])
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
        follow=attrs.follow,
        prompt_env=attrs.prompt_env,
        cwd=attrs.cwd,
        env=attrs.env,
        capture=attrs.capture,
        target=attrs.target or step.target,
        forks=attrs.forks,
        serial=attrs.serial,
        key_columns=tuple(attrs.key_columns.items()),
    )
