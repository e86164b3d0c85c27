"""The runbook model: immutable data built by parse, read by plan, run and publish.

Every element keeps the 1-based line of the source it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from engine.diagnostics import Diagnostic


class StepKind(StrEnum):
    COMMAND = "command"
    MANUAL = "manual"


class Confirm(StrEnum):
    """How the operator approves a step: ask (default), never ask, or type the step id."""

    ASK = "ask"
    NO = "no"
    DANGER = "danger"


FAILURE_ACTIONS = ("abort", "continue", "ask", "stop")  # stop: abort, in fan-out words


@dataclass(frozen=True, slots=True)
class Param:
    """A runbook parameter declared in front matter."""

    name: str
    line: int
    description: str = ""
    default: str | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    secret: bool = False
    required: bool = True
    implicit: bool = False  # found in the text (a placeholder or a never-set variable)
    type: str = "str"  # str, int, float or bool: how a value is read and checked


@dataclass(frozen=True, slots=True)
class Expect:
    """An answer typed when a program prints text matching `prompt` (a regex)."""

    prompt: str
    send: str
    line: int
    secret: bool = False
    multiline: bool = False  # the answer may hold line breaks (typed as several lines)


@dataclass(frozen=True, slots=True)
class SessionCommand:
    """One prompt command of a terminal session and the output the author showed for it.

    `line` is the source line of the prompt; `expected` is never run.
    """

    line: int
    command: str
    expected: str = ""
    offsets: tuple[int, ...] = ()  # per command line: the prompt's width left out of it


@dataclass(frozen=True, slots=True)
class Inference:
    """A setting the engine concluded from a step's content (not written by the author), and
    why: shown by `show`, `check` and the site; an annotation of the same key overrides it."""

    key: str
    value: str
    reason: str
    line: int


@dataclass(frozen=True, slots=True)
class Branch:
    """A step's place among alternatives the operator chooses between (content tabs, or sibling
    sections such as "Option 1" / "Option 2" or "If ..."): the choice and this option's label."""

    choice: str
    label: str
    line: int


@dataclass(frozen=True, slots=True)
class Target:
    """A named place steps run on: an ssh destination, an exec command that gives a shell
    (a template: `kubectl exec -i -t {{ pod }} --`), or a group of targets."""

    name: str
    line: int
    ssh: str | None = None
    exec: str | None = None
    group: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Section:
    """A heading; `parent` is the slug of the enclosing section, if any. Its annotation
    (`## Restart the web tier {target: web}`) is kept as written, so the site can drop it."""

    slug: str
    title: str
    level: int
    line: int
    parent: str | None = None
    target: str | None = None  # where its command steps run, and its subsections' (unless set)
    annotation: str = ""
    annotation_column: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the operator does: a command block or a manual checklist item.

    `line` is the fence (or task item) line; `body_line` the first line of the body, so a
    template expression on body line k is at `body_line + k`. `body` is the author's text (what
    the site shows); `command` is what runs: prompts and example output of a terminal session
    left out, placeholders turned into parameter templates. `command_lines` gives the source
    line of each command line when they differ from the body's (a session).
    """

    id: str
    kind: StepKind
    line: int
    body: str
    section: str | None = None
    body_line: int = 0
    language: str = ""
    interpreter: str | None = None
    run: bool = True
    needs: tuple[str, ...] = ()
    when: str | None = None
    confirm: Confirm = Confirm.ASK
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    on_failure: str = "abort"
    expect: tuple[Expect, ...] = ()
    interactive: bool = False
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    capture: str | None = None
    checked: bool = False
    explicit_id: bool = False
    key_columns: tuple[tuple[str, int], ...] = ()
    info_extra: str = ""
    follow: bool = False  # runs until stopped: Ctrl-C ends it and the run goes on
    guessed: bool = False  # an unlabelled block the engine judged to be commands
    branch: Branch | None = None
    offers: tuple[str, ...] = ()  # commands a manual step offers to run (inline code)
    prose: str = ""  # the Markdown between the previous step and this one, shown before it
    inferred: tuple[Inference, ...] = ()
    command: str = ""
    command_lines: tuple[int, ...] = ()
    session: tuple[SessionCommand, ...] = ()
    classes: tuple[str, ...] = ()  # fence classes kept for the site: {.line-numbers}
    prompt_env: bool | None = None  # Runme's promptEnv: exports asked (True), never asked (False)
    target: str | None = None  # where it runs: a target's name (or a template); None: here
    target_section: str | None = None  # the section whose annotation gave `target`, if one did
    forks: int | None = None  # at most this many hosts of a group at once
    serial: int | None = None  # hosts at a time, in order (a rolling change): wins over forks

    def __post_init__(self) -> None:
        if not self.command and self.kind is StepKind.COMMAND:
            object.__setattr__(self, "command", self.body)  # a step built from its body alone

    @property
    def expected(self) -> str:
        """The example output a terminal session shows, all commands together."""
        return "\n".join(c.expected for c in self.session if c.expected)

    def source_column(self, command_line: int, column: int) -> int:
        """The source column of `column` on the command's line `command_line` (both 1-based)."""
        offsets = [o for c in self.session for o in c.offsets]
        if 0 < command_line <= len(offsets):
            return column + offsets[command_line - 1]
        return column

    def source_line(self, command_line: int) -> int:
        """The source line of the command's 1-based line `command_line`."""
        if self.command_lines and 0 < command_line <= len(self.command_lines):
            return self.command_lines[command_line - 1]
        return self.body_line + command_line - 1

    def column_of(self, key: str) -> int:
        """The column of an annotation key on the fence line (1 when unknown)."""
        return dict(self.key_columns).get(key, 1)

    def annotated(self, key: str) -> bool:
        """Whether the author set this annotation key (so no inference overrides it)."""
        return any(name == key for name, _ in self.key_columns)

    def inference(self, key: str) -> Inference | None:
        return next((i for i in self.inferred if i.key == key), None)


@dataclass(frozen=True, slots=True)
class Runbook:
    """A parsed runbook: metadata from front matter, sections, steps, and what parse found wrong."""

    path: str
    title: str
    steps: tuple[Step, ...] = ()
    sections: tuple[Section, ...] = ()
    params: tuple[Param, ...] = ()
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    shell: str = "bash"
    cwd: str | None = None
    timeout: float | None = None
    targets: tuple[Target, ...] = ()
    ssh_config: str | None = None
    front_matter_keys: tuple[tuple[str, int], ...] = ()
    text: str = ""  # the source text and its sha256, set by the loader
    digest: str = ""
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def section(self, slug: str) -> Section | None:
        return next((s for s in self.sections if s.slug == slug), None)

    def section_and_below(self, slug: str) -> frozenset[str]:
        """The slugs of a section and of all its subsections."""
        slugs = {slug}
        for candidate in self.sections:  # in document order: a parent before its children
            if candidate.parent in slugs:
                slugs.add(candidate.slug)
        return frozenset(slugs)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)
