"""Runme's cell attributes that change a run: `background` (a follow step), `promptEnv`
(exports asked, or nothing asked), and `excludeFromRunAll`, which an inference keeps off."""

from __future__ import annotations

from pathlib import Path

from conftest import plan, run_cli, write_runbook

NOTEBOOK = """\
---
runme:
  id: 01HF7B0KJPF469EG9ZWDNKKACQ
  version: v3
---

# Deploy the preview

```sh {"name":"set-env","promptEnv":"yes"}
export REGION=eu-west-1
export PROJECT="web preview"
export STAMP=$(date +%s)
echo "deploying $PROJECT to $REGION"
```

```sh {"name":"literal","promptEnv":"no"}
echo "<not asked>" $UNSET_IN_THIS_CELL
```

```sh {"name":"serve","background":"true"}
python3 -m http.server 8080
```

```sh {"name":"tail","follow":"false"}
tail -f /var/log/app.log
```

```json {"name":"sample","excludeFromRunAll":"false"}
{"region": "eu-west-1"}
```
"""


def test_prompt_env_yes_asks_for_each_written_export_with_its_value_as_default() -> None:
    runbook = plan(NOTEBOOK).runbook
    params = {p.name: p for p in runbook.params}
    assert params["region"].default == "eu-west-1" and not params["region"].required
    assert params["project"].default == "web preview"
    assert "stamp" not in params  # computed: runs as written
    step = next(s for s in runbook.steps if s.id == "set-env")
    assert "export REGION={{ region }}" in step.command
    assert "export STAMP=$(date +%s)" in step.command


def test_prompt_env_no_asks_for_nothing_in_the_cell() -> None:
    runbook = plan(NOTEBOOK).runbook
    assert not {"not_asked", "unset_in_this_cell"} & {p.name for p in runbook.params}
    step = next(s for s in runbook.steps if s.id == "literal")
    assert step.command == step.body


def test_background_is_a_follow_step_and_follow_false_keeps_the_inference_off() -> None:
    steps = {s.id: s for s in plan(NOTEBOOK).runbook.steps}
    assert steps["serve"].follow
    assert not steps["tail"].follow
    assert steps["tail"].inference("follow") is None


def test_a_run_uses_the_written_value_or_the_one_given(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, NOTEBOOK.split('```sh {"name":"literal"')[0])
    journal = str(tmp_path / "j.db")
    result = run_cli(tmp_path, "run", book, "--yes", RUNBOOK_JOURNAL=journal)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploying web preview to eu-west-1" in result.stdout
    result = run_cli(
        tmp_path, "run", book, "--yes", "-p", "region=us-east-2", RUNBOOK_JOURNAL=journal
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploying web preview to us-east-2" in result.stdout


def test_check_knows_follow_and_runme_spellings(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, NOTEBOOK.replace('"follow":"false"', '"folow":"false"'))
    result = run_cli(tmp_path, "check", book)
    assert result.returncode != 0
    assert "did you mean 'follow'" in result.stdout + result.stderr
