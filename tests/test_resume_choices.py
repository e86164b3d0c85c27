"""Resume goes on down the branch the run chose, takes --choose for choices not made yet,
and --run-guessed like `run`."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli, write_runbook

# A wiki page: two ways to free space, the second needing a file that is not there yet.
DISK = """\
# Free disk space on the build host

```bash
echo checking
```

## Option 1: vacuum the journal

```bash
echo vacuumed
```

## Option 2: prune old images

```bash
echo pruning
```

```bash
test -f ok.txt && echo pruned
```

## Afterwards

```
echo done-after
```
"""


def run_id(output: str) -> str:
    match = re.search(r"Recorded as run ([\w-]+)", output)
    assert match, output
    return match.group(1)


def test_resume_keeps_the_option_taken_and_is_not_asked_again(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, DISK)
    journal = str(tmp_path / "j.db")
    first = run_cli(tmp_path, "run", book, "--yes", "--choose", "option 2", RUNBOOK_JOURNAL=journal)
    assert first.returncode != 0
    assert "pruning" in first.stdout and "vacuumed" not in first.stdout
    (tmp_path / "ok.txt").write_text("", encoding="utf-8")
    again = run_cli(
        tmp_path, "resume", run_id(first.stdout + first.stderr), "--yes", RUNBOOK_JOURNAL=journal
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "pruned" in again.stdout
    assert "vacuumed" not in again.stdout and "needs --choose" not in again.stdout
    # The guessed block at the end was skipped by --yes, and said so.
    assert "done-after" not in again.stdout.replace("echo done-after", "")


def test_resume_takes_run_guessed(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, DISK)
    journal = str(tmp_path / "j.db")
    first = run_cli(tmp_path, "run", book, "--yes", "--choose", "option 2", RUNBOOK_JOURNAL=journal)
    (tmp_path / "ok.txt").write_text("", encoding="utf-8")
    again = run_cli(
        tmp_path,
        "resume",
        run_id(first.stdout + first.stderr),
        "--yes",
        "--run-guessed",
        RUNBOOK_JOURNAL=journal,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"^done-after$", again.stdout, flags=re.M), again.stdout


def test_a_choice_not_made_before_the_failure_takes_choose_on_resume(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, DISK.replace("echo checking", "test -f ok.txt"))
    journal = str(tmp_path / "j.db")
    first = run_cli(tmp_path, "run", book, "--yes", "--choose", "option 2", RUNBOOK_JOURNAL=journal)
    assert first.returncode != 0  # before the choice: nothing chosen yet
    (tmp_path / "ok.txt").write_text("", encoding="utf-8")
    refused = run_cli(
        tmp_path, "resume", run_id(first.stdout + first.stderr), "--yes", RUNBOOK_JOURNAL=journal
    )
    assert refused.returncode != 0
    assert "--choose" in refused.stdout + refused.stderr
    again = run_cli(
        tmp_path,
        "resume",
        run_id(first.stdout + first.stderr),
        "--yes",
        "--choose",
        "Option 1: vacuum the journal",
        RUNBOOK_JOURNAL=journal,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "vacuumed" in again.stdout and "pruning" not in again.stdout
