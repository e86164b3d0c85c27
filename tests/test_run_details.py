"""The small things around a run (issue 13, items 5 and 8): the dry run numbers steps as the
run does, `log list --runbook` finds a run however the path is typed, `log show` prints a
here-document as one command and plain text into a pipe, the journal is private, an empty or
binary file is refused, `--limit` must be positive, no editor is a clear message, and usage
errors have the one error style."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from engine.cli import ClickKeyboard
from engine.console.terminal import EditorFailed
from tests.conftest import write_runbook
from tests.runbook_cli import cli

UPGRADE = """\
# Upgrade the agent

```bash {id: fetch, on_failure: rollback}
echo fetched
```

```bash {id: install}
cat <<END
installed
END
printf '\\033[1;32mgreen\\033[0m\\n'
```

## Rollback

```bash {id: restore}
echo restored
```
"""


def test_the_dry_run_numbers_the_selection_and_lists_rollback_steps_apart(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, UPGRADE)
    out = cli(tmp_path, "run", path, "--dry-run", "--from", "install").stdout
    assert "[1/1] Upgrade the agent > install" in out
    assert "[2/" not in out
    assert "On failure: rollback (1 step)" in out
    assert "[rollback 1/1] Upgrade the agent > Rollback > restore" in out


def test_the_journal_is_private_and_log_finds_runs_by_name(tmp_path: Path) -> None:
    path = write_runbook(tmp_path, UPGRADE)
    done = cli(tmp_path, "run", "./rb.md", "--yes")
    assert done.returncode == 0, done.stderr
    journal = tmp_path / "j.db"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    for reference in ("./rb.md", "rb.md", str(path), str(path.resolve())):
        listed = cli(tmp_path, "log", "list", "--runbook", reference)
        assert "succeeded" in listed.stdout, reference
    assert "No runs match" in cli(tmp_path, "log", "list", "--runbook", "other.md").stderr


def test_log_show_prints_a_here_document_once_and_no_escapes_into_a_pipe(tmp_path: Path) -> None:
    write_runbook(tmp_path, UPGRADE)
    assert cli(tmp_path, "run", "rb.md", "--yes").returncode == 0
    shown = cli(tmp_path, "log", "show", "last", "--step", "install").stdout
    assert "    $ cat <<END\n      installed\n      END\n" in shown
    assert "$ installed" not in shown
    assert "\x1b" not in shown
    assert "    green" in shown


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\x00\x01\x02\xff\xfe"])
def test_an_empty_or_binary_file_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "rb.md").write_bytes(content)
    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 2
    assert "runbook: error: rb.md: no steps to run" in done.stderr
    assert not (tmp_path / "j.db").exists()


def test_a_negative_limit_is_refused_in_the_one_error_style(tmp_path: Path) -> None:
    done = cli(tmp_path, "log", "list", "--limit", "-1")
    assert done.returncode == 2
    assert done.stderr.startswith("runbook: error: Invalid value for '--limit'")
    assert "Usage:" not in done.stderr


def test_no_editor_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    with pytest.raises(EditorFailed, match=r"set \$EDITOR"):
        ClickKeyboard().edit("echo hi\n", ".sh")


def test_log_list_shows_the_skipped_steps_of_a_succeeded_run(tmp_path: Path) -> None:
    write_runbook(tmp_path, UPGRADE.replace("## Rollback", "- [ ] Tell the channel\n\n## Rollback"))
    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 0
    assert "Run succeeded, 1 step skipped" in done.stdout
    listed = cli(tmp_path, "log", "list").stdout
    assert "succeeded, 1 step skipped" in listed


def test_log_list_shows_the_newest_runs_and_says_when_there_are_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    import engine.cli

    write_runbook(tmp_path, "# R\n\n```bash\necho hi\n```\n")
    for _ in range(3):
        assert cli(tmp_path, "run", "rb.md", "--yes").returncode == 0
    journal = str(tmp_path / "j.db")
    monkeypatch.setattr(engine.cli, "LISTED_RUNS", 2)  # a journal of 50,000 runs, in small
    runner = CliRunner()
    shown = runner.invoke(engine.cli.cli, ["log", "list", "--journal", journal])
    assert shown.exit_code == 0 and len(shown.stdout.splitlines()) == 3  # header and 2 runs
    assert "the 2 newest shown; older runs match: --limit N or --all" in shown.stderr
    every = runner.invoke(
        engine.cli.cli, ["log", "list", "--all", "--format", "json", "--journal", journal]
    )
    assert len(json.loads(every.stdout)) == 3 and "newest shown" not in every.stderr
    both = runner.invoke(
        engine.cli.cli, ["log", "list", "--all", "--limit", "1", "--journal", journal]
    )
    assert both.exit_code == 2 and "--limit and --all" in both.stderr
