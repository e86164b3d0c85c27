"""Quoting in real runs: the `runbook` command, its bash session in a pty, values from `-p`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RUNBOOK = Path(sys.executable).parent / "runbook"

WIKI_PAGE = """\
---
title: Restore a file from the nightly backup
params:
  file: {description: The file to restore, default: notes.txt}
  count: {description: How many copies to keep, default: "3"}
  name: {description: Who asked, default: ops}
---

# Restore a file

> **Note** run this from the backup host.

1. Say what is being restored:

   ```bash
   echo "Restoring {{ file }}"
   echo 'single: {{ file }}'
   ```

2. Write the restore note:

   ```bash
   note=$(cat <<EOF
   restored {{ file }} for {{ name }}
   EOF
   )
   echo "$note"
   ```

3. Keep the newest copies:

   ```bash
   n={{ count }}
   echo "keeping $(( n + 1 )) copies"
   ```

4. Tell the requester, from Python:

   ```python {interpreter: python3}
   print("hello {{ name }}, {{ file }} is back")
   ```
"""


def _run(tmp_path: Path, *params: str) -> subprocess.CompletedProcess[str]:
    page = tmp_path / "restore.md"
    page.write_text(WIKI_PAGE)
    env = {k: v for k, v in os.environ.items() if k not in {"EDITOR", "VISUAL"}}
    env.update(
        NO_COLOR="1",
        COLUMNS="200",
        RUNBOOK_JOURNAL=str(tmp_path / "journal.db"),
        XDG_RUNTIME_DIR=str(tmp_path),
        HOME=str(tmp_path),
    )
    args = [str(RUNBOOK), "run", str(page), "--yes"]
    for param in params:
        args += ["-p", param]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env, check=False
    )


def test_values_with_spaces_print_as_written_in_every_context(tmp_path: Path) -> None:
    result = _run(tmp_path, "file=my file.txt", "name=Ann O'Neil")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Restoring my file.txt" in result.stdout
    assert "single: my file.txt" in result.stdout
    assert "restored my file.txt for Ann O'Neil" in result.stdout
    assert "keeping 4 copies" in result.stdout
    assert "hello Ann O'Neil, my file.txt is back" in result.stdout


def test_hostile_values_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    python = f'"+__import__("os").system("touch {marker}")+"'
    shell = f"x\"'$(touch {marker})`touch {marker}`\nEOF\ntouch {marker}\n"
    result = _run(tmp_path, f"file={shell}", f"name={python}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists()
    assert python in result.stdout  # printed by Python, as data


def test_a_non_integer_for_arithmetic_refuses_the_run_before_any_step(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = _run(tmp_path, f"count=a[$(touch {marker})]")
    assert result.returncode != 0
    assert "only an integer may be used in shell arithmetic (through $n)" in result.stderr
    assert not marker.exists()
    assert "Restoring" not in result.stdout  # refused before the first step


def test_check_passes_the_quoting_forms_people_write(tmp_path: Path) -> None:
    page = tmp_path / "restore.md"
    page.write_text(WIKI_PAGE)
    result = subprocess.run(
        [str(RUNBOOK), "check", str(page)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout
