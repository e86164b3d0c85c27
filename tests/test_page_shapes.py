"""Runbooks in the shapes teams write them (GitLab-style numbered procedures, mkdocs pages with
admonitions and content tabs, wiki pages with unlabelled blocks): which steps each yields."""

from __future__ import annotations

from engine.classify import BlockKind, judge_block
from engine.model import StepKind
from engine.parse import parse_runbook

NUMBERED_PROCEDURE = """\
# Restart Puma on a stuck node

1. Log in to the affected node and check the service:
   `sudo gitlab-ctl status puma`
1. Stop Puma on each node, one at a time: `sudo gitlab-ctl stop puma`
1. Wait until no worker is left (see the [process list](../processes.md)).
1. Start it again with `sudo gitlab-ctl start puma` and then check
   `sudo gitlab-ctl tail puma`.

- Bullet notes like `gitlab-ctl status` are not part of the procedure.
"""


def test_numbered_items_with_commands_become_manual_steps_that_offer_them() -> None:
    steps = parse_runbook(NUMBERED_PROCEDURE, "puma.md").steps
    assert [s.kind for s in steps] == [StepKind.MANUAL] * 3
    assert [s.offers for s in steps] == [
        ("sudo gitlab-ctl status puma",),
        ("sudo gitlab-ctl stop puma",),
        ("sudo gitlab-ctl start puma", "sudo gitlab-ctl tail puma"),
    ]
    assert [s.line for s in steps] == [3, 5, 7]


def test_a_numbered_item_with_its_own_fence_is_not_offered_twice() -> None:
    text = (
        "1. Reconfigure with `sudo gitlab-ctl reconfigure`:\n\n"
        "   ```bash\n   sudo gitlab-ctl reconfigure\n   ```\n"
        "2. Done.\n"
    )
    steps = parse_runbook(text, "x.md").steps
    assert [(s.kind, s.body.strip()) for s in steps] == [
        (StepKind.COMMAND, "sudo gitlab-ctl reconfigure")
    ]


MKDOCS_PAGE = """\
# Install the agent

!!! warning "Before you start"
    Take the node out of the load balancer:

    ```bash
    ./lb.sh drain web-1
    ```

=== "Ubuntu"

    ```bash
    sudo apt-get install -y node-agent
    ```

=== "RHEL"

    ```bash
    sudo dnf install -y node-agent
    ```

??? note "If the package is not found"
    ```
    sudo apt-get update
    ```
"""


def test_commands_in_admonitions_and_tabs_are_steps_and_tabs_are_branches() -> None:
    steps = parse_runbook(MKDOCS_PAGE, "agent.md").steps
    assert [s.body.strip() for s in steps] == [
        "./lb.sh drain web-1",
        "sudo apt-get install -y node-agent",
        "sudo dnf install -y node-agent",
        "sudo apt-get update",
    ]
    drain, ubuntu, rhel, update = steps
    assert drain.branch is None
    # A collapsed note titled "If ..." holds a fallback: an option of its own choice.
    assert update.branch is not None and update.branch.label == "If the package is not found"
    assert ubuntu.branch is not None and rhel.branch is not None
    assert ubuntu.branch.choice == rhel.branch.choice
    assert (ubuntu.branch.label, rhel.branch.label) == ("Ubuntu", "RHEL")
    assert update.guessed and not ubuntu.guessed


WIKI_ALTERNATIVES = """\
# Recover a replica

## Check the lag

```
psql -c 'select now() - pg_last_xact_replay_timestamp()'
```

## Option 1: restart replication

```bash
sudo systemctl restart postgresql
```

### Verify

```bash
psql -c 'select 1'
```

## Option 2: rebuild from the primary

```bash
pg_basebackup -h primary -D /var/lib/postgresql/data
```

## Afterwards

Sample output of a healthy replica:

```
 replay_lag
------------
 00:00:00.1
```
"""


def test_option_headings_are_branches_of_one_choice_and_output_is_not_guessed() -> None:
    steps = parse_runbook(WIKI_ALTERNATIVES, "replica.md").steps
    lag, restart, verify, rebuild = steps
    assert lag.guessed and lag.branch is None
    assert restart.branch is not None and verify.branch is not None
    assert rebuild.branch is not None
    assert restart.branch == verify.branch
    assert restart.branch.choice == rebuild.branch.choice
    assert rebuild.branch.label == "Option 2: rebuild from the primary"
    assert len(steps) == 4  # the sample output block is text


def test_a_page_with_no_steps_but_command_blocks_says_why() -> None:
    text = "# Notes\n\nOn Windows:\n\n```powershell\nkubectl get pods -A\n```\n\nand read it.\n"
    runbook = parse_runbook(text, "notes.md")
    assert runbook.steps == ()
    (warning,) = [d for d in runbook.diagnostics if d.code == "no-steps"]
    assert "line 5 (a fence of commands)" in warning.message


def test_an_indented_code_block_of_commands_is_a_guessed_step() -> None:
    # Older wiki Markdown has no fences: a procedure's commands are indented blocks.
    text = (
        "# Context\n\n1. Check the context:\n\n       kubectl config current-context\n\n"
        "2. The output should look like this:\n\n       prod-eu-1\n\n"
        "Then list them:\n\n    kubectl get pods -A\n    kubectl get nodes\n\n"
        "Expected output:\n\n    kubectl version 1.31\n"
    )
    steps = parse_runbook(text, "context.md").steps
    assert [(s.line, s.body_line, s.command, s.guessed) for s in steps] == [
        (5, 5, "kubectl config current-context\n", True),
        (13, 13, "kubectl get pods -A\nkubectl get nodes\n", True),
    ]
    assert steps[1].prose.strip().endswith("Then list them:")


def test_a_block_after_expected_output_is_never_guessed_a_command() -> None:
    for label in (
        "Expected output:",
        "Sample output",
        "You should see something like:",
        "The result should look like this:",
        "It returns:",
        "Output:",
    ):
        text = f"# Expiry\n\n```bash\nopenssl x509 -noout -enddate -in c.pem\n```\n\n{label}\n\n"
        text += "```\nnotAfter=Dec 31 23:59:59 2026 GMT\ndate\n```\n"
        steps = parse_runbook(text, "expiry.md").steps
        assert [s.line for s in steps] == [3], label
    # An unlabelled block that follows ordinary prose is still judged by what it holds: only
    # the paragraph's last sentence counts, and "shows" or "see" before a command is no label.
    for prose in (
        "Run it and check the output:",
        "You should see the pod running. Then run:",
        "This command shows the pods:",
    ):
        text = f"# Pods\n\n{prose}\n\n```\nkubectl get pods\n```\n"
        assert [s.guessed for s in parse_runbook(text, "pods.md").steps] == [True], prose


def test_an_assignment_before_a_word_that_is_no_program_is_not_a_command() -> None:
    assert judge_block("notAfter=Dec 31 23:59:59 2026 GMT\n").kind is not BlockKind.COMMANDS
    assert judge_block("NAMESPACE=prod\nkubectl -n $NAMESPACE get pods\n").kind == (
        BlockKind.COMMANDS
    )
    assert judge_block("KUBECONFIG=~/.kube/prod kubectl get nodes\n").kind == BlockKind.COMMANDS


def test_a_bullet_list_that_holds_a_step_offers_its_inline_commands() -> None:
    text = (
        "# Rotate\n\n"
        "* Upload the cert: `kubectl create secret tls new --cert=a.crt --key=a.key`\n"
        "* Patch the ingress:\n  ```bash\n  kubectl patch ingress main -p '{}'\n  ```\n"
        "* Check that `kubectl get ingress main` shows the new secret.\n\n"
        "## Notes\n\n"
        "* `kubectl get events -A` may help.\n* Ask in #ops if unsure.\n"
    )
    steps = parse_runbook(text, "rotate.md").steps
    assert [(s.kind, s.line, s.offers) for s in steps] == [
        (StepKind.MANUAL, 3, ("kubectl create secret tls new --cert=a.crt --key=a.key",)),
        (StepKind.COMMAND, 5, ()),
        (StepKind.MANUAL, 8, ("kubectl get ingress main",)),
    ]


def test_each_step_keeps_the_prose_before_it() -> None:
    text = (
        "---\ntitle: Rotate the certificate\n---\n"
        "# Rotate\n\nDo **one** load balancer at a time.\n\n"
        "```bash\necho drain\n```\n\n"
        "If it does not come back within 2 minutes, kill it hard:\n\n"
        "- [ ] Tell #ops-oncall\n- [ ] Wait for the pager to stay quiet\n\n"
        "```bash\necho restore\n```\n"
    )
    steps = parse_runbook(text, "cert.md").steps
    assert [s.prose for s in steps] == [
        "# Rotate\n\nDo **one** load balancer at a time.",
        "If it does not come back within 2 minutes, kill it hard:",
        "",
        "",
    ]


def test_a_collapsed_block_titled_if_holds_a_conditional_step() -> None:
    # A fallback in <details> or a collapsible admonition runs only when the operator picks it.
    text = (
        "# Stop kafka\n\n```bash\nsudo systemctl stop kafka\n```\n\n"
        "<details>\n<summary>If the broker <b>won't</b> stop</summary>\n\n"
        "```bash\nsudo kill -9 $(pgrep -f kafka.Kafka)\n```\n\n</details>\n\n"
        '??? warning "In case the port stays open"\n    - [ ] Page the network team\n\n'
        "<details><summary>Full log</summary>\n\n```bash\njournalctl -u kafka\n```\n</details>\n"
    )
    steps = parse_runbook(text, "kafka.md").steps
    assert [(s.line, s.branch.label if s.branch else None) for s in steps] == [
        (3, None),
        (10, "If the broker won't stop"),
        (17, "In case the port stays open"),
        (21, None),
    ]
    assert steps[1].branch is not None and steps[2].branch is not None
    assert steps[1].branch.choice != steps[2].branch.choice  # each its own choice
