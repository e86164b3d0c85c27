"""`--from`, `--only` and `--skip` choose the same steps for the pre-flight check, the dry
run and the run itself (the CLI, unattended, in real processes)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli, write_runbook

RUNBOOK = """
# Reindex the search cluster

1. Drop the old index (only on a fresh rebuild):

   ```bash {id: drop-index, confirm: danger}
   echo dropped > dropped.txt
   ```

2. Load the documents:

   ```bash {id: load}
   echo loaded > loaded.txt
   ```

3. Check the count:

   ```bash {id: count}
   echo counted > counted.txt
   ```
"""


def test_from_after_a_danger_step_runs_unattended(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    result = run_cli(tmp_path, "run", "rb.md", "--yes", "--from", "load")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["counted.txt", "loaded.txt"]


def test_a_danger_step_in_the_selection_is_still_refused(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    result = run_cli(tmp_path, "run", "rb.md", "--yes", "--only", "drop-index,count")
    assert result.returncode == 2
    assert "drop-index are marked confirm: danger" in result.stderr
    assert list(tmp_path.glob("*.txt")) == []


def test_the_dry_run_shows_the_selected_steps(tmp_path: Path) -> None:
    write_runbook(tmp_path, RUNBOOK)
    result = run_cli(tmp_path, "run", "rb.md", "--dry-run", "--from", "load")
    assert result.returncode == 0, result.stderr
    assert "[1/2]" in result.stdout and "load" in result.stdout
    assert "drop-index" not in result.stdout
    assert list(tmp_path.glob("*.txt")) == []
