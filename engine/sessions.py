"""Terminal sessions in fences: `$ ` prompt lines are commands, the other lines their output.

    ```console
    $ systemctl restart nginx
    $ systemctl is-active nginx
    active
    ```

Pure: a fence's body in, its commands (prompts stripped, continuation lines kept with their
command) and each command's expected output out. Expected output is never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.classify import reads_as_command
from engine.model import SessionCommand

# Fences that hold a transcript by name; shell fences (and unlabelled ones) are sessions only
# when their first line that is not blank or a comment begins with a prompt.
SESSION_LANGUAGES = frozenset({"console", "shell-session", "sh-session", "terminal"})
PROMPTABLE_SHELLS = frozenset({"bash", "sh", "shell", "zsh", ""})

# `$ `, `$> `, `% `, `user@host:path$ `, `[user@host dir]$ `, `sh-4.4$ ` (and their `#` forms).
_PROMPT = re.compile(
    r"^(?:"
    r"\$>?(?: |$)"
    r"|% "
    r"|[\w.-]+@[\w.-]+(?::[^\s$#]*)?[$#%] "
    r"|\[[\w.-]+@[\w.-]+(?: [^\]]*)?\][$#] "
    r"|(?:ba|z)?sh-\d+(?:\.\d+)*[$#] "
    r")"
)
_ROOT_PROMPT = re.compile(r"^# ")  # inside session fences only: in bash `#` is a comment
_PS2 = re.compile(r"^>(?: |$)")
_CONTINUED = re.compile(r"(?:(?<!\\)(?:\\\\)*\\|\|\||&&|\|)\s*$")
_BLOCK_WORD = re.compile(r"(?<![\w$-])(do|done|then|fi|case|esac|\{|\})(?![\w-])")
_OPENERS = frozenset({"do", "then", "case", "{"})
_PARAMETER = re.compile(r"\$\{[^}]*\}")
_LINE_SPECIAL = re.compile(r"['\"#]|\\.?|<<")
_QUOTE_END = {"'": re.compile("'"), '"': re.compile(r'"|\\.')}
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][\w-]*)\2")


@dataclass(frozen=True, slots=True)
class Session:
    """A fence read as a transcript: its commands in order."""

    commands: tuple[SessionCommand, ...]

    @property
    def command_text(self) -> str:
        return "\n".join(c.command for c in self.commands)

    def command_lines(self) -> tuple[int, ...]:
        lines: list[int] = []
        for command in self.commands:
            count = command.command.count("\n") + 1
            lines.extend(range(command.line, command.line + count))
        return tuple(lines)


def is_session_language(language: str) -> bool:
    return language in SESSION_LANGUAGES


def read_session(body: str, language: str, first_line: int) -> Session | None:
    """The fence's body as a session, or None when it is a script (no prompt leads it).

    `first_line` is the source line of the body's first line. A command spanning several
    lines keeps them (its `line` is the prompt's), so `command_lines` maps each back.
    """
    named = language in SESSION_LANGUAGES
    if not named and language not in PROMPTABLE_SHELLS:
        return None
    lines = body.splitlines()
    if not named and not _led_by_prompt(lines):
        if language or not _unlabelled_root_transcript(lines):
            return None
        named = True
    # `# ` is a root prompt only in a root transcript: one whose first prompt is `# `.
    # Elsewhere a `# ` line is output (a config file's comment shown by `cat`), never run.
    named = named and _root_transcript(lines)
    commands: list[SessionCommand] = []
    index = 0
    while index < len(lines):
        text = lines[index]
        prompt = _prompt_length(text, named)
        if prompt is None:
            index += 1  # text before the first prompt: a comment or output of nothing shown
            continue
        start = index
        command_lines = [text[prompt:]]
        offsets = [prompt]
        index += 1
        reader = _Reader()
        reader.feed(command_lines[0])
        while index < len(lines) and (
            reader.incomplete or (_PS2.match(lines[index]) and reader.depth > 0)
        ):
            line = _PS2.sub("", lines[index], count=1)  # PS2 `> ` is a prompt too
            command_lines.append(line)
            reader.feed(line)
            offsets.append(len(lines[index]) - len(line))
            index += 1
        output: list[str] = []
        while index < len(lines) and _prompt_length(lines[index], named) is None:
            output.append(lines[index])
            index += 1
        while output and not output[-1].strip():
            output.pop()
        commands.append(
            SessionCommand(
                first_line + start, "\n".join(command_lines), "\n".join(output), tuple(offsets)
            )
        )
    if not commands:
        return None
    # A command's continuation lines are consecutive in the source: keep only real commands.
    return Session(tuple(c for c in commands if c.command.strip()))


def _led_by_prompt(lines: list[str]) -> bool:
    for text in lines:
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        return _PROMPT.match(text) is not None
    return False


def prompt_lines(body: str) -> list[int]:
    """0-based lines of a script that begin with a prompt (`$ `, `user@host:~$ `): mistakes,
    since the shell would run `$` as a command."""
    return [
        n
        for n, text in enumerate(body.splitlines())
        if _PROMPT.match(text) and not text.startswith("% ")
    ]


def _unlabelled_root_transcript(lines: list[str]) -> bool:
    """An unlabelled block of `# command` lines and their output (a root shell copied from
    a terminal), told from a commented script: every `# ` line reads as a command, and the
    other lines, at least one, are not commands but output."""
    shown = [text for text in lines if text.strip()]
    roots = [text[2:] for text in shown if _ROOT_PROMPT.match(text)]
    others = [text for text in shown if not _ROOT_PROMPT.match(text)]
    return (
        bool(shown and roots and others)
        and _ROOT_PROMPT.match(shown[0]) is not None
        and all(reads_as_command(text) for text in roots)
        and not any(reads_as_command(text) or text.startswith("#") for text in others)
    )


def _root_transcript(lines: list[str]) -> bool:
    for text in lines:
        if _ROOT_PROMPT.match(text):
            return True
        if _PROMPT.match(text):
            return False
    return False


def _prompt_length(text: str, named: bool) -> int | None:
    match = _PROMPT.match(text) or (_ROOT_PROMPT.match(text) if named else None)
    return match.end() if match else None


class _Reader:
    """Reads a command line by line: whether it goes on (`incomplete`), and how many `do`,
    `then`, `case` or `{` blocks are open (`depth`), whose next lines a shell prompts `> `."""

    def __init__(self) -> None:
        self.quote = ""
        self.heredocs: list[tuple[str, bool]] = []
        self.depth = 0
        self.continued = False

    @property
    def incomplete(self) -> bool:
        return bool(self.quote or self.heredocs or self.continued)

    def feed(self, line: str) -> None:
        if self.heredocs and not self.quote:
            delimiter, strip_tabs = self.heredocs[0]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                self.heredocs.pop(0)
            return
        code: list[str] = []  # the line's unquoted text, for block words
        index = 0
        while index < len(line):
            if self.quote:
                end = _QUOTE_END[self.quote].search(line, index)
                if end is None:
                    break  # the quote goes on over the next line
                index = end.end()
                if end.group(0) == self.quote:
                    self.quote = ""
                continue
            match = _LINE_SPECIAL.search(line, index)
            stop = match.start() if match else len(line)
            code.append(line[index:stop])
            if match is None:
                break
            token = match.group(0)
            if token in ("'", '"'):
                self.quote = token
                index = match.end()
            elif token == "#":
                if stop == 0 or line[stop - 1] in " \t;|&(":
                    break
                index = match.end()
            elif token.startswith("\\"):
                index = match.end()
            else:
                heredoc = _HEREDOC.match(line, stop)
                if heredoc and not line.startswith("<<<", stop):
                    self.heredocs.append((heredoc.group(3), heredoc.group(1) == "-"))
                    index = heredoc.end()
                else:
                    index = stop + 3
        for word in _BLOCK_WORD.findall(_PARAMETER.sub(" ", " ".join(code))):
            self.depth += 1 if word in _OPENERS else -1
        self.continued = not self.quote and bool(_CONTINUED.search(line))
