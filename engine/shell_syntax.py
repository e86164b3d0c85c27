"""Where a template sits in shell text: the quoting context that decides how its value is escaped.

The decision is made on the shell's own token structure (tree-sitter-bash), never on the words
of the template, as Go's html/template decides its escaper from the HTML around a value. Pure.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Node, Parser


class Quoting(StrEnum):
    """The shell context a value lands in."""

    WORD = "word"  # a plain word: the value becomes one single-quoted word
    DOUBLE = "double"  # inside "...": \ " $ ` are escaped
    DOUBLE_EXPANSION = "double-expansion"  # inside "${v:-...}": also }
    SINGLE = "single"  # inside '...': ' becomes '\''
    ANSI_C = "ansi-c"  # inside $'...': every other byte as \xHH
    HEREDOC = "heredoc"  # an unquoted here-document: \ $ ` escaped, delimiter lines broken
    HEREDOC_LITERAL = "heredoc-literal"  # a quoted here-document: nothing can be escaped
    ARITHMETIC = "arithmetic"  # $(( )), (( )), [[ -gt ]], subscripts, let: integers only
    COMMENT = "comment"  # a shell comment: line breaks would end it
    BACKTICK = "backtick"  # `...`: a second layer of backslashes; refused


@dataclass(frozen=True, slots=True)
class Context:
    """The context of one placeholder; `delimiter` names a here-document's end line."""

    quoting: Quoting
    delimiter: str = ""
    via: str = ""  # for arithmetic reached through a variable: that variable's name
    # End words of the here-documents around the value's `$( ... )`: bash ends a
    # here-document at such a line even inside a substitution, so the value may not hold one.
    enclosing: tuple[str, ...] = ()


_ARITHMETIC_NODES = frozenset({"arithmetic_expansion", "subscript", "c_style_for_statement"})
_ARITHMETIC_TESTS = frozenset({b"-eq", b"-ne", b"-lt", b"-le", b"-gt", b"-ge"})
_STOP = frozenset({"command_substitution", "process_substitution"})
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def _parser() -> Parser:
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


def contexts(text: bytes, spans: Sequence[tuple[int, int]]) -> list[Context]:
    """The context of each placeholder at byte `spans` of `text` (identifier-like placeholders,
    so that they are valid in every context, arithmetic included)."""
    tree = _parser().parse(text)
    root = tree.root_node
    arithmetic_names = _arithmetic_names(root)
    found = []
    for start, end in spans:
        node = root.descendant_for_byte_range(start, end)
        if node is None:
            found.append(Context(Quoting.WORD))
            continue
        context = _context(node, arithmetic_names)
        through = [n for n in _assigned_names(node) if n in arithmetic_names]
        if through and context.quoting is not Quoting.COMMENT:
            # The value reaches arithmetic through a variable: only an integer is safe there,
            # and an integer is safe in every quoting context.
            context = Context(Quoting.ARITHMETIC, via=through[0].decode())
        enclosing = _heredocs_around(node)
        if context.quoting in (Quoting.HEREDOC, Quoting.HEREDOC_LITERAL):
            enclosing = enclosing[1:]  # its own here-document is the context itself
        found.append(dataclasses.replace(context, enclosing=enclosing) if enclosing else context)
    return found


def _heredocs_around(node: Node) -> tuple[str, ...]:
    """The end words of every here-document body `node` sits in, innermost first."""
    words = []
    current: Node | None = node
    while current is not None:
        if current.type == "heredoc_body":
            words.append(_heredoc(current).delimiter)
        current = current.parent
    return tuple(w for w in words if w)


def variables(text: bytes, spans: Sequence[tuple[int, int]]) -> tuple[set[str], set[str]]:
    """(variables assigned a value holding a placeholder, variables the shell evaluates as
    arithmetic) in `text`: a template that reaches arithmetic through a variable set in one
    step and used in another is invisible to one step's escaping."""
    root = _parser().parse(text).root_node
    assigned: set[str] = set()
    for start, end in spans:
        node = root.descendant_for_byte_range(start, end)
        if node is not None:
            assigned.update(n.decode() for n in _assigned_names(node))
    return assigned, {n.decode() for n in _arithmetic_names(root)}


_READERS = frozenset({b"read", b"mapfile", b"readarray"})


def _assigned_names(node: Node) -> list[bytes]:
    """Variables whose value holds the text at `node`: assignments around it (through any
    `$( ... )`), the loop variable of `for NAME in ...`, and the names a `read` fills from a
    here-string or here-document holding it."""
    names: list[bytes] = []
    current: Node | None = node
    child: Node | None = None
    while current is not None:
        if current.type == "variable_assignment":
            name = current.child_by_field_name("name")
            if name is not None and name.type == "variable_name":
                names.append(name.text or b"")
        elif current.type == "for_statement" and child is not None and child.type != "do_group":
            variable = current.child_by_field_name("variable")
            if variable is not None:
                names.append(variable.text or b"")
        elif current.type in ("redirected_statement", "command"):
            body = current.child_by_field_name("body") if current.type != "command" else current
            reads = child is not None and child.type in ("herestring_redirect", "heredoc_redirect")
            if (
                (reads or current.type == "redirected_statement")
                and body is not None
                and body.type == "command"
                and _command_name(body) in _READERS
            ):
                names += [
                    a.text or b""
                    for a in body.children_by_field_name("argument")
                    if _NAME.fullmatch(a.text or b"")
                ]
        child, current = current, current.parent
    return names


def _context(node: Node, arithmetic_names: set[bytes]) -> Context:
    child: Node | None = None
    passed_expansion = False
    current: Node | None = node
    while current is not None:
        kind = current.type
        if kind == "comment":
            return Context(Quoting.COMMENT)
        if kind == "raw_string":
            return Context(Quoting.SINGLE)
        if kind == "ansi_c_string":
            return Context(Quoting.ANSI_C)
        if kind in ("string", "translated_string"):
            return Context(Quoting.DOUBLE_EXPANSION if passed_expansion else Quoting.DOUBLE)
        if kind == "heredoc_body":
            return _heredoc(current)
        if kind in _ARITHMETIC_NODES or _is_arithmetic_command(current):
            return Context(Quoting.ARITHMETIC)
        if kind == "expansion":
            if child is not None and _after_colon(current, child):
                return Context(Quoting.ARITHMETIC)
            passed_expansion = True
        if kind == "concatenation" and child is not None and _array_index(current, child):
            # `a=([INDEX]=value)`: an indexed array's index is arithmetic, a keyed one's is not
            keyed = _declares(current.parent.parent if current.parent else None, b"A")
            return Context(Quoting.WORD if keyed else Quoting.ARITHMETIC)
        if kind == "binary_expression" and _is_arithmetic_test(current):
            return Context(Quoting.ARITHMETIC)
        if kind == "command" and _command_name(current) == b"let":
            return Context(Quoting.ARITHMETIC)
        if kind == "declaration_command" and _declares_integer(current):
            return Context(Quoting.ARITHMETIC)
        if kind in _STOP:
            if (current.text or b"").startswith(b"`"):
                return Context(Quoting.BACKTICK)
            break
        child, current = current, current.parent
    return Context(Quoting.WORD)


def _heredoc(body: Node) -> Context:
    redirect = body.parent
    start = None
    if redirect is not None:
        start = next((c for c in redirect.children if c.type == "heredoc_start"), None)
    word = (start.text or b"") if start is not None else b""
    literal = any(q in word for q in (b"'", b'"', b"\\"))
    delimiter = word.replace(b"'", b"").replace(b'"', b"").replace(b"\\", b"")
    return Context(
        Quoting.HEREDOC_LITERAL if literal else Quoting.HEREDOC,
        delimiter.decode("utf-8", "replace"),
    )


def _is_arithmetic_command(node: Node) -> bool:
    return (
        node.type == "compound_statement" and bool(node.children) and node.children[0].type == "(("
    )


def _after_colon(expansion: Node, child: Node) -> bool:
    """`${s:OFFSET:LENGTH}`: the parts after a bare `:` are arithmetic."""
    previous = child.prev_sibling
    return previous is not None and previous.type == ":"


def _is_arithmetic_test(node: Node) -> bool:
    parent: Node | None = node
    while parent is not None and parent.type == "binary_expression":
        parent = parent.parent
    if parent is None or parent.type != "test_command":
        return False
    return any(
        c.type == "test_operator" and (c.text or b"") in _ARITHMETIC_TESTS for c in node.children
    )


def _command_name(command: Node) -> bytes:
    name = command.child_by_field_name("name")
    return (name.text or b"") if name is not None else b""


def _array_index(concatenation: Node, child: Node) -> bool:
    """Whether `child` sits between `[` and `]` of a `[INDEX]=value` element of `( ... )`."""
    parent = concatenation.parent
    if parent is None or parent.type != "array":
        return False
    parts = concatenation.children
    if not parts or parts[0].text != b"[":
        return False
    for part in parts[1:]:
        if (part.text or b"").startswith(b"]"):
            return False
        if part.id == child.id:
            return True
    return False


def _declares(node: Node | None, flag: bytes) -> bool:
    """Whether `node` is the assignment of a `declare`/`local`/`typeset` with `-FLAG`."""
    parent = node.parent if node is not None else None
    if node is None or node.type != "variable_assignment" or parent is None:
        return False
    return parent.type == "declaration_command" and any(
        c.type == "word" and (c.text or b"").startswith(b"-") and flag in (c.text or b"")
        for c in parent.children
    )


def _declares_integer(node: Node) -> bool:
    return any(
        c.type == "word" and (c.text or b"").startswith(b"-") and b"i" in (c.text or b"")
        for c in node.children
    )


def _arithmetic_names(root: Node) -> set[bytes]:
    """Variables whose values the shell evaluates as arithmetic somewhere in the text (a value
    assigned to one of them must be an integer: `a[$(cmd)]` in it would run the command)."""
    names: set[bytes] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "variable_name" and _in_arithmetic(node):
            names.add(node.text or b"")
        elif node.type == "word" and node.parent is not None and _in_arithmetic(node):
            names.update(_NAME.findall(node.text or b""))
        stack.extend(node.children)
    return names


def _in_arithmetic(node: Node) -> bool:
    current: Node | None = node.parent
    child = node
    while current is not None:
        if current.type == "subscript" and child.prev_sibling is None:
            return False  # the array's own name, not its index
        if current.type in _ARITHMETIC_NODES or _is_arithmetic_command(current):
            return True
        if current.type == "binary_expression" and _is_arithmetic_test(current):
            return True
        if current.type == "command" and _command_name(current) == b"let":
            return child.type != "command_name"
        if current.type == "expansion" and _after_colon(current, child):
            return True
        if current.type in _STOP or current.type in ("string", "raw_string", "heredoc_body"):
            return False
        child, current = current, current.parent
    return False
