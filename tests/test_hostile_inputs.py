"""Inputs that used to hang: a FIFO nobody writes to given as the runbook, a device, and
tens of thousands of equal headings (their slugs were found one suffix at a time); a shell
the session cannot be."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import RUNBOOK, environment, parse, run_cli, write_runbook

from engine.slugs import UniqueSlugs


def test_a_fifo_nobody_writes_to_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    result = run_cli(tmp_path, "run", fifo, "--yes", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
    assert result.returncode == 2
    assert "pipe.md: cannot read: a pipe nothing was written to in 10 s" in result.stderr


def test_a_device_is_refused(tmp_path: Path) -> None:
    for command in ("check", "show"):
        result = run_cli(tmp_path, command, "/dev/zero")
        assert result.returncode != 0
        assert "/dev/zero: cannot read: a device or a socket" in result.stderr, result.stderr


def test_a_pipe_with_a_writer_is_read(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, b"# Piped\n\n```bash\necho from-a-pipe\n```\n")
    os.close(write)
    result = subprocess.run(
        [str(RUNBOOK), "show", f"/dev/fd/{read}"],
        pass_fds=(read,),
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=60,
        check=False,
    )
    os.close(read)
    assert result.returncode == 0, result.stderr
    assert "echo from-a-pipe" in result.stdout


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
