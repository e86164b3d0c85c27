"""Which escaper each `{{ ... }}` of a parsed template gets: the template's literal text is laid
out in source order with a placeholder word for each expression, and parsed as the language it
is (bash, or an interpreter's), so the decision rests on that language's own syntax. Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.templates import TemplateProblem

if TYPE_CHECKING:
    from jinja2 import nodes

_PLACEHOLDER = "__rb{}__"


def escape_by_context(tree: nodes.Template, language: str) -> None:
    """Wrap every output expression in the escaper for the context it sits in."""
    for output, index, name, args in placements(tree, language):
        output.nodes[index] = _filter(output.nodes[index], name, args)


def placements(
    tree: nodes.Template, language: str
) -> list[tuple[nodes.Output, int, str, list[object]]]:
    """Each output expression with the escaping filter and arguments for its context. The
    context is read from the template's literal text with each expression as a placeholder
    word, parsed as the language it is (a shell, or the interpreter's). As in Go's
    html/template, every branch of an `{% if %}` or `{% for %}` must end in the context it
    started in; otherwise the quoting of what follows cannot be known, and it is an error."""
    linear = _Linear()
    linear.walk(tree.body)
    if not linear.slots:
        return []
    text, spans = bytes(linear.text), linear.spans
    found: list[tuple[nodes.Output, int, str, list[object]]] = []
    if language == "shell":
        from engine.shell_syntax import contexts

        shell = contexts(text, spans)
        keys: list[object] = [(c.quoting, c.delimiter) for c in shell]
        _same_context_in_branches(linear.groups, keys)
        for slot, where in zip(linear.slots, shell, strict=False):
            if slot is None:
                continue
            output, index = slot
            line = output.nodes[index].lineno
            args: list[object] = [
                where.quoting.value,
                where.delimiter,
                where.via,
                list(where.enclosing),
                line,
            ]
            found.append((output, index, "_rb_escape", args))
        return found
    from engine.interpreters import literal_contexts

    kinds = literal_contexts(text, spans, language)
    _same_context_in_branches(linear.groups, list(kinds))
    for slot, kind in zip(linear.slots, kinds, strict=False):
        if slot is None:
            continue
        output, index = slot
        found.append((output, index, "_rb_literal", [language, kind, output.nodes[index].lineno]))
    return found


class _Linear:
    """A template's literal text in source order, a placeholder word for each expression,
    and probe words at the edges of each `{% if %}` and `{% for %}` branch."""

    def __init__(self) -> None:
        self.text = bytearray()
        self.spans: list[tuple[int, int]] = []
        self.slots: list[tuple[nodes.Output, int] | None] = []  # None: a probe
        self.groups: list[tuple[int, str, list[int]]] = []

    def _word(self, slot: tuple[nodes.Output, int] | None) -> int:
        start = len(self.text)
        self.text += _PLACEHOLDER.format(len(self.spans)).encode()
        self.spans.append((start, len(self.text)))
        self.slots.append(slot)
        return len(self.spans) - 1

    def walk(self, body: list[nodes.Node]) -> None:
        from jinja2 import nodes

        for node in body:
            if isinstance(node, nodes.Output):
                for index, child in enumerate(node.nodes):
                    if isinstance(child, nodes.TemplateData):
                        self.text += child.data.encode("utf-8", "surrogateescape")
                    else:
                        self._word((node, index))
            elif isinstance(node, nodes.If | nodes.For):
                branches = [node.body, *(e.body for e in getattr(node, "elif_", []))]
                branches.append(node.else_)
                probes = [self._word(None)]
                for branch in branches:
                    probes.append(self._word(None))
                    self.walk(branch)
                    probes.append(self._word(None))
                probes.append(self._word(None))
                tag = "if" if isinstance(node, nodes.If) else "for"
                self.groups.append((node.lineno, tag, probes))
            else:
                for name in ("body", "else_"):
                    inner = getattr(node, name, None)
                    if isinstance(inner, list):
                        self.walk(inner)


def _same_context_in_branches(groups: list[tuple[int, str, list[int]]], keys: list[object]) -> None:
    for line, tag, probes in groups:
        if len({repr(keys[p]) for p in probes}) > 1:
            raise TemplateProblem(
                f"a quote, here-document or substitution opened inside {{% {tag} %}} ends"
                " outside it, so the quoting of the values there cannot be decided",
                line,
                f"open and close it within each branch of the {{% {tag} %}}",
            )


def _filter(node: nodes.Expr, name: str, args: list[object]) -> nodes.Filter:
    from jinja2 import nodes

    constants: list[nodes.Expr] = [nodes.Const(a, lineno=node.lineno) for a in args]
    return nodes.Filter(node, name, constants, [], None, None, lineno=node.lineno)


def variables(tree: nodes.Template) -> tuple[set[str], set[str]]:
    """(variables the shell text assigns from a template, variables it evaluates as
    arithmetic)."""
    from engine.shell_syntax import variables as shell_variables

    linear = _Linear()
    linear.walk(tree.body)
    spans = [span for span, slot in zip(linear.spans, linear.slots, strict=True) if slot]
    return shell_variables(bytes(linear.text), spans)


def problems(tree: nodes.Template, language: str) -> list[tuple[int, str]]:
    """(line, message) for each expression whose place cannot hold a value safely, whatever
    the value: inside `...`, in a language without an escaper, in a Python raw string, or
    after a quote a branch left open."""
    from engine.interpreters import escape_literal
    from engine.quoting import Refused, escape_shell
    from engine.shell_syntax import Context, Quoting

    try:
        found = placements(tree, language)
    except TemplateProblem as problem:
        return [(problem.line, problem.message)]
    refused = []
    for _output, _index, name, args in found:
        try:
            if name == "_rb_escape" and args[0] == Quoting.BACKTICK.value:
                escape_shell("x", Context(Quoting.BACKTICK))
            elif name == "_rb_literal":
                escape_literal("'x\"", str(args[0]), str(args[1]))
        except Refused as exc:
            refused.append((int(str(args[-1])), str(exc)))
    return refused
