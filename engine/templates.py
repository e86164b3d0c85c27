"""Step templates: Jinja2 in a bounded sandbox, strict about undefined names, every value
escaped for the quoting context it lands in.

`{{ host }}` becomes one shell word, `"Restoring {{ file }}"` an escaped part of a double-quoted
string, and so on for each context (engine.shell_syntax decides, engine.quoting escapes);
`{{ flags | unquoted }}` is the one explicit way to insert a value as shell text. What is not
Jinja for the runbook is left as written: Go and Helm templates (`{{.Names}}`,
`{{range .items}}`), `${{ ... }}` (GitHub Actions) and `${#VAR}`. Pure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

_LITERAL = re.compile(r"\$\{\{.*?\}\}|\$\{#[^}]*\}")
_MARKERS = ("{{", "{%", "{#")
_LITERAL_HINT = "wrap literal braces in {% raw %}...{% endraw %}"
_OUTPUT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SIMPLE = re.compile(r"-?\s*([A-Za-z][A-Za-z0-9_]*)((?:\s*\|\s*[A-Za-z_]\w*)*)\s*-?")
_FILTER = re.compile(r"[A-Za-z_]\w*")
_STATEMENT = re.compile(r"\{%.*?%\}", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_TAGS = (
    "if|elif|else|endif|for|endfor|set|endset|macro|endmacro|call|endcall|filter|endfilter"
    "|raw|endraw|with|endwith|block|endblock|extends|include|import|from|autoescape"
    "|endautoescape|trans|pluralize|endtrans|do|break|continue"
)
_NOT_A_TAG = re.compile(r"\{%(?![-+]?\s*(?:" + _TAGS + r")\b)")
_OPEN_COMMENT = re.compile(r"\{#(?![^#]*(?:#(?!\})[^#]*)*#\})")
_GO_FIELD = re.compile(r"(?:^|[\s(])\.[A-Za-z_]")
_GO_STRING = re.compile(r'-?\s*"(?:[^"\\]|\\.)*"\s*-?')


class Unquoted(str):
    """A value the author chose to insert without shell quoting."""


class TemplateProblem(Exception):
    """A template that cannot be checked or rendered; `line` is 1-based within the template."""

    def __init__(self, message: str, line: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.hint = hint


class SecretValue(str):
    """A secret parameter's value. In a shell step it is inserted as a reference to the
    environment variable that holds it, so the value is never written into a script file."""

    variable: str

    def __new__(cls, value: str, variable: str) -> SecretValue:
        made = super().__new__(cls, value)
        made.variable = variable
        return made


def plain_values(context: Mapping[str, object]) -> dict[str, object]:
    """The context with secret values as plain text: for programs other than the shell."""
    return {k: str(v) if isinstance(v, SecretValue) else v for k, v in context.items()}


def _unquoted(value: object) -> Unquoted:
    if isinstance(value, SecretValue):
        return Unquoted(f"${{{value.variable}}}")
    return Unquoted(value)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(
    value: object, quoting: str, delimiter: str, via: str, enclosing: list[str], line: int
) -> str:
    """A value written for the shell context its template sits in (see engine.quoting)."""
    from engine.quoting import Refused, escape_shell
    from engine.shell_syntax import Context, Quoting

    if isinstance(value, Unquoted):
        return str(value)
    context = Context(Quoting(quoting), delimiter, via, tuple(enclosing))
    variable = value.variable if isinstance(value, SecretValue) else None
    try:
        return escape_shell(_text(value), context, variable)
    except Refused as refused:
        raise TemplateProblem(str(refused), line) from None


def _literal(value: object, language: str, kind: str, line: int) -> str:
    """A value written with an interpreter's own literal syntax (see engine.interpreters)."""
    from engine.interpreters import escape_literal
    from engine.quoting import Refused

    try:
        return escape_literal(_text(value), language, kind)
    except Refused as refused:
        raise TemplateProblem(str(refused), line) from None


# Jinja is imported when a template first needs it: most steps have none (~15 ms at start).
@functools.cache
def _environment() -> SandboxedEnvironment:
    """The step template environment: values escaped by context (quote) or left as they are."""
    from engine.sandbox import BoundedEnvironment

    env = BoundedEnvironment(keep_trailing_newline=True, autoescape=False)
    env.filters["unquoted"] = _unquoted
    env.filters["_rb_escape"] = _escape
    env.filters["_rb_literal"] = _literal
    return env


@functools.cache
def _expressions() -> SandboxedEnvironment:
    """The environment `when` expressions are read and evaluated in."""
    from engine.sandbox import BoundedEnvironment

    return BoundedEnvironment()


def has_template(source: str) -> bool:
    return any(marker in source for marker in _MARKERS)


def _literal_spans(source: str, known: Collection[str] | None) -> list[tuple[int, int]]:
    """Spans that look like templates but are not Jinja for this runbook: `${{ ... }}`
    (GitHub Actions), `${#VAR}` (shell), and `{{ ... }}` that is not a valid Jinja expression
    or names nothing the runbook defines (Go and Helm templates: `{{range .items}}`,
    `{{ $k }}`). A name one edit from a known one stays a template, so its typo is reported."""
    spans = [m.span() for m in _LITERAL.finditer(source)]
    if "{%" in source or "{#" in source:
        # `printf '{%s}'` and `{#` without a `#}` are not Jinja: only a known tag opens one
        spans += [m.span() for m in _NOT_A_TAG.finditer(source)]
        spans += [(m.start(), m.start() + 2) for m in _OPEN_COMMENT.finditer(source)]
        spans = _outermost(sorted(spans))
    if "{{" not in source:
        return spans
    local: set[str] = set()
    for statement in _STATEMENT.finditer(source):
        local.update(_IDENTIFIER.findall(statement.group(0)))
    for match in _OUTPUT.finditer(source):
        if any(start <= match.start() < end for start, end in spans):
            continue
        if not _is_jinja(match.group(1), known, local):
            spans.append(match.span())
    return sorted(spans)


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans without those inside an earlier one."""
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept


def _is_jinja(inner: str, known: Collection[str] | None, local: set[str]) -> bool:
    if _GO_FIELD.search(inner) or _GO_STRING.fullmatch(inner):
        # `{{range .items}}` (Jinja would read `range.items`) and `{{"\n"}}`: Go's own forms
        return False
    simple = _SIMPLE.fullmatch(inner)
    if simple is not None:
        names = {simple.group(1)}
    else:
        from jinja2 import TemplateSyntaxError, meta

        try:
            tree = _environment().parse("{{" + inner + "}}")
        except TemplateSyntaxError:
            return False
        names = meta.find_undeclared_variables(tree)
    if known is None or not names:
        return True
    from engine.diagnostics import suggest

    names -= _environment().globals.keys()
    return not names or any(
        n in known or n in local or suggest(n, known) is not None for n in names
    )


def _protect(source: str, known: Collection[str] | None) -> str:
    spans = _literal_spans(source, known)
    if not spans:
        return source
    parts, last = [], 0
    for start, end in spans:
        if start < last:
            continue
        parts += [source[last:start], "{% raw %}", source[start:end], "{% endraw %}"]
        last = end
    parts.append(source[last:])
    return "".join(parts)


def literal_templates(source: str, known: Collection[str]) -> list[NameUse]:
    """Each `{{ ... }}` that is passed to the shell as it is written (not Jinja for this
    runbook), as its text with its 1-based line and column."""
    if "{{" not in source:
        return []
    found = []
    for start, end in _literal_spans(source, known):
        text = source[start:end]
        if not text.startswith("{{"):
            continue
        line = source.count("\n", 0, start) + 1
        found.append(NameUse(text, line, start - source.rfind("\n", 0, start)))
    return found


@dataclass(frozen=True, slots=True)
class NameUse:
    """A name a template reads, at its 1-based line and column within the template."""

    name: str
    line: int
    column: int


def template_names(source: str, known: Collection[str] | None = None) -> list[NameUse]:
    """Every undeclared name a template reads, first use each; raises TemplateProblem.
    With `known` (the runbook's names), `{{ ... }}` that is not Jinja for it is skipped."""
    if not has_template(source):
        return []
    spans = _literal_spans(source, known)
    simple = _simple_names(source, spans)
    if simple is not None:
        return simple
    from jinja2 import TemplateSyntaxError

    try:
        tree = _environment().parse(_protect(source, known))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template syntax error: {exc.message}", exc.lineno, _LITERAL_HINT
        ) from None
    return _names_in(tree, source)


def _simple_names(source: str, literal_spans: list[tuple[int, int]]) -> list[NameUse] | None:
    """Names of a template made only of `{{ name }}` / `{{ name | filter }}`, read without
    Jinja's parser (most step bodies); None when the template needs the real parser."""
    rest = _cut(source, literal_spans)
    if "{%" in rest or "{#" in rest:
        return None
    uses: dict[str, NameUse] = {}
    for match in _OUTPUT.finditer(source):
        if any(start <= match.start() < end for start, end in literal_spans):
            continue
        simple = _SIMPLE.fullmatch(match.group(1))
        if simple is None:
            return None
        filters = _FILTER.findall(simple.group(2))
        if filters and not all(f in _environment().filters for f in filters):
            return None
        name = simple.group(1)
        if name not in uses:
            line = source.count("\n", 0, match.start()) + 1
            line_start = source.rfind("\n", 0, match.start()) + 1
            column = match.start(1) + match.group(1).index(name) - line_start + 1
            uses[name] = NameUse(name, line, column)
    if "{{" in _OUTPUT.sub("", rest):
        return None
    return sorted(uses.values(), key=lambda use: (use.line, use.column))


def _cut(source: str, spans: list[tuple[int, int]]) -> str:
    """The source without the given spans (each replaced by a space)."""
    parts, last = [], 0
    for start, end in spans:
        if start >= last:
            parts += [source[last:start], " "]
            last = end
    parts.append(source[last:])
    return "".join(parts)


def expression_names(expression: str) -> list[NameUse]:
    """Every name a `when` expression reads; raises TemplateProblem on bad syntax."""
    from jinja2 import TemplateSyntaxError

    try:
        tree = _expressions().parse("{{ (" + expression + ") }}")
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"expression syntax error: {exc.message}", exc.lineno) from None
    return _names_in(tree, expression)


def _names_in(tree: nodes.Template, source: str) -> list[NameUse]:
    from jinja2 import meta, nodes

    _refuse_loading(tree)
    for node in tree.find_all(nodes.Filter):
        if node.name not in _environment().filters:
            raise TemplateProblem(f"no filter named '{node.name}'", node.lineno)
        if node.name == "attr":
            raise TemplateProblem("the attr filter is not allowed in a template", node.lineno)
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Getattr) and call.node.attr in ("format", "format_map"):
            raise TemplateProblem(
                f"str.{call.node.attr}() is not allowed in a template; use the ~ operator",
                call.lineno,
            )
    for item in tree.find_all(nodes.Getitem):
        if not isinstance(item.arg, nodes.Const | nodes.Name | nodes.Slice):
            raise TemplateProblem(
                "a computed subscript is not allowed in a template (it could escape the sandbox)",
                item.lineno,
            )
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(access, nodes.Getattr):
            attr: object = access.attr
        else:
            assert isinstance(access, nodes.Getitem)
            attr = _constant(access.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateProblem(
                f"'{attr}' is not allowed in a template (it could escape the sandbox)",
                access.lineno,
            )
    undeclared = meta.find_undeclared_variables(tree)
    lines = source.splitlines() or [""]
    uses: dict[str, NameUse] = {}
    for name in tree.find_all(nodes.Name):
        if name.name in undeclared and name.name not in uses:
            text = lines[name.lineno - 1] if name.lineno <= len(lines) else ""
            match = re.search(r"(?<![\w.])" + re.escape(name.name) + r"(?!\w)", text)
            uses[name.name] = NameUse(name.name, name.lineno, match.start() + 1 if match else 1)
    return sorted(uses.values(), key=lambda use: (use.line, use.column))


def _constant(node: nodes.Node) -> object:
    from jinja2 import nodes

    return node.value if isinstance(node, nodes.Const) else None


def render_template(
    source: str,
    context: Mapping[str, object],
    quote: bool = True,
    language: str = "shell",
) -> str:
    """Render a template; each value is escaped for the context it lands in (the shell's
    quoting contexts, or an interpreter's literals for `language`), unless `quote` is false
    (for values that are not program text: a directory, an env value, an answer).
    Raises TemplateProblem, for a bad template and for a value its context cannot hold."""
    if not has_template(source):
        return source
    from jinja2 import TemplateError, TemplateSyntaxError
    from jinja2.exceptions import SecurityError, UndefinedError

    from engine.sandbox import time_limit

    env = _environment()
    try:
        # Go and Helm templates are left as written in commands, not in plain values.
        tree = env.parse(_protect(source, context.keys() if quote else None))
        _refuse_loading(tree)
        if quote:
            from engine.template_contexts import escape_by_context

            escape_by_context(tree, language)
        with time_limit():
            rendered = env.from_string(tree).render(dict(context))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template syntax error: {exc.message}", exc.lineno, _LITERAL_HINT
        ) from None
    except SecurityError as exc:
        raise TemplateProblem(f"not allowed in a template: {exc}") from None
    except UndefinedError as exc:
        raise TemplateProblem(f"undefined in template: {exc.message}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except MemoryError:
        raise TemplateProblem("the template needs too much memory") from None
    except RecursionError:
        raise TemplateProblem("the template nests too deeply") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    if len(rendered) > MAX_OUTPUT:
        raise TemplateProblem(f"the template renders to more than {MAX_OUTPUT} characters")
    return rendered


MAX_OUTPUT = 16 * 1024 * 1024  # a step's text; values larger than this belong in a file


def _refuse_loading(tree: nodes.Template) -> None:
    """`{% include %}`, `{% import %}` and `{% extends %}` read other templates: a runbook's
    steps have no template files to read, so each is a clear error, not an internal one."""
    from jinja2 import nodes

    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        tag = type(node).__name__.lower().replace("fromimport", "from ... import")
        raise TemplateProblem(f"{{% {tag} %}} is not available in a runbook template", node.lineno)


def shell_variables(source: str, known: Collection[str]) -> tuple[set[str], set[str]]:
    """(variables a shell step assigns from a template, variables it evaluates as arithmetic)."""
    from jinja2 import TemplateSyntaxError

    from engine import template_contexts

    try:
        tree = _environment().parse(_protect(source, known))
    except TemplateSyntaxError:
        return set(), set()
    return template_contexts.variables(tree)


def placement_problems(source: str, language: str, known: Collection[str]) -> list[tuple[int, str]]:
    """(line, message) for each template whose place cannot hold a value safely, whatever the
    value (see engine.template_contexts). Values that only some places refuse (a non-integer
    in arithmetic) are refused when rendered."""
    from jinja2 import TemplateSyntaxError

    from engine import template_contexts

    if "{{" not in source:
        return []
    try:
        tree = _environment().parse(_protect(source, known))
    except TemplateSyntaxError:
        return []  # reported by template_names
    return template_contexts.problems(tree, language)


def evaluate_condition(expression: str, context: Mapping[str, object]) -> bool:
    """The truth of a `when` expression over parameters and captured values."""
    from jinja2 import TemplateError, TemplateSyntaxError
    from jinja2.exceptions import SecurityError, UndefinedError

    from engine.sandbox import time_limit

    try:
        compiled = _expressions().compile_expression(expression, undefined_to_none=False)
        with time_limit():
            return bool(compiled(**dict(context)))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"expression syntax error: {exc.message}", exc.lineno) from None
    except (SecurityError, UndefinedError, TemplateError) as exc:
        raise TemplateProblem(f"cannot evaluate 'when': {exc}") from None
    except (MemoryError, RecursionError, TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem(f"cannot evaluate 'when': {exc or type(exc).__name__}") from None
    except (LookupError, AttributeError) as exc:
        raise TemplateProblem(f"cannot evaluate 'when': {exc}") from None


@dataclass(frozen=True, slots=True)
class RenderedStep:
    """A step's templates filled in: the command as it will run, and its settings."""

    command: str
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    answers: tuple[tuple[str, str, bool], ...]


def render_text(text: str, context: Mapping[str, object]) -> str:
    """A manual step's prose: values as they are (it is read by a person, not run), except
    secrets, shown as the variable that holds them."""
    shown = {
        k: Unquoted(f"${{{v.variable}}}") if isinstance(v, SecretValue) else v
        for k, v in context.items()
    }
    return render_template(text, shown, quote=False)


def render_step(
    body: str,
    cwd: str | None,
    env: tuple[tuple[str, str], ...],
    answers: tuple[tuple[str, str, bool], ...],
    context: Mapping[str, object],
    shell: bool = True,
    interpreter: str | None = None,
) -> RenderedStep:
    """Render everything templated about a step. The body's values are escaped for where they
    sit: the shell's quoting contexts, or for an `interpreter` step that language's literals
    (engine.interpreters). `cwd`, `env` values and expect answers are plain values, rendered
    as they are (the shell receives them quoted, as data)."""
    plain = plain_values(context)
    if interpreter or not shell:
        from engine.interpreters import language_of

        language = language_of(interpreter or "")
        command = render_template(body, plain, language=language)
    else:
        command = render_template(body, context)
    return RenderedStep(
        command=command,
        cwd=render_template(cwd, plain, quote=False) if cwd else None,
        env=tuple((name, render_template(value, plain, quote=False)) for name, value in env),
        answers=tuple(
            (prompt, render_template(send, plain, quote=False), secret)
            for prompt, send, secret in answers
        ),
    )
