"""The real `runbook` command on a wiki-style runbook: `show` names every inference, a run in a
pty shows the prose, the commands and the summary table, and an unattended run refuses what it
could not get through."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import write_runbook
from tests.runbook_cli import cli, run_in_pty, show_json

WIKI = """\
---
title: Flush the edge cache
params:
  zone: {default: eu-west}
---
# Flush the edge cache

Flush **one zone at a time**; the origin takes the load meanwhile.
See [the runbook index](https://wiki.example/index).

## Check the origin

```bash
echo origin ok in {{ zone }}
```

## Flush

=== "Staging"

    ```bash
    echo flush staging
    ```

=== "Production"

    ```bash
    echo flush production
    ```

## Watch

```
tail -f /var/log/nothing.log
```

1. Run `echo announced` in the channel
"""


def test_show_names_every_inference(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, WIKI)
    steps = {s["id"]: s for s in show_json(tmp_path, path)["steps"]}
    tabs = [s for s in steps.values() if s["branch"]]
    assert [s["branch"]["label"] for s in tabs] == ["Staging", "Production"]
    watch = next(s for s in steps.values() if s["guessed"])
    assert watch["follow"] is True
    assert any(i["key"] == "follow" and "until stopped" in i["reason"] for i in watch["inferred"])
    offering = next(s for s in steps.values() if s["offers"])
    assert offering["offers"] == ["echo announced"]
    text = cli(tmp_path, "show", path).stdout
    assert "inferred follow: true" in text
    assert "option 'Staging' of a choice" in text
    assert "offers: echo announced" in text


def test_an_unattended_run_shows_the_document_and_every_step(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, WIKI)
    ran = run_in_pty(tmp_path, path, "--yes", "--choose", "production")
    assert ran.status == 0, ran.output
    out = ran.output
    assert "Flush one zone at a time; the origin takes the load meanwhile." in out
    assert "See the runbook index (https://wiki.example/index)." in out
    assert "echo origin ok in eu-west" in out  # the command, under --yes too
    assert "origin ok in eu-west" in out
    assert "flush production" in out and "flush staging\n" not in out
    assert re.search(r"^  zone +eu-west", out, re.MULTILINE)
    assert "not taken" in out and "--run-guessed" in out
    assert "Run succeeded, 3 steps skipped" in out
    quiet = run_in_pty(tmp_path, path, "--yes", "--choose", "production", "--quiet")
    assert "one zone at a time" not in quiet.output
    assert "echo origin ok in eu-west" in quiet.output


def test_an_unattended_run_refuses_before_starting(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, WIKI)
    done = cli(tmp_path, "run", path, "--yes", "--run-guessed")
    assert done.returncode == 2
    assert "--choose LABEL" in done.stderr
    assert "is follow (" in done.stderr and "`timeout`" in done.stderr
    assert "origin ok" not in done.stdout
