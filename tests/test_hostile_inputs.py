"""Inputs that used to hang: a FIFO given as the runbook or the params file, and tens of
thousands of equal headings (their slugs were found one suffix at a time)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import parse, run_cli, write_runbook

from engine.slugs import UniqueSlugs


def test_a_fifo_as_the_runbook_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    for command in ("check", "show", "run"):
        result = run_cli(tmp_path, command, fifo, RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
        assert result.returncode != 0
        assert "pipe.md: cannot read: a FIFO" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_a_fifo_as_the_params_file_is_refused(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, "# T\n\n```bash\necho hi\n```\n")
    fifo = tmp_path / "params.yml"
    os.mkfifo(fifo)
    result = run_cli(
        tmp_path, "run", book, "--yes", "--params-file", fifo, RUNBOOK_JOURNAL=str(tmp_path / "j")
    )
    assert result.returncode == 2
    assert "params.yml: cannot read: a FIFO" in result.stderr


def test_equal_headings_get_numbered_slugs_in_order() -> None:
    text = "# T\n" + "".join(f"\n## Same\n\n```bash\necho {n}\n```\n" for n in range(20_000))
    runbook = parse(text)
    slugs = [s.slug for s in runbook.sections]
    assert slugs[:4] == ["t", "same", "same_1", "same_2"]
    assert slugs[-1] == "same_19999"
    assert len(set(slugs)) == len(slugs)
    assert runbook.steps[-1].id == "same_19999-1"


def test_a_taken_suffix_is_skipped() -> None:
    slugs = UniqueSlugs({"a_1"})
    assert [slugs("a"), slugs("a"), slugs("a"), slugs("b")] == ["a", "a_2", "a_3", "b"]


def test_a_shell_the_session_cannot_be_is_an_error_of_check(tmp_path: Path) -> None:
    book = write_runbook(tmp_path, "---\nshell: zsh\n---\n# T\n\n```bash\necho hi\n```\n")
    result = run_cli(tmp_path, "check", book)
    assert result.returncode != 0
    assert "rb.md:2:1: error: 'shell' must be one of bash, sh, got 'zsh'" in result.stdout
