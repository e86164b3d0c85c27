"""Terminal sessions in fences: prompt lines run, the output shown after them never does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import found, parse, plan
from hypothesis import given, settings
from hypothesis import strategies as st
from runbook_cli import assert_no_prompt_runs, check_json, codes, run_in_pty, show_json

from engine.sessions import read_session

# A wiki page as an SRE team writes it: `$ ` prompts and sample output in bash fences.
WIKI = """\
# Queue backlog on the ingester

## Meaning

The ingester's queue keeps growing: consumers are stuck or too few.

## Diagnosis

Look at the backlog first:

```bash
$ mkdir -p state && echo 1200 > state/backlog
$ cat state/backlog
1200
bash: 1: command not found
```

The consumers should all be up:

```console
$ printf '%s\\n' consumer-0 consumer-1 > state/consumers
$ wc -l < state/consumers
2
```

## Mitigation

Restart the consumers (the output below is what a healthy restart prints):

```console
[sre@bastion ~]$ for c in $(cat state/consumers); do \\
>   echo "restarted $c"; done > state/restarted
[sre@bastion ~]$ cat state/restarted
restarted consumer-0
restarted consumer-1
```
"""

# GitLab-style pages: numbered steps, other prompt forms, here-documents, root prompts.
GITLAB = """\
# Rotate the registry certificate

1. Write the new certificate's settings:

   ```shell
   sh-4.4$ cat > cert.conf <<EOF
   > [req]
   > CN = registry.example.com
   > EOF
   sh-4.4$ grep -c CN cert.conf
   1
   ```

1. Check it as root:

   ```console
   # grep CN cert.conf
   CN = registry.example.com
   ```

1. Keep a copy:

   ```
   ops@registry:/srv$ cp cert.conf cert.conf.bak && echo "kept
   copy"
   kept
   copy
   ```
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the pure reading of a session --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("$ ", "bash"),
        ("$> ", "bash"),
        ("% ", "zsh"),
        ("user@host:~/src$ ", "sh"),
        ("[user@host dir]$ ", "shell"),
        ("[root@db01 ~]# ", "bash"),
        ("sh-4.4$ ", "bash"),
        ("sh-4.4# ", "bash"),
        ("bash-5.1$ ", ""),
        ("# ", "console"),
        ("$ ", "terminal"),
        ("$ ", "shell-session"),
        ("$ ", "sh-session"),
    ],
)
def test_each_prompt_form_is_stripped_and_its_output_kept(prompt: str, language: str) -> None:
    session = read_session(f"{prompt}uptime\n 10:00 up 3 days\n", language, 5)
    assert session is not None
    (command,) = session.commands
    assert (command.line, command.command, command.expected) == (5, "uptime", " 10:00 up 3 days")


def test_a_hash_line_is_a_comment_in_a_bash_fence_and_a_root_prompt_in_console() -> None:
    assert read_session("# restart it\nsystemctl restart x\n", "bash", 1) is None
    bash = read_session("# restart it\n$ systemctl restart x\n", "bash", 1)
    assert bash is not None and [c.command for c in bash.commands] == ["systemctl restart x"]
    console = read_session("# systemctl restart x\n$ id -u\n0\n", "console", 1)
    assert console is not None
    assert [c.command for c in console.commands] == ["systemctl restart x", "id -u"]


def test_a_script_is_not_a_session() -> None:
    assert read_session("echo $HOME\nls -l\n", "bash", 1) is None
    assert read_session("echo hi\n$ echo later\n", "bash", 1) is None  # led by a command
    assert read_session("$ echo hi\n", "python", 1) is None
    assert read_session("total 0\n", "console", 1) is None  # output only: nothing to run


@pytest.mark.parametrize(
    ("body", "command", "expected"),
    [
        ("$ ls \\\n  -l\ntotal 0\n", "ls \\\n  -l", "total 0"),
        ("$ echo 'a\nb'\na\nb\n", "echo 'a\nb'", "a\nb"),
        ('$ echo "a\n> b"\na\nb\n', 'echo "a\nb"', "a\nb"),
        ("$ cat <<EOF\n> x\n> EOF\nx\n", "cat <<EOF\nx\nEOF", "x"),
        ("$ cat <<-'END'\nx\n\tEND\nx\n", "cat <<-'END'\nx\n\tEND", "x"),
        ("$ ps aux |\n  grep x\nroot 1\n", "ps aux |\n  grep x", "root 1"),
        (
            "$ for i in 1 2; do\n> echo $i\n> done\n1\n2\n",
            "for i in 1 2; do\necho $i\ndone",
            "1\n2",
        ),
    ],
)
def test_continuation_lines_belong_to_their_command(body: str, command: str, expected: str) -> None:
    session = read_session(body, "console", 1)
    assert session is not None
    assert [(c.command, c.expected) for c in session.commands] == [(command, expected)]


def test_one_step_per_fence_keeps_ids_and_maps_command_lines_to_the_source() -> None:
    runbook = parse(WIKI)
    assert [s.id for s in runbook.steps] == ["diagnosis-1", "diagnosis-2", "mitigation-1"]
    first = runbook.steps[0]
    assert first.command == "mkdir -p state && echo 1200 > state/backlog\ncat state/backlog\n"
    assert first.command_lines == (12, 13)
    assert first.expected == "1200\nbash: 1: command not found"
    assert first.body.startswith("$ mkdir")  # the author's text, for the site
    last = runbook.steps[2]
    assert last.command_lines == (31, 32, 33)
    assert last.source_line(3) == 33


def test_adding_example_output_does_not_change_step_ids() -> None:
    more = WIKI.replace("1200\nbash", "1200\n(one more line of output)\nbash")
    assert [s.id for s in parse(more).steps] == [s.id for s in parse(WIKI).steps]


# -- through the CLI ----------------------------------------------------------------------------


def test_show_json_gives_each_step_its_command_and_expected_output(tmp_path: Path) -> None:
    plan = show_json(tmp_path, write(tmp_path, "wiki.md", WIKI))
    assert_no_prompt_runs(plan)
    steps = {s["id"]: s for s in plan["steps"]}
    assert steps["diagnosis-2"]["command"] == (
        "printf '%s\\n' consumer-0 consumer-1 > state/consumers\nwc -l < state/consumers\n"
    )
    assert steps["diagnosis-2"]["expected"] == "2"
    assert "session=2" in steps["diagnosis-2"]["flags"]
    assert steps["diagnosis-2"]["session"] == [
        {
            "line": 21,
            "command": "printf '%s\\n' consumer-0 consumer-1 > state/consumers",
            "expected": "",
        },
        {"line": 22, "command": "wc -l < state/consumers", "expected": "2"},
    ]
    assert steps["mitigation-1"]["command"].startswith("for c in $(cat state/consumers); do \\\n")
    assert steps["mitigation-1"]["expected"] == "restarted consumer-0\nrestarted consumer-1"


def test_check_notes_a_session_read_from_a_shell_fence_only(tmp_path: Path) -> None:
    found = codes(check_json(tmp_path, write(tmp_path, "wiki.md", WIKI)))
    assert found == [("info", "session-in-shell-fence", 11)]  # console fences say it already


def test_a_session_runs_its_commands_and_never_its_output(tmp_path: Path) -> None:
    path = write(tmp_path, "wiki.md", WIKI)
    ran = run_in_pty(tmp_path, path, "--yes")
    assert ran.status == 0, ran.output
    assert (tmp_path / "state" / "backlog").read_text() == "1200\n"
    assert (tmp_path / "state" / "restarted").read_text().split("\n")[:2] == [
        "restarted consumer-0",
        "restarted consumer-1",
    ]
    assert "command not found" not in ran.output.replace("bash: 1: command not found\n", "", 1)
    assert "Run succeeded" in ran.output


def test_gitlab_style_sessions_with_other_prompts_and_a_here_document(tmp_path: Path) -> None:
    path = write(tmp_path, "gitlab.md", textwrap.dedent(GITLAB))
    plan = show_json(tmp_path, path)
    assert_no_prompt_runs(plan)
    commands = [s["command"] for s in plan["steps"]]
    assert commands == [
        "cat > cert.conf <<EOF\n[req]\nCN = registry.example.com\nEOF\ngrep -c CN cert.conf\n",
        "grep CN cert.conf\n",
        'cp cert.conf cert.conf.bak && echo "kept\ncopy"\n',
    ]
    expected = [s["expected"] for s in plan["steps"]]
    assert expected == ["1", "CN = registry.example.com", "kept\ncopy"]
    found = codes(check_json(tmp_path, path))
    assert [c for _, c, _ in found] == ["session-in-shell-fence", "session-in-shell-fence"]
    ran = run_in_pty(tmp_path, path, "--yes")
    assert ran.status == 0, ran.output
    assert (tmp_path / "cert.conf.bak").read_text() == "[req]\nCN = registry.example.com\n"


def test_a_variable_in_a_session_is_reported_at_its_column_in_the_source() -> None:
    runbook = parse(
        """\
        ```console
        [sre@bastion ~]$ kubectl -n $NAMESPACE get pods
        No resources found.
        $ echo a \\
        >   <pod-name>
        ```
        """
    )
    notes = [(d.code, d.location.line, d.location.column) for d in runbook.diagnostics]
    assert notes == [("implicit-param", 2, 29), ("implicit-param", 5, 5)]
    assert runbook.steps[0].command == (
        "kubectl -n $NAMESPACE get pods\necho a \\\n  {{ pod_name }}\n"
    )


@pytest.mark.parametrize(
    ("body", "commands"),
    [
        # `> ` output after a complete command stays output: it would run as a command.
        ("$ cat notes.md\n> touch pwned\n", ["cat notes.md"]),
        ("$ f() {\n> echo y; }\n", ["f() {\necho y; }"]),
        (
            "$ for x in $(ls ${D}); do\n> echo $x; done\n",
            ["for x in $(ls ${D}); do\necho $x; done"],
        ),
        # `# ` is a root prompt only in a root transcript; elsewhere it is output.
        ("$ cat /etc/hosts\n# touch pwned\n127.0.0.1 localhost\n", ["cat /etc/hosts"]),
        ("# id -u\n0\n# whoami\nroot\n", ["id -u", "whoami"]),
    ],
)
def test_output_that_looks_like_a_prompt_is_never_run(body: str, commands: list[str]) -> None:
    session = read_session(body, "console", 1)
    assert session is not None
    assert [c.command for c in session.commands] == commands


def test_a_prompt_inside_a_script_is_a_warning_at_its_line() -> None:
    runbook = parse("```bash\noc get pods\n$ oc logs ingester-0\n```\n")
    assert found(runbook.diagnostics) == [("prompt-in-script", 3)]
    assert runbook.steps[0].session == ()


# Simple commands (no quotes, continuations or blocks) and output lines that no prompt starts.
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-./=:", min_size=1, max_size=8)
_COMMAND = (
    st.lists(_WORD, min_size=1, max_size=4)
    .map(" ".join)
    .filter(lambda c: not set(c.split()) & {"do", "then", "case"})
)
_OUTPUT = st.text(alphabet="ABCXYZ0123456789 :/", min_size=1, max_size=20).filter(
    lambda o: o.strip() == o
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_COMMAND, st.lists(_OUTPUT, max_size=3)), min_size=1, max_size=6),
    st.sampled_from(["$ ", "$> ", "[ops@db1 ~]$ ", "sh-4.4$ "]),
)
def test_any_transcript_splits_back_into_its_commands_and_outputs(
    pairs: list[tuple[str, list[str]]], prompt: str
) -> None:
    body = "".join(
        prompt + command + "\n" + "".join(o + "\n" for o in out) for command, out in pairs
    )
    session = read_session(body, "console", 10)
    assert session is not None
    assert [(c.command, c.expected) for c in session.commands] == [
        (command, "\n".join(out)) for command, out in pairs
    ]
    assert session.command_text == "\n".join(command for command, _ in pairs)


def test_an_annotation_on_a_session_applies_to_its_step() -> None:
    runbook = parse(
        """\
        ```console {id: restart, timeout: 1m}
        $ systemctl restart ingester
        ```

        ```console {run: false}
        $ kubectl drain <node-name>
        node/worker-1 drained
        ```
        """
    )
    restart, example = runbook.steps
    assert (restart.id, restart.timeout, restart.command) == (
        "restart",
        60.0,
        "systemctl restart ingester\n",
    )
    assert (example.run, example.expected) == (False, "node/worker-1 drained")
    assert runbook.params == ()  # a display-only example asks nothing


def test_templates_are_checked_in_the_commands_not_in_the_sample_output() -> None:
    text = """\
# Values

```console
$ helm get values web
image: {{ .Values.image
replicas: 3
$ kubectl -n {{ namspace }} get pods
NAME   READY
```
"""
    result = plan(text)
    assert not [d for d in result.diagnostics if d.is_error]
    # The output's unclosed `{{` is not read; the command's template is, at its own place.
    notes = [(d.code, d.location.line, d.location.column) for d in result.diagnostics]
    assert notes == [("literal-template", 7, 14)]


def test_an_unlabelled_root_transcript_is_a_session() -> None:
    body = (
        "# nginx -t\nnginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n"
        "# systemctl reload nginx\n"
    )
    session = read_session(body, "", 10)
    assert session is not None
    assert [(c.command, c.line) for c in session.commands] == [
        ("nginx -t", 10),
        ("systemctl reload nginx", 12),
    ]


def test_a_commented_script_is_no_root_transcript() -> None:
    # Comments above commands, comments in words, or a labelled shell fence: never prompts.
    assert read_session("# nginx -t first\nnginx -s reload\n", "", 1) is None
    assert read_session("# check the config\nit should say ok\n", "", 1) is None
    assert read_session("# nginx -t\nnginx: syntax is ok\n", "bash", 1) is None
    assert read_session("# nginx -t\n# systemctl reload nginx\n", "", 1) is None
