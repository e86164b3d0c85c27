"""Step templates: Jinja2 in a sandbox, strict about undefined names, shell-quoting every value.

`{{ host }}` renders as one shell word whatever the value holds; `{{ flags | unquoted }}` is the
one explicit way to insert a value as shell text. `{{.Field}}` (Go templates, as in
`docker ps --format`) and `${{ ... }}` (GitHub Actions) are left as they are. Pure.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

_LITERAL = re.compile(r"\$\{\{.*?\}\}|\{\{-?\s*\.[^{}]*\}\}")
_MARKERS = ("{{", "{%", "{#")
_LITERAL_HINT = "wrap literal braces in {% raw %}...{% endraw %}"
_OUTPUT = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SIMPLE = re.compile(r"-?\s*([A-Za-z][A-Za-z0-9_]*)((?:\s*\|\s*[A-Za-z_]\w*)*)\s*-?")
_FILTER = re.compile(r"[A-Za-z_]\w*")


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


def _quote(value: object) -> object:
    if isinstance(value, SecretValue):
        return f'"${{{value.variable}}}"'
    if isinstance(value, Unquoted):
        return str(value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return shlex.quote(str(value))


# Jinja is imported when a template first needs it: most steps have none (~15 ms at start).
@functools.cache
def _environment(quote: bool = True) -> SandboxedEnvironment:
    """The step template environment: every value shell-quoted, or (quote=False) as is."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        finalize=_quote if quote else None,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["unquoted"] = _unquoted
    return env


@functools.cache
def _expressions() -> SandboxedEnvironment:
    """The environment `when` expressions are read and evaluated in."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined)


def has_template(source: str) -> bool:
    return any(marker in source for marker in _MARKERS)


def _protect(source: str) -> str:
    return _LITERAL.sub(lambda m: "{% raw %}" + m.group(0) + "{% endraw %}", source)


@dataclass(frozen=True, slots=True)
class NameUse:
    """A name a template reads, at its 1-based line and column within the template."""

    name: str
    line: int
    column: int


def template_names(source: str) -> list[NameUse]:
    """Every undeclared name a template reads, first use each; raises TemplateProblem."""
    if not has_template(source):
        return []
    simple = _simple_names(source)
    if simple is not None:
        return simple
    from jinja2 import TemplateSyntaxError

    try:
        tree = _environment().parse(_protect(source))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template syntax error: {exc.message}", exc.lineno, _LITERAL_HINT
        ) from None
    return _names_in(tree, source)


def _simple_names(source: str) -> list[NameUse] | None:
    """Names of a template made only of `{{ name }}` / `{{ name | filter }}`, read without
    Jinja's parser (most step bodies); None when the template needs the real parser."""
    if "{%" in source or "{#" in source:
        return None
    uses: dict[str, NameUse] = {}
    literal_spans = [m.span() for m in _LITERAL.finditer(source)]
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
    if "{{" in _OUTPUT.sub("", _LITERAL.sub("", source)):
        return None
    return sorted(uses.values(), key=lambda use: (use.line, use.column))


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
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateProblem(
                f"'{attr}' is not allowed in a template (it could escape the sandbox)", node.lineno
            )
    undeclared = meta.find_undeclared_variables(tree)
    lines = source.splitlines() or [""]
    uses: dict[str, NameUse] = {}
    for node in tree.find_all(nodes.Name):
        if node.name in undeclared and node.name not in uses:
            text = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
            match = re.search(r"(?<![\w.])" + re.escape(node.name) + r"(?!\w)", text)
            uses[node.name] = NameUse(node.name, node.lineno, match.start() + 1 if match else 1)
    return sorted(uses.values(), key=lambda use: (use.line, use.column))


def _constant(node: nodes.Node) -> object:
    from jinja2 import nodes

    return node.value if isinstance(node, nodes.Const) else None


def render_template(source: str, context: Mapping[str, object], quote: bool = True) -> str:
    """Render a template, every value shell-quoted unless `quote` is false (for values that
    are not shell text: a directory, an env value, an answer); raises TemplateProblem."""
    if not has_template(source):
        return source
    from jinja2 import TemplateError, TemplateSyntaxError
    from jinja2.exceptions import SecurityError, UndefinedError

    try:
        return _environment(quote).from_string(_protect(source)).render(dict(context))
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


def evaluate_condition(expression: str, context: Mapping[str, object]) -> bool:
    """The truth of a `when` expression over parameters and captured values."""
    from jinja2 import TemplateError, TemplateSyntaxError
    from jinja2.exceptions import SecurityError, UndefinedError

    try:
        compiled = _expressions().compile_expression(expression, undefined_to_none=False)
        return bool(compiled(**dict(context)))
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"expression syntax error: {exc.message}", exc.lineno) from None
    except (SecurityError, UndefinedError, TemplateError) as exc:
        raise TemplateProblem(f"cannot evaluate 'when': {exc}") from None


@dataclass(frozen=True, slots=True)
class RenderedStep:
    """A step's templates filled in: the command as it will run, and its settings."""

    command: str
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    answers: tuple[tuple[str, str, bool], ...]


def render_step(
    body: str,
    cwd: str | None,
    env: tuple[tuple[str, str], ...],
    answers: tuple[tuple[str, str, bool], ...],
    context: Mapping[str, object],
    shell: bool = True,
) -> RenderedStep:
    """Render everything templated about a step. Only the body is shell-quoted: `cwd`, `env`
    values and expect answers are plain values, so they are rendered unquoted."""
    plain = plain_values(context)
    return RenderedStep(
        command=render_template(body, context if shell else plain),
        cwd=render_template(cwd, plain, quote=False) if cwd else None,
        env=tuple((name, render_template(value, plain, quote=False)) for name, value in env),
        answers=tuple(
            (prompt, render_template(send, plain, quote=False), secret)
            for prompt, send, secret in answers
        ),
    )


_HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def quoted_expressions(source: str) -> list[tuple[int, int]]:
    """(line, column) of each `{{ ... }}` written inside shell quotes or a here-document,
    where the quotes added to its value would not protect it (1-based, within the source).

    A value is quoted for the shell as one word; inside "..." or '...' those quotes are just
    characters, so `"$(...)"` in a value would run. A `$( ... )` starts afresh, as the shell
    does, even inside double quotes. `{{ x | unquoted }}` is the author's choice.
    """
    found: list[tuple[int, int]] = []
    # Quoting contexts, innermost last: "" (plain), "'", '"', or "(" for a $( ... ).
    stack: list[str] = [""]
    heredocs: list[str] = []
    in_heredoc = ""
    for number, line in enumerate(source.split("\n"), 1):
        if in_heredoc:
            if line.strip() == in_heredoc:
                in_heredoc = heredocs.pop(0) if heredocs else ""
            else:
                found += [(number, m.start() + 1) for m in _OUTPUT.finditer(line) if _guarded(m)]
            continue
        index = 0
        while index < len(line):
            char, quote = line[index], stack[-1]
            if line.startswith("{{", index):
                end = line.find("}}", index)
                match = _OUTPUT.match(line, index) if end >= 0 else None
                if quote in ("'", '"') and match is not None and _guarded(match):
                    found.append((number, index + 1))
                index = end + 2 if end >= 0 else len(line)
                continue
            if quote == "'":
                if char == "'":
                    stack.pop()
            elif char == "\\":
                index += 1
            elif line.startswith("$(", index) and not line.startswith("$((", index):
                stack.append("(")
                index += 1
            elif quote == '"':
                if char == '"':
                    stack.pop()
            elif char in "'\"":
                stack.append(char)
            elif char == ")" and quote == "(":
                stack.pop()
            elif char == "#" and (index == 0 or line[index - 1] in " \t;"):
                break
            elif line.startswith("<<", index) and not line.startswith("<<<", index):
                heredoc = _HEREDOC.match(line, index)
                if heredoc:
                    heredocs.append(heredoc.group(2))
                    index = heredoc.end()
                    continue
            index += 1
        if heredocs and stack == [""]:
            in_heredoc = heredocs.pop(0)
    return found


def _guarded(match: re.Match[str]) -> bool:
    """An expression whose value gets shell quotes (not Go/GitHub syntax, not `unquoted`)."""
    text = match.group(1)
    return not text.strip().startswith(".") and "unquoted" not in text
