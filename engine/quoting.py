"""Escapers: a value written so that the shell (or an interpreter) reads back exactly the value,
whatever quoting context it lands in. Each is proven by property tests against real bash. Pure.
"""

from __future__ import annotations

import re
import shlex

from engine.shell_syntax import Context, Quoting


class Refused(ValueError):
    """A value that cannot be written safely in its context; the message says why."""


_CONTROL_BYTES = re.compile("[\x01\x7f]")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_SAFE_BYTES = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _-.,:/@%+="
)


def escape_shell(value: str, context: Context, variable: str | None = None) -> str:
    """`value` written for `context`; `variable` names an environment variable holding the
    value (a secret), which is referred to instead of writing the value into the script."""
    if "\0" in value:
        raise Refused("a value holding a NUL byte cannot reach the shell")
    quoting = context.quoting
    for word in context.enclosing:
        if word in value:
            raise Refused(f"the value holds '{word}', which would end the here-document around it")
    if quoting is Quoting.ARITHMETIC:
        if not _INTEGER.fullmatch(value):
            through = f" (through ${context.via})" if context.via else ""
            raise Refused(
                f"only an integer may be used in shell arithmetic{through}, got a value that is not"
            )
        return f"${{{variable}}}" if variable else value
    if quoting is Quoting.BACKTICK:
        raise Refused("a template inside `...` cannot be escaped safely; write $( ... ) instead")
    if quoting is Quoting.COMMENT:
        return value.replace("\n", " ").replace("\r", " ")
    if variable:
        return _reference(quoting, variable, context)
    if quoting is Quoting.WORD:
        return shlex.quote(value)
    if quoting is Quoting.DOUBLE:
        escaped = re.sub(r'([\\"$`])', r"\\\1", value)
        # bash doubles \x01 and \x7f inside "..." in an array assignment: those two bytes
        # leave the quotes for a $'...' of their own.
        return _CONTROL_BYTES.sub(lambda m: f"\"$'\\x{ord(m.group(0)):02x}'\"", escaped)
    if quoting is Quoting.DOUBLE_EXPANSION:
        if "'" in value:
            # bash pairs single quotes even inside "${v:-...}": one alone is a syntax error
            raise Refused(
                'a value holding \' cannot be written inside "${...}"; put the template'
                ' outside the expansion (v={{ x }}; "${V:-$v}")'
            )
        return re.sub(r'([\\"$`}])', r"\\\1", value)
    if quoting is Quoting.SINGLE:
        return value.replace("'", "'\\''")
    if quoting is Quoting.ANSI_C:
        return "".join(chr(b) if b in _SAFE_BYTES else f"\\x{b:02x}" for b in _utf8(value))
    if quoting is Quoting.HEREDOC:
        # `${_+}` expands to nothing, but no line of the value can then equal the delimiter.
        escaped = re.sub(r"([\\$`])", r"\\\1", value)
        return "${_+}" + escaped.replace("\n", "\n${_+}")
    # A quoted here-document takes every byte literally: only its end line is dangerous.
    if context.delimiter and context.delimiter in value:
        raise Refused(
            f"the value holds '{context.delimiter}', which would end the quoted here-document"
        )
    return value


def _reference(quoting: Quoting, variable: str, context: Context) -> str:
    """A secret: the shell expands the variable; its value is never written into the script."""
    if quoting in (Quoting.WORD,):
        return f'"${{{variable}}}"'
    if quoting in (Quoting.DOUBLE, Quoting.DOUBLE_EXPANSION, Quoting.HEREDOC):
        return f"${{{variable}}}"
    if quoting is Quoting.SINGLE:
        return f"'\"${{{variable}}}\"'"
    if quoting is Quoting.ANSI_C:
        return f"'\"${{{variable}}}\"$'"
    raise Refused(
        "a secret cannot be used in a quoted here-document (its value would be written into"
        " the script); use an unquoted one"
    )


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")
