"""Placeholders and never-set variables: the parameters a runbook asks for without declaring them.

    kubectl drain <node-name> --ignore-daemonsets      → {{ node_name }}, asked at the start
    TOKEN='<your api token>'                           → TOKEN={{ token }}
    curl -H "Authorization: Bearer YOUR_TOKEN" ...     → {{ your_token }}
    kubectl -n $NAMESPACE get pods                     → NAMESPACE, asked and exported
    export REGION=eu-west-1   (Runme's promptEnv: yes) → REGION={{ region }}, default eu-west-1

A step with Runme's `promptEnv: no` is left as written: nothing in it is asked.

Pure: the steps' commands in, the implicit parameters, the rewritten commands and one note per
parameter out. A command is read by a small scanner that knows quotes, comments, here-documents
and templates, so `'$HOME'`, `# <example>` and `{{ x }}` are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from engine.commands import unquote
from engine.diagnostics import DiagnosticSink
from engine.model import Param, Step, StepKind

# Set by the system, the login, the shell or the engine: never asked.
STANDARD_VARIABLES = frozenset(
    """
    HOME PATH USER LOGNAME PWD OLDPWD HOSTNAME HOSTTYPE OSTYPE MACHTYPE SHELL SHLVL TERM LANG
    LANGUAGE TZ TMPDIR TEMP TMP EDITOR VISUAL PAGER MAIL DISPLAY COLUMNS LINES UID EUID PPID
    GROUPS RANDOM SECONDS LINENO BASHPID BASH BASH_VERSION BASH_SOURCE BASH_REMATCH BASH_ARGV
    FUNCNAME PIPESTATUS REPLY IFS PS1 PS2 PS3 PS4 OPTARG OPTIND OPTERR HISTFILE HISTSIZE
    PROMPT_COMMAND SUDO_USER SUDO_UID SUDO_GID SSH_AUTH_SOCK SSH_CLIENT SSH_CONNECTION SSH_TTY
    XDG_RUNTIME_DIR XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME XDG_STATE_HOME KUBECONFIG
    GOPATH GOROOT JAVA_HOME VIRTUAL_ENV HTTP_PROXY HTTPS_PROXY NO_PROXY ALL_PROXY CI
    RUNBOOK RUNBOOK_PATH RUNBOOK_PYTHON RUNBOOK_JOURNAL
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
_STANDARD_PREFIXES = ("LC_", "BASH_", "XDG_", "SSH_", "RUNBOOK_")

_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)([^}]*)\}|\$([A-Za-z_]\w*)")
_DEFAULTED = re.compile(r"^:?[-=+]")  # ${V:-x}, ${V-x}, ${V:=x}, ${V:+x}: not asked
_ASSIGNED = re.compile(r"(?:^|(?<=[\s;&|(`]))([A-Za-z_]\w*)(?:\[[^\]]*\])?\+?=")
# Words a template cannot use as a name: `{{ none }}` is a constant, `{{ if }}` a syntax error.
_JINJA_WORDS = frozenset(
    (
        "and",
        "or",
        "not",
        "if",
        "else",
        "elif",
        "in",
        "is",
        "true",
        "false",
        "none",
        "for",
        "recursive",
        "with",
        "without",
        "import",
        "from",
        "as",
        "set",
        "block",
        "macro",
        "call",
        "filter",
        "endif",
        "endfor",
        "loop",
    )
)
_ASSIGNED_TO = re.compile(r"(?:^|(?<=[\s;&|(]))([A-Za-z_]\w*)=$")  # VAR= before a placeholder
_DECLARED = re.compile(
    r"\b(?:export|local|declare|typeset|readonly|read|mapfile|readarray|getopts)\b"
    r"((?:[ \t]+(?:-\S*|\"[^\"\n]*\"|'[^'\n]*'|[A-Za-z_]\w*))+)"
)
# A value asked for under such a name is kept out of the journal, the screen and the site.
_SECRET_NAME = re.compile(r"token|passw|secret|api_?key|credential|private_key")
_KEYWORD_HINT = re.compile(
    r"export|local|declare|typeset|readonly|read|mapfile|getopts|for|select|printf"
)
_LOOP = re.compile(r"\b(?:for|select)[ \t]+([A-Za-z_]\w*)\b|\bprintf[ \t]+-v[ \t]+([A-Za-z_]\w*)")
_PLACEHOLDER = re.compile(r"(?<![<\w])<([A-Za-z][A-Za-z0-9 _.,:/@-]{0,60}?)>(?!>)")
_TOKEN = re.compile(r"(?<![\w${])(YOUR_[A-Z0-9_]*[A-Z0-9]|CHANGE_?ME|REPLACE_?ME)(?![\w=])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")  # <ops@example.com> is an address
# Template pages write `kubectl logs [pod-name] -n [namespace]`: a bracketed name, never an
# index (`.items[0]`, `${a[i]}`), a test (`[ -f x ]`), a class (`[A-Z]`, `[0-9]`) or an INI
# section on its own line (`[default]` in a here-document).
_BRACKETED = re.compile(
    r"(?<![\w\]\[$.{(\\])\[([A-Za-z][A-Za-z0-9]*(?:[-_ ][A-Za-z0-9]+){0,5})\](?![\w\[(=])"
)
_BRACKET_NOUNS = frozenset(
    """
    namespace pod node name host hostname service cluster deployment region environment env
    project bucket database db table user username password token version tag image
    container instance zone account id ip address port path file url domain server release
    branch secret key value context subscription tenant
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
_LOG_LEVELS = frozenset(
    "ERROR WARN WARNING INFO DEBUG TRACE FATAL CRITICAL OK FAIL FAILED PASS".split()  # noqa: SIM905
)
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_HEREDOC = re.compile(r"<<(-?)[ \t]*(['\"]?)([A-Za-z_][\w-]*)\2")
_ANYTHING = re.compile(r"[$<=\[]|YOUR_|ME\b|\b(?:read|for|select|mapfile|readarray|getopts)\b")
_SPECIAL = re.compile(r"[\n'\"\\#]|<<")
_DOUBLE_END = re.compile(r'"|\\.', re.S)
_NOT_NEWLINE = re.compile(r"[^\n]")


@dataclass(slots=True)
class _Found:
    """An implicit parameter being collected: its first site and how to ask for it."""

    name: str
    line: int
    column: int
    description: str
    origin: str  # what the text said: `<node-name>`, `$NAMESPACE`, `YOUR_TOKEN`
    default: str | None = None  # the value an export wrote (promptEnv)


@dataclass(slots=True)
class ImplicitParams:
    """What the text asks for: parameters in order of first use, and the rewritten steps."""

    params: list[Param] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def find_implicit(
    steps: Iterable[Step],
    declared: Iterable[Param],
    env: Iterable[str],
    sink: DiagnosticSink,
) -> ImplicitParams:
    """Turn placeholders into parameter templates and collect never-set variables.

    A variable counts as set once any earlier step (or an earlier point of the same step)
    assigns, exports, reads or loops over it; front-matter `env`, declared parameters and
    captures (exported in upper case) are set from the start.
    """
    steps = list(steps)
    params = {p.name: p for p in declared}
    known = {name.upper() for name in params} | set(env)
    known |= {s.capture.upper() for s in steps if s.capture}
    placeholder_names: dict[str, str] = {}
    found: dict[str, _Found] = {}
    result = ImplicitParams()
    for step in steps:
        if step.kind is StepKind.MANUAL and step.offers:
            # A command offered in a list item (`--cert=<path-to-cert>`) asks for its values
            # as a command step does, rather than handing `<` to the shell as a redirection.
            offers = []
            for offer in step.offers:
                edits = _placeholder_edits(
                    offer, _masks(offer)[2], step, params, found, placeholder_names
                )
                offers.append(_edited(offer, edits) if edits else offer)
            result.steps.append(replace(step, offers=tuple(offers)))
            continue
        if step.kind is not StepKind.COMMAND or not step.run or step.interpreter:
            result.steps.append(step)
            continue
        known |= {name for name, _ in step.env}
        command = step.command or step.body
        if step.prompt_env is False:
            known |= set(_assignments(_masks(command)[0]))
            result.steps.append(step)  # Runme's promptEnv: no: never asked
            continue
        if not _ANYTHING.search(command):
            result.steps.append(step)  # no variable, placeholder, token or assignment
            continue
        code, expand, plain = _masks(command)
        assigned = _assignments(code)
        first_set = {name: min(at) for name, at in assigned.items()}
        for match in _VARIABLE.finditer(expand) if "$" in expand else ():
            name = match.group(1) or match.group(3)
            rest = match.group(2) or ""
            if (
                not name.isupper()
                or name in known
                or name in STANDARD_VARIABLES
                or name.startswith(_STANDARD_PREFIXES)
                or _DEFAULTED.match(rest)
                or first_set.get(name, len(command)) < match.start()
            ):
                continue
            lower = name.lower()
            if lower in params or lower in found:
                continue
            line, column = _position(step, command, match.start())
            found[lower] = _Found(
                lower, line, column, f"${name}, which the runbook never sets", f"${name}"
            )
        known |= set(assigned)
        edits = _placeholder_edits(command, plain, step, params, found, placeholder_names)
        if step.prompt_env:
            edits = sorted(edits + _export_edits(command, code, step, params, found, edits))
        if edits:
            step = replace(step, command=_edited(command, edits))
        result.steps.append(step)
    for item in sorted(found.values(), key=lambda f: (f.line, f.column)):
        sink.info(
            item.line,
            "implicit-param",
            f"{item.origin} is asked as parameter '{item.name}' (from the text)",
            f"declare '{item.name}' under `params:` to describe it or give it a default",
            column=item.column,
        )
        result.params.append(
            Param(
                name=item.name,
                line=item.line,
                description=item.description,
                default=item.default,
                required=item.default is None,
                secret=bool(_SECRET_NAME.search(item.name)),
                implicit=True,
            )
        )
    return result


def _placeholder_edits(
    command: str,
    plain: str,
    step: Step,
    params: dict[str, Param],
    found: dict[str, _Found],
    names: dict[str, str],
) -> list[tuple[int, int, str]]:
    edits: list[tuple[int, int, str]] = []
    hits = []
    if "<" in plain:
        hits += [(m, _words(m.group(1)), f"<{m.group(1)}>") for m in _PLACEHOLDER.finditer(plain)]
    if "YOUR_" in plain or "ME" in plain:
        hits += [(m, m.group(1).lower(), m.group(1)) for m in _TOKEN.finditer(plain)]
    if "[" in plain:
        hits += [
            (m, _words(m.group(1)), f"[{m.group(1)}]")
            for m in _BRACKETED.finditer(plain)
            if _bracket_placeholder(m, plain)
        ]
    if not hits:
        return []
    markup = set(re.findall(r"</([A-Za-z][\w-]*)>", command))
    for match, key, origin in sorted(hits, key=lambda h: h[0].start()):
        content = match.group(1)
        if origin.startswith("<") and (
            content.rstrip() != content
            or content.endswith("/")
            or "://" in content
            or _EMAIL.fullmatch(content)
            or content.split()[0] in markup
        ):
            continue
        if not key or not re.match(r"[a-z_]", key):
            continue
        start, end = match.start(), match.end()
        if start > 0 and end < len(command) and command[start - 1] == command[end] in "'\"":
            start, end = start - 1, end + 1  # the whole quoted word: the template quotes it
        assignment = None
        if start and command[start - 1] == "=":
            assignment = _ASSIGNED_TO.search(command, max(0, start - 100), start)
        if key not in names:
            chosen = assignment.group(1).lower() if assignment else key
            names[key] = chosen + "_value" if chosen in _JINJA_WORDS else chosen
        name = names[key]
        if name not in params and name not in found:
            line, column = _position(step, command, match.start())
            found[name] = _Found(name, line, column, _describe(content, origin), origin)
        edits.append((start, end, "{{ " + name + " }}"))
    return edits


_EXPORT = re.compile(r"(?:^|(?<=[\s;&|(]))export[ \t]+([A-Za-z_]\w*)=")
_EXPORT_VALUE = re.compile(r"(?:'[^']*'|\"(?:[^\"\\$`]|\\.)*\"|[^\s;&|'\"$`<>(){}\\])+")


def _export_edits(
    command: str,
    code: str,
    step: Step,
    params: dict[str, Param],
    found: dict[str, _Found],
    taken: list[tuple[int, int, str]],
) -> list[tuple[int, int, str]]:
    """Runme's promptEnv: each `export NAME=VALUE` with a literal value asks for NAME, the
    written value as its default. Computed values (`$( )`, `$VAR`) are left to run."""
    edits: list[tuple[int, int, str]] = []
    for match in _EXPORT.finditer(code):
        value = _EXPORT_VALUE.match(command, match.end())
        end = value.end() if value else match.end()
        if end < len(command) and command[end] not in " \t\n;&|)":
            continue  # the value goes on with something computed
        if any(start < end and match.end() < stop for start, stop, _ in taken):
            continue  # a placeholder already asks for it
        name = match.group(1).lower()
        name = name + "_value" if name in _JINJA_WORDS else name
        written = unquote(value.group(0)) if value else ""
        if name not in params and name not in found:
            line, column = _position(step, command, match.start())
            origin = f"export {match.group(1)}"
            found[name] = _Found(name, line, column, f"{origin} (promptEnv)", origin, written)
        edits.append((match.end(), end, "{{ " + name + " }}"))
    return edits


def _edited(command: str, edits: list[tuple[int, int, str]]) -> str:
    parts, position = [], 0
    for start, end, text in edits:  # in order, never overlapping
        parts += [command[position:start], text]
        position = end
    parts.append(command[position:])
    return "".join(parts)


def _words(text: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))


def _bracket_placeholder(match: re.Match[str], text: str) -> bool:
    """Whether `[words]` names a value to fill in: words joined by `-`, `_` or a space, a
    NAME_IN_CAPITALS, or a noun such as `[namespace]`; never alone on its line."""
    content: str = match.group(1)
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    line = text[start : len(text) if end < 0 else end]
    if not line.replace(match.group(0), "").strip():
        return False  # `[default]` on its own line: an INI section a here-document writes
    if any(c in content for c in "-_ "):
        return sum(ch.isalpha() for ch in content) >= 3
    if content.isupper():  # `--replicas=[N]`: one capital letter only as an option's value
        short = len(content) < 3 and text[match.start() - 1 : match.start()] != "="
        return not short and content not in _LOG_LEVELS
    return content.lower() in _BRACKET_NOUNS


def _describe(content: str, origin: str) -> str:
    if origin.startswith(("<", "[")):
        return " ".join(re.findall(r"[A-Za-z0-9]+", content))
    return f"{origin} in the text"


def _position(step: Step, command: str, offset: int) -> tuple[int, int]:
    before = command[:offset]
    row = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return step.source_line(row), step.source_column(row, column)


def _assignments(code: str) -> dict[str, list[int]]:
    """Where each variable is set in the command: `X=`, export, read, for, printf -v, ..."""
    found: dict[str, list[int]] = {}
    if "=" in code:
        for match in _ASSIGNED.finditer(code):
            found.setdefault(match.group(1), []).append(match.start())
    if not _KEYWORD_HINT.search(code):
        return found
    for match in _DECLARED.finditer(code):
        for word in re.finditer(r"[A-Za-z_]\w*", match.group(1)):
            if match.group(1)[word.start() - 1 : word.start()] != "-":
                found.setdefault(word.group(0), []).append(match.start())
    for match in _LOOP.finditer(code):
        found.setdefault(match.group(1) or match.group(2), []).append(match.start())
    return found


def _masks(command: str) -> tuple[str, str, str]:
    """Three copies of the command, the same length, with what does not apply blanked.

    `code`: unquoted shell words only; `expand`: where `$NAME` expands (unquoted, double
    quotes, unquoted here-documents); `plain`: everything but comments and templates.
    """
    text = _TEMPLATE.sub(_blanked, command) if "{" in command else command
    if not _SPECIAL.search(text):
        return text, text, text
    code, expand, plain = list(text), list(text), list(text)
    pending: list[tuple[str, bool, bool]] = []  # here-documents opened on this line
    index, size = 0, len(text)

    def blank(target: list[str], start: int, end: int) -> None:
        target[start:end] = _blanked_text(text[start:end])

    while True:
        match = _SPECIAL.search(text, index)
        if match is None:
            break
        at, char = match.start(), match.group(0)
        if char == "'":
            end = text.find("'", at + 1)
            end = size if end < 0 else end
            blank(code, at + 1, end)
            blank(expand, at + 1, end)
            index = end + 1
        elif char == '"':
            end = at + 1
            while True:
                found = _DOUBLE_END.search(text, end)
                if found is None or found.group(0) == '"':
                    end = size if found is None else found.start()
                    break
                end = found.end()  # a backslash and the character it escapes
            blank(code, at + 1, end)
            index = end + 1
        elif char == "\\":
            blank(code, at, at + 2)
            blank(expand, at, at + 2)
            index = at + 2
        elif char == "#":
            if at and text[at - 1] not in " \t\n;|&(":
                index = at + 1
                continue
            end = text.find("\n", at)
            end = size if end < 0 else end
            for target in (code, expand, plain):
                blank(target, at, end)
            index = end
        elif char == "<<":
            heredoc = _HEREDOC.match(text, at)
            if heredoc and not text.startswith("<<<", at):
                pending.append((heredoc.group(3), heredoc.group(1) == "-", not heredoc.group(2)))
                index = heredoc.end()
            else:
                index = at + 3
        else:  # a newline: the bodies of the here-documents opened on the line end here
            index = at + 1
            for delimiter, strip_tabs, expands in pending:
                while index < size:
                    end = text.find("\n", index)
                    end = size if end < 0 else end
                    line = text[index:end]
                    blank(code, index, end)
                    if not expands:
                        blank(expand, index, end)
                    index = end + 1
                    if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                        break
            pending = []
    return "".join(code), "".join(expand), "".join(plain)


def _blanked(match: re.Match[str]) -> str:
    return _blanked_text(match.group(0))


def _blanked_text(text: str) -> str:
    return _NOT_NEWLINE.sub(" ", text) if "\n" in text else " " * len(text)
