"""Templates: shell quoting, the one opt-out, the sandbox, strict names."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from engine.templates import (
    TemplateProblem,
    evaluate_condition,
    expression_names,
    render_template,
    template_names,
)


def test_values_are_one_shell_word_whatever_they_hold(tmp_path) -> None:
    marker = tmp_path / "x"
    hostile = f"$(touch {marker}); rm -rf ~ `id` 'q' \"d\" \n next"
    command = render_template("printf '%s|' {{ value }}", {"value": hostile})
    assert shlex.split(command) == ["printf", "%s|", hostile]
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)
    assert result.stdout == hostile + "|"
    assert not marker.exists()


def test_unquoted_is_the_explicit_opt_out() -> None:
    assert render_template("ls {{ flags | unquoted }}", {"flags": "-l -a"}) == "ls -l -a"
    assert render_template("ls {{ flags }}", {"flags": "-l -a"}) == "ls '-l -a'"


def test_undefined_names_fail_at_render_time() -> None:
    # A near miss of a known name stays a template (and fails); a name nothing resembles is
    # not Jinja for this runbook and is passed as written (see tests/test_quoting.py).
    with pytest.raises(TemplateProblem, match="undefined"):
        render_template("echo {{ hots }}", {"host": "db"})


def test_sandbox_escapes_are_refused_when_checked_and_when_rendered() -> None:
    with pytest.raises(TemplateProblem, match="not allowed"):
        template_names("{{ ''.__class__.__mro__ }}")
    with pytest.raises(TemplateProblem, match="not allowed"):
        template_names("{{ x['__globals__'] }}")
    with pytest.raises(TemplateProblem):
        render_template("{{ x.__class__.__init__.__globals__ }}", {"x": "s"})


def test_go_templates_and_github_expressions_render_literally() -> None:
    source = "docker ps --format '{{.Names}}' && echo ${{ github.sha }} {{ a }}"
    assert render_template(source, {"a": "b c"}) == (
        "docker ps --format '{{.Names}}' && echo ${{ github.sha }} 'b c'"
    )
    assert [u.name for u in template_names(source)] == ["a"]


def test_names_with_lines_and_columns_simple_and_complex() -> None:
    simple = template_names("a\n  x {{ host }} {{ port | unquoted }}\n{{ host }}")
    assert [(u.name, u.line, u.column) for u in simple] == [("host", 2, 8), ("port", 2, 19)]
    loops = template_names("{% for h in hosts %}ping {{ h }} {{ domain }}\n{% endfor %}")
    assert [u.name for u in loops] == ["hosts", "domain"]


def test_unknown_filter_is_reported() -> None:
    with pytest.raises(TemplateProblem, match="no filter named 'shout'"):
        template_names("echo {{ x | shout }}")


def test_conditions() -> None:
    assert [u.name for u in expression_names('env == "prod" and count > 2')] == ["env", "count"]
    assert evaluate_condition('env == "prod"', {"env": "prod"})
    assert not evaluate_condition("flag", {"flag": ""})
    with pytest.raises(TemplateProblem):
        evaluate_condition("missing", {})


def test_a_secret_value_is_inserted_as_a_reference_to_its_variable() -> None:
    from engine.templates import SecretValue, plain_values, render_step

    context = {"token": SecretValue("s3cr3t' x", "TOKEN"), "host": "db"}
    rendered = render_step(
        "curl -u {{ token }} {{ host }} {{ token | unquoted }}", None, (), (), context
    )
    assert rendered.command == 'curl -u "${TOKEN}" db ${TOKEN}'
    assert "s3cr3t" not in rendered.command
    python = render_step("print({{ token }})", None, (), (), context, interpreter="python3")
    assert python.command == 'print("s3cr3t\\x27 x")'  # Python's own literal syntax
    assert plain_values(context)["token"] == "s3cr3t' x"
