"""Placeholders and never-set variables become parameters: asked once, given by -p, substituted."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest
from conftest import found, parse
from runbook_cli import (
    RUNBOOK,
    assert_no_prompt_runs,
    check_json,
    cli,
    codes,
    environment,
    run_in_pty,
    show_json,
)

# A Hugo page of an SRE team: front matter for the theme, placeholders for the reader to fill in.
HUGO = """\
---
title: "Drain a node"
weight: 20
bookCollapseSection: true
aliases: [/runbooks/drain/]
menu:
  main:
    parent: nodes
draft: false
date: 2024-03-01
---

Run this when the `NodeNotReady` alert fires for one node.

## Cordon

```bash
echo "cordon <node-name>" > cordon.log
```

## Record the namespace

The namespace comes from the alert's labels.

```bash
NAMESPACE_LABEL='<value of namespace label from alert>'
echo "$NAMESPACE_LABEL on $CLUSTER in ${REGION:-eu-north-1}" > where.log
for POD in a b; do echo "$POD" >> pods.log; done
echo "$HOME" | grep -q / && echo 'HOME is not asked' > home.log
```

## Notify

```bash
printf 'token=%s\\n' YOUR_TOKEN > notify.log
```
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the pure rules ----------------------------------------------------------------------------


def test_placeholders_become_templates_and_parameters_named_in_snake_case() -> None:
    runbook = parse(HUGO)
    implicit = [(p.name, p.line, p.description) for p in runbook.params if p.implicit]
    assert implicit == [
        ("node_name", 18, "node name"),
        ("namespace_label", 26, "value of namespace label from alert"),
        ("cluster", 27, "$CLUSTER, which the runbook never sets"),
        ("your_token", 35, "YOUR_TOKEN in the text"),
    ]
    commands = [s.command for s in runbook.steps]
    assert commands[0] == 'echo "cordon {{ node_name }}" > cordon.log\n'
    assert commands[1].startswith("NAMESPACE_LABEL={{ namespace_label }}\n")
    assert "$CLUSTER" in commands[1]  # exported as CLUSTER: the shell reads it as it is
    assert commands[2] == "printf 'token=%s\\n' {{ your_token }} > notify.log\n"
    assert runbook.steps[0].body == 'echo "cordon <node-name>" > cordon.log\n'  # for the site


@pytest.mark.parametrize(
    "script",
    [
        "export NS=prod\necho $NS",
        "NS=prod; echo ${NS}",
        "read -r -p 'Namespace: ' NS\necho $NS",
        "for NS in a b; do echo $NS; done",
        "NS=$(kubectl config view --minify -o name)\necho $NS",
        "echo ${NS:-default}",
        "echo ${NS-default} ${NS:=x} ${NS:+set}",
        "echo '$NS'",
        "echo \\$NS",
        "# echo $NS <node>\necho ok",
        "echo $HOME $PATH $USER $PWD $HOSTNAME $KUBECONFIG $LC_ALL $RANDOM",
        "echo $ns_lower $1 $? $@",
        "cat <<'EOF'\n$NOT_EXPANDED\nEOF",
        "cat <<EOF\n<configuration>\n</configuration>\nEOF",
        "sort <input.txt >output.txt\ncat <<EOF\nx\nEOF\ndiff <(ls a) <(ls b)",
        "echo {{ ns }}",
        "printf -v NS '%s' x; echo $NS",
        'git commit --author "Ops <ops@example.com>" -m "<b>bold</b>"',
        "YOUR_TOKEN=abc; echo $YOUR_TOKEN",
        "echo '<br/>' '<hr />'",
        # Brackets that are shell or data, not placeholders:
        "kubectl get pods -o jsonpath='{.items[0].metadata.name}'",
        "if [ -f /etc/x ]; then echo y; fi",
        "ls /var/log/syslog.[0-9]; tr '[A-Z]' '[a-z]' < f; grep -E '[a-z]+' f",
        "grep '[ERROR]' app.log; echo [Y/n]",
        "a=(x y); echo ${a[idx]}; jq '.[] | .name' f.json",
        "cat > c.ini <<EOF\n[default]\nregion = x\nEOF",
    ],
)
def test_what_is_set_or_is_not_a_placeholder_is_not_asked(script: str) -> None:
    runbook = parse(f"---\nparams:\n  ns: {{default: x}}\n---\n```bash\n{script}\n```\n")
    assert [p.name for p in runbook.params if p.implicit] == []


def test_a_variable_set_by_an_earlier_step_or_front_matter_env_is_not_asked() -> None:
    runbook = parse(
        """\
        ---
        env: {REGION: eu}
        ---
        ```bash
        export NAMESPACE=ops
        ```
        ```bash
        echo $NAMESPACE $REGION $LATER
        ```
        ```bash
        LATER=1
        ```
        """
    )
    assert [p.name for p in runbook.params if p.implicit] == ["later"]


def test_a_placeholder_naming_a_declared_parameter_uses_it() -> None:
    runbook = parse(
        """\
        ---
        params:
          node_name: {description: The node, default: web-1}
        ---
        ```bash
        kubectl drain <node-name> && echo $NODE_NAME
        ```
        """
    )
    assert [p.name for p in runbook.params] == ["node_name"]
    assert runbook.steps[0].command == "kubectl drain {{ node_name }} && echo $NODE_NAME\n"


def test_display_only_and_interpreter_blocks_ask_nothing() -> None:
    runbook = parse(
        """\
        ```bash {run: false}
        kubectl drain <node-name>
        ```
        ```python {run: true}
        print("$NOT_SHELL <x>")
        ```
        """
    )
    assert runbook.params == ()


def test_check_reports_each_implicit_parameter_at_its_first_use() -> None:
    runbook = parse(HUGO)
    notes = [(d.code, d.location.line, d.location.column) for d in runbook.diagnostics]
    assert notes == [
        ("implicit-param", 18, 14),
        ("implicit-param", 26, 18),
        ("implicit-param", 27, 27),
        ("implicit-param", 35, 21),
    ]
    assert found(runbook.diagnostics)[0] == ("implicit-param", 18)


# -- through the CLI ----------------------------------------------------------------------------


def test_show_json_lists_implicit_parameters_and_the_command_that_runs(tmp_path: Path) -> None:
    plan = show_json(tmp_path, write(tmp_path, "drain.md", HUGO))
    assert_no_prompt_runs(plan)
    params = {p["name"]: p for p in plan["params"]}
    assert {n for n, p in params.items() if p["implicit"]} == {
        "node_name",
        "namespace_label",
        "cluster",
        "your_token",
    }
    assert params["node_name"]["required"] is True
    assert plan["steps"][0]["command"] == 'echo "cordon {{ node_name }}" > cordon.log\n'
    assert "expected" not in plan["steps"][0]  # a script, not a session


def test_show_text_says_where_an_implicit_parameter_comes_from(tmp_path: Path) -> None:
    result = cli(tmp_path, "show", write(tmp_path, "drain.md", HUGO))
    assert result.returncode == 0, result.stderr
    assert "from the text, line 18" in result.stdout


def test_check_of_a_hugo_page_has_notes_and_no_errors(tmp_path: Path) -> None:
    found_codes = codes(check_json(tmp_path, write(tmp_path, "drain.md", HUGO)))
    assert found_codes == [
        ("info", "implicit-param", 18),
        ("info", "implicit-param", 26),
        ("info", "implicit-param", 27),
        ("info", "implicit-param", 35),
    ]


def test_check_text_lists_the_notes_and_counts_them(tmp_path: Path) -> None:
    result = cli(tmp_path, "check", write(tmp_path, "drain.md", HUGO))
    assert result.returncode == 0
    assert "drain.md:18:14: info: <node-name> is asked as parameter 'node_name'" in result.stdout
    assert "0 errors, 0 warnings, 4 notes" in result.stderr


def test_an_unattended_run_without_them_refuses_before_any_step(tmp_path: Path) -> None:
    path = write(tmp_path, "drain.md", HUGO)
    ran = run_in_pty(tmp_path, path, "--yes", "-p", "node_name=web-1")
    assert ran.status == 2, ran.output
    assert "namespace_label (from the text, line 26)" in ran.output
    assert "cluster (from the text, line 27)" in ran.output
    assert "node_name" not in ran.output
    assert not (tmp_path / "cordon.log").exists()


def test_a_run_substitutes_placeholders_and_exports_variables(tmp_path: Path) -> None:
    # A value with spaces inside the author's quotes needs the context-aware quoting of
    # templates; here the spaced value sits where the author left no quotes.
    path = write(tmp_path, "drain.md", HUGO)
    params_file = write(tmp_path, "params.yml", "CLUSTER: prod-1\nyour_token: s3cr3t t0ken\n")
    ran = run_in_pty(
        tmp_path,
        path,
        "--yes",
        "--params-file",
        str(params_file),
        "-p",
        "node_name=worker-3",
        "-p",
        "namespace_label=team-a",
    )
    assert ran.status == 0, ran.output
    assert (tmp_path / "cordon.log").read_text() == "cordon worker-3\n"
    assert (tmp_path / "where.log").read_text() == "team-a on prod-1 in eu-north-1\n"
    assert (tmp_path / "pods.log").read_text() == "a\nb\n"
    assert (tmp_path / "home.log").read_text() == "HOME is not asked\n"
    assert (tmp_path / "notify.log").read_text() == "token=s3cr3t t0ken\n"
    assert "s3cr3t" not in ran.output  # a token asked for by its name is a secret
    (run,) = json.loads(cli(tmp_path, "log", "list", "--format", "json").stdout)
    assert run["params"]["node_name"] == "worker-3"  # journalled like a declared parameter
    assert run["params"]["cluster"] == "prod-1"
    assert "s3cr3t" not in (tmp_path / "j.db").read_bytes().decode("utf-8", "replace")


def test_a_placeholder_named_like_a_template_word_gets_a_usable_name() -> None:
    runbook = parse("```bash\nkubectl label node x <none>\n```\n")
    assert [p.name for p in runbook.params] == ["none_value"]
    assert runbook.steps[0].command == "kubectl label node x {{ none_value }}\n"


def test_a_placeholder_named_like_a_credential_is_secret() -> None:
    runbook = parse("```bash\ncurl -u admin:<admin password> -H 'X-Key: YOUR_API_KEY' x\n```\n")
    assert [(p.name, p.secret) for p in runbook.params] == [
        ("admin_password", True),
        ("your_api_key", True),
    ]


def test_an_interactive_run_asks_each_implicit_parameter_once_at_the_start(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cordon.md",
        "# Cordon\n\n```bash\necho <node-name> $ZONE > a.log\n```\n\n"
        "```console\n$ echo <node-name> >> a.log\n```\n",
    )
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", str(path)],
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=30,
        env=environment(tmp_path),
    )
    child.expect_exact("node_name: ")
    child.sendline("web-1")
    child.expect_exact("zone: ")
    child.sendline("eu-1")
    for _ in range(2):
        child.expect_exact("[a]bort / [?] ")
        child.send("r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (tmp_path / "a.log").read_text() == "web-1 eu-1\nweb-1\n"


def test_a_secret_variable_from_the_text_reaches_every_step(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "token.md",
        '```bash\necho "$API_TOKEN" > a.txt\n```\n\n```bash\necho "$API_TOKEN" > b.txt\n```\n',
    )
    (param,) = parse(path.read_text()).params
    assert (param.name, param.secret, param.implicit) == ("api_token", True, True)
    ran = run_in_pty(tmp_path, path, "--yes", "-p", "API_TOKEN=abc123")
    assert ran.status == 0, ran.output
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text() == "abc123\n"
    assert "abc123" not in ran.output


def test_bracketed_placeholders_of_template_pages_are_asked() -> None:
    runbook = parse(
        "# Alert\n\n```bash\nkubectl logs -f [pod-name] -n [namespace] --tail=100\n"
        "curl 'http://prometheus:9090/api/v1/query?query=[METRIC_NAME]'\n```\n"
    )
    assert [p.name for p in runbook.params if p.implicit] == [
        "pod_name",
        "namespace",
        "metric_name",
    ]
    scaled = parse("# Scale\n\n```bash\nkubectl scale deployment/web --replicas=[N]\n```\n")
    assert scaled.steps[0].command == "kubectl scale deployment/web --replicas={{ n }}\n"
    assert runbook.steps[0].command.splitlines() == [
        "kubectl logs -f {{ pod_name }} -n {{ namespace }} --tail=100",
        "curl 'http://prometheus:9090/api/v1/query?query={{ metric_name }}'",
    ]
