"""Settings inferred from a step's content, as runbooks written for wikis hold them: each is
applied, recorded with its reason and line, and overridden by an annotation of the same key."""

from __future__ import annotations

from engine.lint import lint_runbook
from engine.model import Confirm
from engine.parse import parse_runbook

WIKI_PAGE = """\
# Replace a failed worker node

Drain the node first. Do one availability zone at a time!

```bash
oc adm drain worker-3 --ignore-daemonsets --delete-emptydir-data
```

If a pod refuses to leave, open a shell in it and look around:

```bash
oc exec -it $(oc get pods -o name | head -1) -- bash
```

Watch the router logs while the node comes back:

```sh
oc logs -f deployment/router-default -n openshift-ingress
```

The alert that fired looks like this:

```bash
{"alertname": "KubeNodeNotReady", "severity": "critical"}
```

The team lead may remove the old machine object (it is safe here):

```bash {confirm: true}
oc delete machine worker-3-old -n openshift-machine-api
```
"""


def test_a_wiki_page_gets_danger_terminal_follow_and_data_inferred() -> None:
    steps = parse_runbook(WIKI_PAGE, "node.md").steps
    drain, shell, logs, alert, remove = steps
    assert drain.confirm is Confirm.DANGER
    assert drain.inferred[0].key == "confirm" and "[kube-delete]" in drain.inferred[0].reason
    assert drain.inferred[0].line == 6
    assert shell.interactive and shell.inferred[0].line == 12
    assert logs.follow and not logs.interactive and "logs -f" in logs.inferred[0].reason
    assert not alert.run and alert.inferred[0].reason == "it holds JSON"
    assert remove.confirm is Confirm.ASK and remove.inferred == ()


def test_annotations_override_every_inference() -> None:
    text = (
        "```bash {interactive: false, run: true}\n"
        '{"not": "json for real"} || oc exec -it pod -- bash\n'
        "```\n"
    )
    (step,) = parse_runbook(text, "x.md").steps
    assert not step.interactive and step.run and step.inferred == ()


def test_check_names_the_danger_rule_and_the_data_kind() -> None:
    runbook = parse_runbook(WIKI_PAGE, "node.md")
    found = {d.code: d for d in lint_runbook(runbook)}
    assert "kube-delete" in found["destructive"].message
    assert found["destructive"].location.line == 6
    assert "JSON" in found["not-shell"].message and "shown, not run" in found["not-shell"].message
