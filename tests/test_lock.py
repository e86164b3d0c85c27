"""Run liveness: a run (and its lock) is live only while the very process that took it runs.

The engine is really killed with SIGKILL mid-step; then its pid is made to name another
process, one that started later, as happens when the pid is reused or the machine rebooted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.journal.lock import Holder, is_live, is_running, process_started

RUNBOOK = Path(sys.executable).parent / "runbook"


@pytest.fixture
def newcomer() -> Iterator[subprocess.Popen[bytes]]:
    """A process that started just now: the new owner of a reused pid."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_held_by_a_process_that_started_later_is_not_the_run(newcomer) -> None:
    now = time.time()
    started = process_started(newcomer.pid)
    assert started is not None and abs(started - now) < 5
    assert is_running(newcomer.pid, since=now)  # it took the lock: itself
    assert not is_running(newcomer.pid, since=now - 600)  # the lock is older than it
    assert is_running(os.getpid(), since=now)


def test_after_a_reboot_a_lock_from_before_the_boot_is_stale() -> None:
    # Every process, pid 1 included, started after the boot: a lock taken before it is dead.
    boot = process_started(1)
    assert boot is not None
    holder = Holder("r1", 1, os.uname().nodename, "ops", boot - 3600)
    assert not is_live(holder, os.uname().nodename)
    # On another host nothing can be known: assumed live.
    assert is_live(Holder("r1", 1, "elsewhere", "ops", boot - 3600), os.uname().nodename)


def test_a_dead_pid_is_not_live() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not is_running(proc.pid, since=time.time())


# -- the CLI after a kill -9 and a reused pid -----------------------------------------------------


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"EDITOR", "VISUAL", "NO_COLOR"}}
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    env.update(
        NO_COLOR="1",
        HOME=str(tmp_path),
        TMPDIR=str(scratch),
        XDG_RUNTIME_DIR=str(scratch),
        RUNBOOK_JOURNAL=str(tmp_path / "journal.db"),
    )
    return env


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *args],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_killed_run_whose_pid_was_reused_is_stale(tmp_path: Path) -> None:
    (tmp_path / "rb.md").write_text(
        textwrap.dedent(
            """\
            # Rotate the logs

            1. Mark the start:

               ```bash
               touch started.txt
               ```

            2. Wait for the rotation:

               ```bash
               until [ -e rotated.txt ]; do sleep 0.1; done
               ```

            3. Mark the end:

               ```bash
               touch finished.txt
               ```
            """
        )
    )
    engine = subprocess.Popen(
        [str(RUNBOOK), "run", "rb.md", "--yes"],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "started.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # into the second step
    finally:
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait()
        with contextlib.suppress(OSError):
            os.killpg(engine.pid, signal.SIGKILL)
    time.sleep(3.5)  # /proc: boot time in whole seconds (up to 1 s early), then a 2 s slack
    newcomer = subprocess.Popen(["sleep", "120"])
    try:
        _reused_pid(tmp_path, newcomer.pid)
    finally:
        newcomer.kill()
        newcomer.wait()


def _reused_pid(tmp_path: Path, pid: int) -> None:
    """The killed engine's pid now belongs to a process that started after the run."""
    with sqlite3.connect(tmp_path / "journal.db") as db:
        db.execute("UPDATE runs SET pid = ?", (pid,))
        db.execute("UPDATE active SET pid = ?", (pid,))
    db.close()

    listed = cli(tmp_path, "log", "list", "--format", "json")
    [run] = json.loads(listed.stdout)
    assert run["status"] == "interrupted"

    (tmp_path / "rotated.txt").touch()
    resumed = cli(tmp_path, "resume", "--yes", "--force", "--rerun-unfinished")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (tmp_path / "finished.txt").exists()

    # The same again, for a new run: the stale lock is replaced, not obeyed.
    with sqlite3.connect(tmp_path / "journal.db") as db:
        db.execute(
            "INSERT OR REPLACE INTO active (abspath, run_id, pid, host, operator, since)"
            " VALUES (?, 'gone', ?, ?, 'ops', ?)",
            (str((tmp_path / "rb.md").resolve()), pid, os.uname().nodename, 1.0e9),
        )
    db.close()
    again = cli(tmp_path, "run", "rb.md", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "replaced the stale lock" in again.stderr
