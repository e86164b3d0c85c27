"""What a block of shell text runs: its simple commands, with wrappers and assignments peeled off.

The inference rules (danger, terminal use, block kinds) judge programs and their arguments, not
words anywhere in the text, so they share this one light reading of the shell. Pure.
"""

from __future__ import annotations

import functools
import re
import shlex
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


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One command line: continuations and multi-line quotes joined, with its shell words."""

    line: int
    text: str
    words: tuple[str, ...]


def logical_lines(text: str) -> tuple[CommandLine, ...]:
    """Each command line of a shell text, here-document bodies and blank or comment-only lines
    left out. Cached: the inference rules each read the same step."""
    return _logical_lines(text)


@functools.lru_cache(maxsize=256)
def _logical_lines(text: str) -> tuple[CommandLine, ...]:
    found: list[CommandLine] = []
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
            stripped = line.lstrip()
            if not stripped or stripped[0] == "#":
                continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(pending)
        words, closed = tokenize(joined)
        if not closed and number < text.count("\n") + 1:
            pending = [joined + "\n"]
            continue
        pending = []
        if "<<" in joined:
            heredocs.extend(m.group(2) for m in _HEREDOC.finditer(joined))
        found.append(CommandLine(start, joined, tuple(words)))
    if pending:
        joined = " ".join(pending)
        found.append(CommandLine(start, joined, tuple(tokenize(joined)[0])))
    return tuple(found)


# One shell token: blanks, a comment (only where a word could start), an operator, or a word
# made of unquoted characters, escapes and complete quoted strings. A regex, not shlex: this
# runs on every line of every page and must cost what markdown-it costs, not ten times more.
_TOKEN = re.compile(
    r"""(?P<blank>[ \t\n]+)
    |(?P<comment>\#[^\n]*)
    |(?P<op>&&|\|\||;;|\|&|<<<|<<-|<<|>>|>&|&>|>\||[;&|()<>])
    |(?P<word>(?:\$'(?:[^'\\]|\\.)*'|[^\s;&|()<>'"\\]|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+)
    """,
    re.VERBOSE | re.DOTALL,
)
_QUOTING = re.compile(r"""\$'((?:[^'\\]|\\.)*)'|'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)""", re.DOTALL)


def unquote(word: str) -> str:
    """A shell word's value: quotes removed, backslash escapes resolved."""
    if "'" not in word and '"' not in word and "\\" not in word:
        return word
    return _QUOTING.sub(lambda m: next(g for g in m.groups() if g is not None), word)


def tokenize(line: str) -> tuple[list[str], bool]:
    """Shell words (quotes removed) and operators of a line, and whether every quote in it is
    closed (an unclosed quote ends the words where it opens)."""
    words: list[str] = []
    covered = 0
    for blank, comment, op, word in _TOKEN.findall(line):
        covered += len(blank) + len(comment) + len(op) + len(word)
        if word:
            words.append(unquote(word))
        elif op:
            words.append(op)
    return words, covered == len(line)


def split_words(line: str) -> list[str]:
    """Shell words and operators of one line; an unclosed quote ends the line where it opens."""
    return tokenize(line)[0]


def simple_commands(text: str) -> tuple[SimpleCommand, ...]:
    """Every simple command in the text, in order, each with wrappers and assignments removed."""
    return _simple_commands(text)


@functools.lru_cache(maxsize=256)
def _simple_commands(text: str) -> tuple[SimpleCommand, ...]:
    found: list[SimpleCommand] = []
    for command_line in logical_lines(text):
        current: list[str] = []
        fed = False
        previous_pipe = False
        tokens = command_line.words
        index = 0
        while index <= len(tokens):
            token = tokens[index] if index < len(tokens) else ";"
            if token in _OPERATORS or index == len(tokens):
                words = peel(current)
                if words:
                    piped = token in ("|", "|&")
                    found.append(
                        SimpleCommand(tuple(words), command_line.line, fed or previous_pipe, piped)
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
    return tuple(found)


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
