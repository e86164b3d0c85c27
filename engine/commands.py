"""What a block of shell text runs: its simple commands, with wrappers and assignments peeled off.

The inference rules (danger, terminal use, block kinds) judge programs and their arguments, not
words anywhere in the text, so they share this one light reading of the shell. Pure.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_OPERATORS = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "{", "}"})
_REDIRECT_IN = frozenset({"<", "<<", "<<<", "<<-"})
# Words that run the rest of the line as a command; the value is how many options take an argument.
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nohup": frozenset(),
    "time": frozenset(),
    "exec": frozenset({"-a"}),
    "command": frozenset(),
    "builtin": frozenset(),
    "nice": frozenset({"-n"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "stdbuf": frozenset(),
    "chronic": frozenset(),
    "unbuffer": frozenset(),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
}
KEYWORDS = frozenset(
    {
        "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
        "case", "esac", "in", "function", "select", "!", "[[", "]]", "[", "{", "}",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimpleCommand:
    """One command of a pipeline or list: its words from the program on, and where it stands.

    `line` is 1-based within the text; `stdin_fed` says its input comes from a pipe, a file or a
    here-document (so a console program reads a script, not the operator).
    """

    words: tuple[str, ...]
    line: int
    stdin_fed: bool = False
    piped_out: bool = False

    @property
    def program(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def name(self) -> str:
        """The program's base name, as a rule names it (`/usr/bin/psql` → `psql`)."""
        return self.program.rsplit("/", 1)[-1]

    @property
    def args(self) -> tuple[str, ...]:
        return self.words[1:]


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line, text) of each command line: continuations joined, here-document bodies
    and blank or comment-only lines left out."""
    pending: list[str] = []
    start = 0
    heredocs: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        if heredocs:
            if line.strip() == heredocs[0]:
                heredocs.pop(0)
            continue
        if not pending:
            start = number
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(pending)
        if open_quote(joined):
            pending = [joined + "\n"]
            continue
        pending = []
        heredocs.extend(m.group(2) for m in _HEREDOC.finditer(joined))
        yield start, joined
    if pending:
        yield start, " ".join(pending)


def open_quote(text: str) -> str:
    """The quote left open at the end of the text ('' when every quote is closed)."""
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif char == "\\":
            index += 1
        elif quote == '"':
            quote = "" if char == '"' else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] in " \t;"):
            break
        index += 1
    return quote


def split_words(line: str) -> list[str]:
    """Shell words and operators of one line; an unclosed quote ends the line where it opens."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    try:
        words.extend(lexer)
    except ValueError:
        return words
    return words


def simple_commands(text: str) -> list[SimpleCommand]:
    """Every simple command in the text, in order, each with wrappers and assignments removed."""
    found: list[SimpleCommand] = []
    for number, line in logical_lines(text):
        current: list[str] = []
        fed = False
        previous_pipe = False
        tokens = split_words(line)
        index = 0
        while index <= len(tokens):
            token = tokens[index] if index < len(tokens) else ";"
            if token in _OPERATORS or index == len(tokens):
                words = peel(current)
                if words:
                    found.append(
                        SimpleCommand(
                            tuple(words), number, fed or previous_pipe, token in ("|", "|&")
                        )
                    )
                previous_pipe = token in ("|", "|&")
                current, fed = [], False
            elif token in _REDIRECT_IN:
                fed = True
                index += 1  # the file or here-document word
            elif token in (">", ">>", ">&", "&>", "<>", ">|"):
                index += 1
            else:
                current.append(token)
            index += 1
    return found


def peel(words: list[str]) -> list[str]:
    """The words from the real program on: leading assignments, keywords and wrappers removed.
    A wrapper with nothing after it (`sudo -i`) is itself the program."""
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word in KEYWORDS:
            index += 1
            continue
        options = _WRAPPERS.get(word.rsplit("/", 1)[-1])
        if options is None:
            break
        wrapper = index
        index += 1
        while index < len(words) and words[index].startswith("-"):
            index += 2 if words[index] in options else 1
        if word == "timeout" and index < len(words):
            index += 1
        if index >= len(words):
            return words[wrapper:]
    return words[index:]


def option_given(args: tuple[str, ...], *names: str) -> bool:
    """Whether any of the options is given, as `-f`, `--follow`, `--follow=...` or within a
    cluster of short flags (`-it`, `-fn`)."""
    for arg in args:
        if arg == "--":
            return False
        for name in names:
            if arg == name or (name.startswith("--") and arg.startswith(name + "=")):
                return True
            cluster = len(name) == 2 and name[0] == "-" and re.fullmatch(r"-[A-Za-z]+", arg)
            if cluster and name[1] in arg[1:]:
                return True
    return False


def after_double_dash(args: tuple[str, ...]) -> tuple[str, ...] | None:
    """The words after `--` (the command an exec runs), or None when there is no `--`."""
    if "--" not in args:
        return None
    return args[args.index("--") + 1 :]


def positional(args: tuple[str, ...], with_value: frozenset[str] = frozenset()) -> list[str]:
    """The arguments that are not options (options in `with_value` take the next word)."""
    found: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            found.extend(args[index + 1 :])
            break
        if arg.startswith("-") and len(arg) > 1:
            if arg in with_value:
                index += 1
        else:
            found.append(arg)
        index += 1
    return found


def first_program(text: str) -> str:
    """The base name of the first program the text runs ('' when none)."""
    commands = simple_commands(text)
    return commands[0].name if commands else ""


def quote_words(words: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(w) for w in words)
