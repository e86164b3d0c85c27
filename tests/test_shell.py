"""The shell session itself: a real bash in a real pty, one step at a time."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest

from engine.shell import Responder, ShellSession, StepIO, may_change_state


@pytest.fixture
def session(tmp_path) -> Iterator[ShellSession]:
    env = dict(os.environ, TMPDIR=str(tmp_path), SECRET_TOKEN="tok-4f9e2a-secret")
    shell = ShellSession(cwd=str(tmp_path), env=env, secret_variables=("SECRET_TOKEN",))
    yield shell
    shell.close()


def run(session: ShellSession, body: str, **options) -> tuple[int | None, str]:
    output = bytearray()
    outcome = session.run_step(body, StepIO(on_output=output.extend), **options)
    return outcome.exit_code, output.decode()


@pytest.mark.parametrize(
    ("body", "stateful"),
    [
        ("echo hello\nls -l | wc -l\n", False),
        ("kubectl get pods -o wide\n", False),
        ("x=1\n", True),
        ("cd /tmp\n", True),
        ("export A=b\n", True),
        (". ./env.sh\n", True),
        ("source env.sh\n", True),
        ("for f in *; do :; done\n", True),
        ("read -r answer\n", True),
        ("greet() { echo hi; }\n", True),
        ("((count++))\n", True),
        ("printf -v when '%(%F)T' -1\n", True),
    ],
)
def test_which_steps_may_change_the_session(body: str, stateful: bool) -> None:
    assert may_change_state(body) is stateful


def test_state_carries_over_however_it_was_set(session: ShellSession, tmp_path) -> None:
    (tmp_path / "env.sh").write_text("FROM_FILE=sourced\n")
    (tmp_path / "sub").mkdir()
    code, _ = run(
        session,
        "cd sub\nplain=1\nexport EXPORTED=2\nread -r typed <<< 'three'\n"
        '. ../env.sh\nfor last in a b c; do :; done\nhello() { echo "hi $1"; }\n',
    )
    assert code == 0
    code, out = run(session, 'echo "$PWD|$plain|$EXPORTED|$typed|$FROM_FILE|$last"; hello x\n')
    assert (code, out) == (0, f"{tmp_path}/sub|1|2|three|sourced|c\nhi x\n")


def test_exit_fails_only_its_step_and_cwd_option_does_not_stick(session, tmp_path) -> None:
    assert run(session, "exit 3\n")[0] == 3
    assert run(session, "pwd\n", cwd="/") == (0, "/\n")
    assert run(session, "pwd\n") == (0, f"{tmp_path}\n")


def test_a_variable_holding_a_secret_is_not_carried(session: ShellSession) -> None:
    run(session, 'copy="x-$SECRET_TOKEN"; other=plain\n')
    assert run(session, 'echo "[$copy][$other][${SECRET_TOKEN:0:3}]"\n') == (0, "[][plain][tok]\n")


def test_timeout_stops_the_whole_group(session: ShellSession, tmp_path) -> None:
    marker = f"sleep 77.{os.getpid()}"
    started = time.monotonic()
    outcome = session.run_step(
        f"( trap '' TERM; {marker} ) & {marker}\n", StepIO(on_output=lambda _: None), timeout=0.5
    )
    assert outcome.timed_out and time.monotonic() - started < 5
    time.sleep(0.2)
    assert marker not in os.popen("ps -eo args").read()


def test_expect_answers_and_large_output_arrives_whole(session: ShellSession) -> None:
    output = bytearray()
    io = StepIO(on_output=output.extend, responders=[Responder(re.compile(r"Name\? "), "ada")])
    outcome = session.run_step("printf 'Name? '; read -r n; echo \"hi $n\"; seq 1 200000\n", io)
    text = output.decode()
    assert outcome.exit_code == 0
    assert "hi ada" in text
    assert text.rstrip().endswith("\n200000") and text.count("\n") == 200001


def test_scratch_files_are_private_and_removed(tmp_path, monkeypatch) -> None:
    """Step scripts and the state file live in $XDG_RUNTIME_DIR (else /dev/shm), readable by
    the owner only, and go when the session closes."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    shell = ShellSession(cwd=str(tmp_path))
    try:
        [workdir] = list(tmp_path.glob("runbook-*"))
        assert oct(workdir.stat().st_mode & 0o777) == "0o700"
        code, out = run(shell, f"stat -c '%n %a' {workdir}/*")
        assert code == 0
        modes = dict(line.rsplit(" ", 1) for line in out.splitlines())
        assert set(modes.values()) == {"600"}
        assert f"{workdir}/state" in modes
        assert any(name.startswith(f"{workdir}/step-") for name in modes)
    finally:
        shell.close()
    assert not workdir.exists()
