"""Values in interpreter steps (`interpreter: python3`, `psql -d app`, `node`): written with
that language's own literal syntax, never with shell quoting.

Outside a string a value becomes a complete string literal (`print({{ name }})`); inside one it
is escaped for that string (`print("hello {{ name }}")`), so no value can end the string. A
language without an escaper here refuses templates in its body: pass the value through `env:`
and read it from the environment. Pure.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.quoting import Refused

if TYPE_CHECKING:
    import tokenize

_LANGUAGES = {
    "python": "python",
    "pypy": "python",
    "psql": "sql",
    "sqlite": "sql",
    "duckdb": "sql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "node": "javascript",
    "nodejs": "javascript",
    "deno": "javascript",
    "bun": "javascript",
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "dash": "shell",
    "ksh": "shell",
}
_SAFE = re.compile(r"[A-Za-z0-9 _\-.,:/@%+=]*")


def language_of(interpreter: str) -> str:
    """The language an interpreter command reads (`sudo -u postgres psql -d app` → sql), or
    the program's own name when no escaper knows it."""
    try:
        words = shlex.split(interpreter)
    except ValueError:
        words = interpreter.split()
    names = [re.sub(r"[\d.]+$", "", w.rsplit("/", 1)[-1]) for w in words]
    for name in names:
        if name in _LANGUAGES:
            return _LANGUAGES[name]
    return names[0] if names else "unknown"


def literal_contexts(text: bytes, spans: Sequence[tuple[int, int]], language: str) -> list[str]:
    """The kind of place each placeholder span sits in: code, a string (of some kind), a
    comment, or `unknown` for a language without an escaper."""
    source = text.decode("utf-8", "surrogateescape")
    starts = [len(text[:start].decode("utf-8", "surrogateescape")) for start, _ in spans]
    if language == "python":
        return _python_contexts(source, starts)
    if language in ("sql", "mysql", "javascript"):
        return [_c_like_context(source, start, language) for start in starts]
    return ["unknown"] * len(spans)


def escape_literal(value: str, language: str, kind: str) -> str:
    """`value` written for `kind` in `language` (see `literal_contexts`)."""
    if kind == "comment":
        return value.replace("\n", " ").replace("\r", " ")
    if language == "python":
        return _python(value, kind)
    if language in ("sql", "mysql"):
        return _sql(value, kind, backslash=language == "mysql")
    if language == "javascript":
        return _javascript(value, kind)
    raise Refused(
        f"a template in a `{language}` step cannot be escaped for that language; pass the value"
        " in `env:` and read it from the environment"
    )


def _python_contexts(source: str, starts: list[int]) -> list[str]:
    import tokenize

    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    found: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            first = offsets[token.start[0] - 1] + token.start[1] if token.start[0] else 0
            last = offsets[token.end[0] - 1] + token.end[1] if token.end[0] else 0
            for start in starts:
                if first <= start < last and start not in found:
                    found[start] = _python_kind(token)
            if len(found) == len(starts):
                break
    except (tokenize.TokenError, SyntaxError):
        pass
    return [found.get(start, "unreadable") for start in starts]


def _python_kind(token: tokenize.TokenInfo) -> str:
    import tokenize

    if token.type == tokenize.COMMENT:
        return "comment"
    if token.type != tokenize.STRING:
        return "code"
    prefix = re.match(r"[A-Za-z]*", token.string).group(0).lower()  # type: ignore[union-attr]
    if "r" in prefix:
        return "raw"
    return "bytes" if "b" in prefix else "string"


def _python(value: str, kind: str) -> str:
    if kind == "code":
        return '"' + _python_escapes(value) + '"'
    if kind == "string":
        return _python_escapes(value)
    if kind == "bytes":
        return "".join(chr(b) if _SAFE.fullmatch(chr(b)) else f"\\x{b:02x}" for b in value.encode())
    if kind == "raw" and _SAFE.fullmatch(value):
        return value
    raise Refused(
        "this Python text around the template cannot hold any value safely (a raw string,"
        " or text Python cannot read); write the template outside a raw string"
    )


def _python_escapes(value: str) -> str:
    out = []
    for char in value:
        code = ord(char)
        if _SAFE.fullmatch(char):
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _c_like_context(source: str, position: int, language: str) -> str:
    """Scan SQL or JavaScript up to `position`: in code, a string (by its quote), or a
    comment. Dollar-quoted SQL and JavaScript regex literals count as code and are refused
    by the escapers only where they could matter."""
    index, state = 0, "code"
    while index < position:
        char = source[index]
        pair = source[index : index + 2]
        if state == "code":
            if (pair in ("--",) and language != "javascript") or (
                pair == "//" and language == "javascript"
            ):
                state = "line-comment"
                index += 2
                continue
            if pair == "/*":
                state = "block-comment"
                index += 2
                continue
            if char == "$" and language != "javascript":
                match = re.match(r"\$[A-Za-z_]*\$", source[index:])
                if match:
                    end = source.find(match.group(0), index + len(match.group(0)))
                    if end < 0 or end + len(match.group(0)) > position:
                        return "dollar"
                    index = end + len(match.group(0))
                    continue
            if char in "'\"" or (char == "`" and language == "javascript"):
                escape = language != "sql" or (
                    char == "'" and index > 0 and source[index - 1] in "eE"
                )
                state = char + ("\\" if escape else "")
        elif state == "line-comment":
            if char == "\n":
                state = "code"
        elif state == "block-comment":
            if pair == "*/":
                state = "code"
                index += 2
                continue
        else:
            quote, escapes = state[0], state.endswith("\\")
            if escapes and char == "\\":
                index += 2
                continue
            if char == quote:
                if language != "javascript" and source[index + 1 : index + 2] == quote:
                    index += 2
                    continue
                state = "code"
        index += 1
    if state in ("line-comment", "block-comment"):
        return "comment" if state == "line-comment" else "block-comment"
    return state


def _sql(value: str, kind: str, backslash: bool) -> str:
    if kind == "block-comment":
        return value.replace("*/", "* /")
    if kind == "dollar":
        raise Refused("a template inside a dollar-quoted SQL string cannot be escaped")
    if kind == "code":
        body = value.replace("\\", "\\\\") if backslash else value
        return "'" + body.replace("'", "''") + "'"
    quote, escapes = kind[0], kind.endswith("\\")
    body = value.replace("\\", "\\\\") if escapes or backslash else value
    return body.replace(quote, quote * 2)


def _javascript(value: str, kind: str) -> str:
    if kind == "block-comment":
        return value.replace("*/", "* /")
    escaped = "".join(c if _SAFE.fullmatch(c) else f"\\u{{{ord(c):x}}}" for c in value)
    if kind == "code":
        return json.dumps(value, ensure_ascii=True)
    return escaped
