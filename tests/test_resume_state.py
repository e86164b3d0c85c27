"""Resume after a kill -9 rebuilds the shell session (issue 13, item 1), and never runs a step
that may have run again without a word (issue 18, item 8). Real engine, real pty, real kill."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pexpect

from engine.events import SessionState, StepFinished, StepStatus, from_data, to_data
from engine.shell import ShellSession, StepIO
from tests.conftest import RUNBOOK, environment, write_runbook

FENCE = "```"


def runbook_text(tmp_path: Path) -> str:
    """A wiki page as an SRE writes it: numbered prose, `bash` blocks, no annotations."""
    work = tmp_path / "work area"
    work.mkdir()
    return f"""# Rotate the cache

Run this from any directory: the first step moves to the work area.

## 1. Prepare

{FENCE}bash
cd "{work}"
FOO=bar
export BAZ=qux
greet() {{ echo "hello $1"; }}
{FENCE}

## 2. Wait for the cache to drain

This takes a while; if it hangs, kill it.

{FENCE}bash
if [ ! -e {tmp_path}/draining ]; then touch {tmp_path}/draining; sleep 60; fi
touch {tmp_path}/drained
{FENCE}

## 3. Check

{FENCE}bash
echo "pwd=$(pwd) foo=$FOO baz=$(bash -c 'echo $BAZ') $(greet there)" > {tmp_path}/seen
{FENCE}
"""


def spawn(tmp_path: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        str(RUNBOOK),
        list(args),
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=60,
        env=environment(tmp_path),
    )


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{name}/stat").read_bytes()
                parent = int(text[text.rfind(b")") + 2 :].split()[1])
                children.setdefault(parent, []).append(int(name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def run_and_kill_in_step_2(tmp_path: Path) -> None:
    """`run --yes` in a pty; kill -9 of the engine while step 2 sleeps; its leftovers too."""
    write_runbook(tmp_path, runbook_text(tmp_path))
    child = spawn(tmp_path, "run", "rb.md", "--yes")
    try:
        until = time.monotonic() + 30
        while not (tmp_path / "draining").exists():
            assert time.monotonic() < until, child.before
            time.sleep(0.05)
        tree = descendants(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        for pid in tree:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    finally:
        child.close(force=True)
    assert not (tmp_path / "seen").exists()


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus), str(child.before)


def started_steps(tmp_path: Path) -> list[str]:
    [journal] = tmp_path.glob("**/*.db")
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT step FROM events WHERE kind = 'step-started' ORDER BY seq")
        return [str(step) for (step,) in rows]


def test_resume_rebuilds_directory_variables_and_function(tmp_path: Path) -> None:
    run_and_kill_in_step_2(tmp_path)
    code, screen = finish(spawn(tmp_path, "resume", "--yes", "--rerun-unfinished"))
    assert code == 0, screen
    assert "restored the shell session" in screen and "functions greet" in screen
    seen = (tmp_path / "seen").read_text()
    assert seen == f"pwd={tmp_path / 'work area'} foo=bar baz=qux hello there\n"


def test_unattended_resume_stops_at_a_step_that_may_have_run(tmp_path: Path) -> None:
    run_and_kill_in_step_2(tmp_path)
    code, screen = finish(spawn(tmp_path, "resume", "--yes"))
    assert code == 2, screen
    assert "may have run" in screen and "--rerun-unfinished" in screen
    assert len(started_steps(tmp_path)) == 2  # steps 1 and 2, once each: nothing ran again
    assert not (tmp_path / "seen").exists()


def test_operator_marks_the_unfinished_step_done(tmp_path: Path) -> None:
    run_and_kill_in_step_2(tmp_path)
    child = spawn(tmp_path, "resume")
    child.expect("may have run")
    child.expect(r"\[a\]bort")
    child.send("d")
    child.expect(r"Run it\?")  # step 3's question
    child.send("r")
    code, screen = finish(child)
    assert code == 0, screen
    assert not (tmp_path / "drained").exists()  # step 2 was not run again
    steps = started_steps(tmp_path)
    assert len(steps) == 3 and steps[1] != steps[2]
    assert (tmp_path / "seen").read_text().startswith(f"pwd={tmp_path / 'work area'} foo=bar")


def test_the_recorded_state_holds_no_secret_and_names_what_was_left_running(
    tmp_path: Path,
) -> None:
    (tmp_path / "srv").mkdir()
    write_runbook(
        tmp_path,
        f"""---
title: Rotate the token
params:
  token: {{secret: true}}
---
1. Keep a copy and a label; start the tunnel:

{FENCE}bash
cd {tmp_path}/srv
COPY="prefix-$TOKEN"
export LABEL=blue
sleep 300 & echo $! > {tmp_path}/tunnel.pid
{FENCE}

2. Check the tunnel (fails: it is not there yet):

{FENCE}bash
false
{FENCE}
""",
    )
    child = spawn(tmp_path, "run", "rb.md", "--yes", "-p", "token=hunter2-s3cret")
    code, screen = finish(child)
    assert code == 1, screen
    [journal] = tmp_path.glob("**/*.db")
    with sqlite3.connect(journal) as db:
        [(data,)] = db.execute(
            "SELECT data FROM events WHERE kind = 'step-finished' AND data LIKE '%\"state\"%'"
        ).fetchall()
    assert "hunter2" not in data and "COPY" not in data
    assert "LABEL" in data and "sleep 300" in data and f"{tmp_path}/srv" in data

    resumed = spawn(tmp_path, "resume", "--yes", "-p", "token=hunter2-s3cret")
    code, screen = finish(resumed)
    with contextlib.suppress(OSError):
        os.kill(int((tmp_path / "tunnel.pid").read_text()), signal.SIGKILL)
    assert code == 1, screen  # step 2 fails again
    assert "cannot restore what earlier steps left running" in screen and "sleep 300" in screen
    assert "variables LABEL" in screen


def test_the_operator_is_asked_before_resuming_without_a_background_job(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        f"""# Port-forward and migrate

## Open the tunnel

{FENCE}bash
sleep 300 & echo $! > {tmp_path}/tunnel.pid
{FENCE}

## Migrate

{FENCE}bash
false
{FENCE}
""",
    )
    code, screen = finish(spawn(tmp_path, "run", "rb.md", "--yes"))
    assert code == 1, screen
    child = spawn(tmp_path, "resume")
    try:
        child.expect("cannot restore what earlier steps left running")
        child.expect(r"Resume without them\? \[y/N\]")
        child.send("n")
        code, screen = finish(child)
    finally:
        with contextlib.suppress(OSError):
            os.kill(int((tmp_path / "tunnel.pid").read_text()), signal.SIGKILL)
    assert code == 2 and "resume cancelled" in screen
    assert len(started_steps(tmp_path)) == 2  # nothing ran


def test_the_state_round_trips_and_old_events_read_without_it() -> None:
    state = SessionState("/srv/app", 'declare -x BAZ="qux"\n', "greet () \n{ \n    :\n}\n", ("x",))
    event = StepFinished("prepare", 1, StepStatus.SUCCEEDED, state=state)
    row = to_data(event)
    assert from_data(row.kind, row.step, row.attempt, row.time, row.data) == event
    old = {key: value for key, value in row.data.items() if key != "state"}
    assert "state" not in to_data(replace(event, state=None)).data
    assert from_data(row.kind, row.step, row.attempt, row.time, old) == replace(event, state=None)


def test_restoring_into_a_session_says_what_could_not_come_back(tmp_path: Path) -> None:
    output = bytearray()
    io = StepIO(on_output=output.extend)
    first = ShellSession(cwd=str(tmp_path))
    try:
        (tmp_path / "gone").mkdir()
        first.run_step(f"cd {tmp_path}/gone; declare -a HOSTS=(a 'b c'); N=$'two\\nlines'", io)
        state = first.take_state()
        assert first.take_state() is None  # unchanged since
    finally:
        first.close()
    assert state is not None and state.cwd == str(tmp_path / "gone")
    (tmp_path / "gone").rmdir()
    second = ShellSession(cwd=str(tmp_path))
    try:
        problems = second.restore(state)
        second.run_step('printf "%s|" "$PWD" "${HOSTS[1]}" "$N"', io)
    finally:
        second.close()
    assert problems == [f"the directory {tmp_path / 'gone'} no longer exists"]
    assert output.decode() == f"{tmp_path}|b c|two\nlines|"
