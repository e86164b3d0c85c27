"""Quoting by context: whatever a value holds, the shell receives exactly the value, in every
quoting context a template can sit in, and never runs any of it. Checked against real bash."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.templates import SecretValue, TemplateProblem, render_step, render_template

# A value is any text but NUL (from all of Unicode), or any bytes but NUL (read as the shell
# would: undecodable bytes kept as surrogate escapes, written back as the same bytes).
TEXT = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))
BYTES = (
    st.binary().filter(lambda b: b"\0" not in b).map(lambda b: b.decode("utf-8", "surrogateescape"))
)
VALUES = st.one_of(TEXT, BYTES)

# Each context as people write it, printing the value into a file: (template, what it prints).
CONTEXTS: dict[str, tuple[str, str]] = {
    "word": ("printf %s {{ v }}", "{v}"),
    "double": ('printf %s "Restoring {{ v }} now"', "Restoring {v} now"),
    "single": ("printf %s '<{{ v }}>'", "<{v}>"),
    "ansi-c": ("printf %s $'[{{ v }}]'", "[{v}]"),
    "heredoc": ("cat <<EOF\nline {{ v }}\nEOF", "line {v}\n"),
    "heredoc-dash": ("cat <<-EOF\n\tline {{ v }}\n\tEOF", "line {v}\n"),
    "heredoc-in-substitution": ('m=$(cat <<EOF\n{{ v }}.\nEOF\n)\nprintf %s "$m"', "{v}."),
    "quoted-heredoc": ("cat <<'END_OF_VALUE'\n{{ v }}\nEND_OF_VALUE", "{v}\n"),
    "substitution": ('printf %s "$(printf %s {{ v }}.)"', "{v}."),
    "substitution-in-double": ('printf %s "a $(printf %s "b {{ v }} c")"', "a b {v} c"),
    "default": ('printf %s "${UNSET_FOR_TEST:-{{ v }}}"', "{v}"),
    "assignment": ('x={{ v }}\nprintf %s "$x"', "{v}"),
    "export": ('export x="{{ v }}"\nprintf %s "$x"', "{v}"),
    "case": ("case {{ v }} in *) printf %s {{ v }};; esac", "{v}"),
    "here-string": ('cat <<< "{{ v }}"', "{v}\n"),
    "for": ('for x in {{ v }}; do printf %s "$x"; done', "{v}"),
    "array": ('a=({{ v }} "{{ v }}"); printf %s "${a[0]}|${a[1]}"', "{v}|{v}"),
    "process-substitution": ("cat <(printf %s {{ v }})", "{v}"),
    "substitution-in-heredoc": ('cat <<EOF\n$(printf %s "{{ v }}.")\nEOF', "{v}.\n"),
    "nested-substitution": ('printf %s "$(printf %s "$(printf %s {{ v }}.)")"', "{v}."),
    "test": ('[[ "$(printf %s {{ v }}.)" == "{{ v }}." ]] && printf same', "same"),
}


def _refused(name: str, value: str) -> bool:
    """Values a context refuses (tested below): they never reach the shell."""
    if name == "quoted-heredoc":
        return "END_OF_VALUE" in value
    if name == "substitution-in-heredoc":
        return "EOF" in value  # the here-document around the $( ) would end there
    return name == "default" and "'" in value


def run_bash(script: str, cwd: Path) -> bytes:
    path = cwd / "step.sh"
    path.write_bytes(script.encode("utf-8", "surrogateescape"))
    env = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8", "HOME": str(cwd)}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", str(path)],
        cwd=cwd,
        capture_output=True,
        timeout=20,
        env=env,
        check=False,
    )
    return result.stdout


def _expected(shape: str, value: str) -> bytes:
    return shape.replace("{v}", value).encode("utf-8", "surrogateescape")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=VALUES)
@example(value="a'b\"c$(touch pwned)`id`\\\n}EOF\nEND_OF_VALUE_\n${x}$'\\x41'!")
@example(value="\r\n\t \x1b[31m é 日本 🎉 \udcff")
def test_the_shell_receives_exactly_the_value_in_every_context(value: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _receives_exactly(value, Path(directory))


def _receives_exactly(value: str, tmp_path: Path) -> None:
    script = []
    for name, (template, _shape) in CONTEXTS.items():
        if _refused(name, value):
            continue  # see test_a_value_that_would_end_a_quoted_heredoc_is_refused
        rendered = render_template(template, {"v": value})
        script.append(f"{{\n{rendered}\n}} > out.{name}")
    run_bash("\n".join(script) + "\n", tmp_path)
    for name, (_template, shape) in CONTEXTS.items():
        if _refused(name, value):
            continue
        got = (tmp_path / f"out.{name}").read_bytes()
        assert got == _expected(shape, value), f"context {name}"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("out.")) == [
        "step.sh"
    ]


# Fragments that end quotes, open substitutions or end here-documents, in every combination.
HOSTILE = st.lists(
    st.sampled_from(
        [
            "'",
            '"',
            "`",
            "\\",
            "$",
            "(",
            ")",
            "{",
            "}",
            "\n",
            "\r",
            ";",
            "&",
            "|",
            "<",
            ">",
            "EOF",
            "END",
            "$(touch MARK)",
            "`touch MARK`",
            "';touch MARK;'",
            '";touch MARK;"',
            "\ntouch MARK\n",
            "\nEOF\ntouch MARK\n",
            "${x:-$(touch MARK)}",
            "$'\\x27'",
            "a[$(touch MARK)]",
            "*/",
            "--",
            "#",
            " ",
            "\t",
            "é",
        ]
    ),
    max_size=12,
).map("".join)

# Every context a template can sit in, including those that refuse some values.
INJECTION_CONTEXTS = [
    *(template for template, _ in CONTEXTS.values()),
    "cat <<'EOF'\n{{ v }}\nEOF",
    'msg=$(cat <<EOF\nversion {{ v }}\nEOF\n)\necho "$msg"',
    "echo $(( {{ v }} + 1 ))",
    "[[ {{ v }} -gt 2 ]] && echo big",
    "n={{ v }}; echo $(( n + 1 ))",
    "n={{ v }}\n[[ $n -gt 2 ]] && echo big",
    "(( {{ v }} > 1 )) && echo big",
    "a=(x y z); echo ${a[{{ v }}]}",
    "s=abcdef; echo ${s:{{ v }}:2}",
    "let x={{ v }}+1",
    "declare -i x={{ v }}",
    "echo hi # {{ v }}",
    'echo "${#HOME} {{ v }}"',
    "echo `echo {{ v }}`",
    "arr=([{{ v }}]=1)",
    "declare -A m=([{{ v }}]=1)",
    "echo $[ {{ v }} ]",
    'cat <<EOF\n$(echo "{{ v }}")\nEOF',
    "cat <<EOF\n$(cat <<X\n{{ v }}\nX\n)\nEOF",
    'echo "${V:-{{ v }}}" ${V:-{{ v }}}',
    "if [ {{ v }} -gt 2 ]; then :; fi",
    "n={{ v }}; a[n]=1; echo ${a[n]} ${s:n}",
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=HOSTILE)
@example(payload="a[$(touch MARK)]")
@example(payload="x\nEOF\ntouch MARK\nEOF")
def test_no_value_runs_a_command_in_any_context(payload: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _runs_nothing(payload, Path(directory))


def _runs_nothing(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = payload.replace("MARK", str(marker))
    script = []
    for template in INJECTION_CONTEXTS:
        try:
            script.append(render_template(template, {"v": value}))
        except TemplateProblem:
            continue  # refused: the value cannot be written safely there
    run_bash("\n".join(f"( {s}\n) >/dev/null 2>&1" for s in script) + "\n", tmp_path)
    assert not marker.exists()


def test_restoring_a_file_with_a_space_prints_it_as_written(tmp_path) -> None:
    rendered = render_template('echo "Restoring {{ file }}"', {"file": "my file.txt"})
    assert rendered == 'echo "Restoring my file.txt"'
    assert run_bash(rendered, tmp_path) == b"Restoring my file.txt\n"


@pytest.mark.parametrize(
    "template",
    [
        "[[ {{ count }} -gt 2 ]]",
        "echo $(( {{ count }} + 1 ))",
        "n={{ count }}; echo $(( n + 1 ))",
        "n={{ count }}\nif [[ $n -ge 3 ]]; then echo many; fi",
        "export n={{ count }}; (( n > 1 ))",
        "declare -i n={{ count }}",
        "let n={{ count }}",
        'n="{{ count }}"; echo $(( n + 1 ))',
        "n=$(echo {{ count }}); echo $(( n + 1 ))",
        'read -r n <<< "{{ count }}"; echo $(( n + 1 ))',
        "for n in {{ count }}; do echo $(( n + 1 )); done",
        "arr=([{{ count }}]=1)",
    ],
)
def test_only_an_integer_reaches_shell_arithmetic(template: str, tmp_path) -> None:
    with pytest.raises(TemplateProblem, match="only an integer"):
        render_template(template, {"count": "a[$(touch pwned)]"})
    rendered = render_template(template, {"count": "7"})
    run_bash(rendered, tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_a_value_that_would_end_a_quoted_heredoc_is_refused() -> None:
    with pytest.raises(TemplateProblem, match="would end the quoted here-document"):
        render_template("cat <<'EOF'\n{{ v }}\nEOF", {"v": "x\nEOF\ntouch pwned"})
    # bash ends a here-document at its end word even inside a $( ) within it
    with pytest.raises(TemplateProblem, match="would end the here-document around it"):
        render_template('cat <<EOF\n$(echo "{{ v }}")\nEOF', {"v": "'\nEOF\ntouch pwned"})


def test_a_template_in_backticks_is_refused_with_a_hint() -> None:
    with pytest.raises(TemplateProblem, match=r"\$\( \.\.\. \)"):
        render_template("echo `cat {{ v }}`", {"v": "x"})


def test_unquoted_is_the_authors_choice_in_every_context() -> None:
    assert render_template('ls "{{ f | unquoted }}"', {"f": "$HOME"}) == 'ls "$HOME"'
    note = {"unquoted_note": "$(touch pwned)"}
    # A name containing the word "unquoted" is an ordinary value: it is escaped.
    assert render_template('echo "{{ unquoted_note }}"', note) == 'echo "\\$(touch pwned)"'


def test_a_secret_is_a_variable_reference_in_every_context() -> None:
    secret = {"pw": SecretValue("s3cr3t'\"x", "PW")}
    for template, shape in [
        ("curl -u {{ pw }}", 'curl -u "${PW}"'),
        ('curl -u "admin:{{ pw }}"', 'curl -u "admin:${PW}"'),
        ("curl -u 'admin:{{ pw }}'", "curl -u 'admin:'\"${PW}\"''"),
        ("cat <<EOF\n{{ pw }}\nEOF", "cat <<EOF\n${PW}\nEOF"),
    ]:
        rendered = render_step(template, None, (), (), secret).command
        assert rendered == shape
        assert "s3cr3t" not in rendered


def test_comments_cannot_be_ended_by_a_value(tmp_path) -> None:
    rendered = render_template("echo hi # {{ v }}", {"v": f"x\ntouch {tmp_path}/pwned"})
    run_bash(rendered, tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_a_variable_set_in_one_step_and_used_in_arithmetic_in_another_is_warned() -> None:
    from tests.conftest import found, plan

    def page(pattern: str) -> str:
        return (
            "---\nparams:\n  count: {default: '3'" + pattern + "}\n---\n# Scale\n\n"
            "```bash\nn={{ count }}\n```\n\n```bash\necho $(( n + 1 ))\n```\n"
        )

    assert found(plan(page("")).diagnostics) == [("arithmetic-variable", 12)]
    assert found(plan(page(", pattern: '[0-9]+'")).diagnostics) == []


def test_a_quote_opened_in_one_branch_of_an_if_is_an_error(tmp_path) -> None:
    from tests.conftest import found, plan

    template = '{% if loud %}echo "{% else %}echo {% endif %}{{ v }}"'
    with pytest.raises(TemplateProblem, match="cannot be decided"):
        render_template(template, {"loud": False, "v": f"; touch {tmp_path}/pwned"})
    result = plan(
        "---\nparams:\n  loud: {default: ''}\n  v: {default: x}\n---\n# A\n\n"
        f"```bash\n{template}\n```\n"
    )
    assert found(result.diagnostics) == [("template-context", 9)]
    balanced = '{% if loud %}echo "{{ v }}"{% else %}echo {{ v }}{% endif %}'
    for loud in (True, False):
        rendered = render_template(balanced, {"loud": loud, "v": "a $(b) c"})
        assert run_bash(rendered, tmp_path) == b"a $(b) c\n"
    loop = "{% for h in hosts %}echo '{{ h }}'; {% endfor %}"
    assert run_bash(render_template(loop, {"hosts": ["a'b", "c d"]}), tmp_path) == b"a'b\nc d\n"
