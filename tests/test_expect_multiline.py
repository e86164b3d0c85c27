"""An `expect` answer with a line break is typed only when its annotation says `multiline`."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, write_runbook

BOOK = """
# Register two hosts

```bash {id: register, expect: [{prompt: 'hosts\\? ', send: "web1\\nweb2", MULTI}]}
read -r -p 'hosts? ' first
read -r second
echo "registered $first and $second"
```
"""


def test_a_multiline_answer_is_typed_line_by_line(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, BOOK.replace("MULTI", "multiline: true"))
    result = run_cli(tmp_path, "run", book, "--yes", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "registered web1 and web2" in result.stdout


def test_without_multiline_the_answer_is_refused(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, BOOK.replace(", MULTI", ""))
    result = run_cli(tmp_path, "run", book, "--yes", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
    assert result.returncode != 0
    assert "multiline: true" in result.stdout + result.stderr
    assert "registered web1" not in result.stdout
    assert "exit status None" not in result.stdout


def test_check_knows_the_multiline_key(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, BOOK.replace("MULTI", "multilne: true"))
    result = run_cli(tmp_path, "check", book)
    assert result.returncode != 0
    assert "did you mean 'multiline'" in result.stdout + result.stderr
