"""Templates that are not Jinja, templates that try to hang or crash the engine, and values in
interpreter steps: each a clear result, never code, never a hang, never an internal error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.templates import TemplateProblem, render_step, render_template, template_names
from tests.conftest import found, plan

RUNBOOK = Path(sys.executable).parent / "runbook"

HELM_PAGE = """\
---
title: Find the pods of a release
params:
  namespace: {default: monitoring}
  host: {default: db1}
---

# Pods of a release

List the pods the way the chart's own docs do:

```bash
kubectl get pods -n {{ namespace }} --template='{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}'
helm template x . --set 'a={{ $k }}' | grep {{ namespace }}
echo "${#HOSTNAME} characters in {{ host }}"
```

```bash
ping -c1 {{ hots }}
```
"""


def test_go_and_helm_templates_are_literal_text_with_a_note(tmp_path: Path) -> None:
    result = plan(HELM_PAGE)
    codes = found(result.diagnostics)
    assert ("undefined-name", 19) in codes  # {{ hots }}: one edit from host
    notes = [d for d in result.diagnostics if d.code == "literal-template"]
    assert [d.location.line for d in notes] == [13, 13, 13, 13, 14]
    assert all(str(d.severity) == "info" for d in notes)
    assert [d.code for d in result.diagnostics if d.is_error] == ["undefined-name"]
    hint = next(d.hint for d in result.diagnostics if d.code == "undefined-name")
    assert hint == "did you mean 'host'?"
    body = result.steps()[0].body
    rendered = render_template(body, {"namespace": "monitoring", "host": "db 1"})
    assert "--template='{{range .items}}{{.metadata.name}}{{\"\\n\"}}{{end}}'" in rendered
    assert "--set 'a={{ $k }}'" in rendered
    assert 'echo "${#HOSTNAME} characters in db 1"' in rendered


def test_a_near_miss_stays_an_error_when_rendered() -> None:
    with pytest.raises(TemplateProblem, match="undefined"):
        render_template("ping {{ hots }}", {"host": "db1"})
    assert render_template("ping {{ end }}", {"host": "db1"}) == "ping {{ end }}"


def test_shell_length_expansion_is_not_a_jinja_comment() -> None:
    names = template_names("echo ${#VAR} ${#arr[@]} {{ x }}")
    assert [(n.name, n.column) for n in names] == [("x", 28)]
    assert render_template("echo ${#PATH} {{ x }}", {"x": "a b"}) == "echo ${#PATH} 'a b'"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("echo {{ 7**(10**8) }}", "too large"),
        ("echo {{ 'A'*(10**9) }}", "too large"),
        ("echo {{ 'A'|center(10**9) }}", "too large"),
        ("echo {{ 'A'.ljust(10**9) }}", "too large"),
        ("echo {{ '%0999999999d' % 1 }}", "too large"),
        ("{% for i in range(10**8) %}x{% endfor %}", "Range too big"),
        ("{% include 'other.md' %}", "include"),
        ("{% import 'macros' as m %}", "import"),
        ("{% from 'macros' import m %}", "import"),
        ("{% extends 'base' %}", "extends"),
        ("echo {{ '%s %s'|format(1) }}", "not enough arguments"),
        ("echo {{ (1)|format(1) }}", "template error"),
    ],
)
def test_hostile_templates_are_clear_errors_quickly(template: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateProblem, match=message):
        render_template(template, {"x": "1"})
    assert time.monotonic() - started < 5


def test_a_template_that_loops_too_long_is_stopped() -> None:
    loops = "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem, match="longer than"):
        render_template(loops, {})


CHECKED = """\
---
title: Hostile templates
params:
  count: {default: "3"}
---

# Templates that used to crash or hang check

```bash
echo {{ 7**(10**8) }} {{ count }}
```

```bash
{% include 'other.md' %}
```

```bash
echo `cat {{ count }}`
```
"""


def test_check_reports_hostile_templates_at_their_line_and_never_hangs(tmp_path: Path) -> None:
    path = tmp_path / "hostile.md"
    path.write_text(CHECKED)
    started = time.monotonic()
    result = subprocess.run(
        [str(RUNBOOK), "check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert time.monotonic() - started < 30
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    assert f"{path}:14:1: error: {{% include %}} is not available" in result.stdout
    assert f"{path}:18:1: error: a template inside `...` cannot be escaped" in result.stdout


# -- interpreter steps: the language's own literals, never shell quoting -------------------------

HOSTILE_NAME = '"+__import__("os").system("touch pwned")+"'


@pytest.mark.parametrize(
    "body",
    [
        'print("hello {{ name }}")',
        "print('hello {{ name }}')",
        'print(f"hello {{ name }}")',
        'print("hello", {{ name }})',
        'print("""hello\n{{ name }}""")',
        "# a note on {{ name }}\nprint('hello')",
    ],
)
@pytest.mark.parametrize("name", [HOSTILE_NAME, "world", "{x}'\"\\\n\t é 🎉 $(id) \\x41"])
def test_a_value_in_a_python_step_is_a_python_literal(body: str, name: str, tmp_path) -> None:
    rendered = render_step(body, None, (), (), {"name": name}, interpreter="python3").command
    result = subprocess.run(
        [sys.executable, "-"], input=rendered, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "pwned").exists()
    if "{{ name }}" in body.splitlines()[-1] or '"""' in body:
        assert name in result.stdout


def test_a_python_raw_string_refuses_values_it_cannot_hold() -> None:
    with pytest.raises(TemplateProblem, match="raw string"):
        render_step('print(r"{{ n }}")', None, (), (), {"n": 'a"'}, interpreter="python3")
    plain = render_step('print(r"{{ n }}")', None, (), (), {"n": "abc"}, interpreter="python3")
    assert plain.command == 'print(r"abc")'


@pytest.mark.skipif(
    not any(Path(p, "sqlite3").exists() for p in os.get_exec_path()), reason="no sqlite3"
)
def test_a_value_in_an_sql_step_is_an_sql_literal(tmp_path) -> None:
    value = "x'); DROP TABLE t; --\n\\' é"
    body = (
        "CREATE TABLE t (v TEXT);\nINSERT INTO t VALUES ({{ v }}), ('{{ v }}');\nSELECT v FROM t;"
    )
    rendered = render_step(body, None, (), (), {"v": value}, interpreter="sqlite3").command
    result = subprocess.run(
        ["sqlite3", str(tmp_path / "db")], input=rendered, capture_output=True, text=True
    )
    assert result.stdout == f"{value}\n{value}\n"


def test_mysql_strings_escape_backslashes() -> None:
    rendered = render_step(
        "SELECT '{{ v }}', {{ v }};", None, (), (), {"v": "a\\'b"}, interpreter="mysql -u app"
    )
    assert rendered.command == "SELECT 'a\\\\''b', 'a\\\\''b';"


def test_a_value_in_a_node_step_is_a_javascript_literal() -> None:
    rendered = render_step(
        "console.log(`hi ${x} {{ v }}`, {{ v }})",
        None,
        (),
        (),
        {"v": "`${1}'\""},
        interpreter="node",
    )
    assert rendered.command == (
        'console.log(`hi ${x} \\u{60}\\u{24}\\u{7b}1\\u{7d}\\u{27}\\u{22}`, "`${1}\'\\"")'
    )


def test_an_interpreter_without_an_escaper_refuses_templates_in_check() -> None:
    result = plan(
        "---\nparams:\n  name: {default: x}\n---\n# A\n\n"
        "```ruby {interpreter: ruby}\nputs '{{ name }}'\n```\n"
    )
    assert found(result.diagnostics) == [("template-context", 8)]
    assert "env:" in (result.diagnostics[0].hint or "")


@pytest.mark.parametrize(
    "expression", ["7**(10**8) > 1", "'A'*(10**9)", "range(10**8)|list", "1/0", "'%s %s'|format(1)"]
)
def test_hostile_when_expressions_are_clear_errors(expression: str) -> None:
    from engine.templates import evaluate_condition

    started = time.monotonic()
    with pytest.raises(TemplateProblem, match="cannot evaluate 'when'"):
        evaluate_condition(expression, {})
    assert time.monotonic() - started < 5


PYTHON_TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


@settings(max_examples=40, deadline=None)
@given(value=PYTHON_TEXT)
def test_python_receives_exactly_the_value_in_every_kind_of_string(value: str) -> None:
    body = (
        "import sys\n"
        "parts = [{{ v }}, '{{ v }}', \"{{ v }}\", f'{{ v }}', '''{{ v }}''']\n"
        'parts.append("""{{ v }}""")\n'
        "parts.append(b'{{ v }}'.decode())\n"
        "sys.stdout.buffer.write('\\0'.join(parts).encode())\n"
    )
    rendered = render_step(body, None, (), (), {"v": value}, interpreter="python3").command
    result = subprocess.run([sys.executable, "-"], input=rendered.encode(), capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\0") == [value] * 7


@settings(max_examples=60, deadline=None)
@given(value=PYTHON_TEXT)
def test_sql_receives_exactly_the_value_in_and_out_of_strings(value: str) -> None:
    import sqlite3

    body = (
        "CREATE TABLE t (v TEXT);\n"
        "INSERT INTO t VALUES ({{ v }}); -- {{ v }}\n"
        "INSERT INTO t VALUES ('{{ v }}'); /* {{ v }} */\n"
    )
    rendered = render_step(body, None, (), (), {"v": value}, interpreter="sqlite3 app.db").command
    connection = sqlite3.connect(":memory:")
    connection.executescript(rendered)
    assert [row[0] for row in connection.execute("SELECT v FROM t")] == [value, value]


def test_braces_with_percent_or_hash_that_open_no_jinja_tag_are_shell_text() -> None:
    context = {"v": "a b"}
    assert render_template("printf '{%s}\\n' {{ v }}", context) == "printf '{%s}\\n' 'a b'"
    assert render_template("echo {# not closed {{ v }}", context) == "echo {# not closed 'a b'"
    assert render_template("{# a note #}echo {{ v }}", context) == "echo 'a b'"
    assert render_template("{% if v %}echo {{ v }}{% endif %}", context) == "echo 'a b'"
    assert [u.name for u in template_names("awk '{%d}' {{ v }}", ["v"])] == ["v"]
