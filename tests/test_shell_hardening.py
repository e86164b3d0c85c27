"""The shell session under abuse: answers nobody read, huge command lines, steps that fight
Ctrl-C, terminal modes left behind, prompts that backtrack forever. A real bash in a real pty,
driven through `ShellSession` as the run loop drives it; injections are caught by a marker
file that must never appear.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.shell import (
    STRAY_NOTE,
    Responder,
    ShellError,
    ShellSession,
    StepIO,
    StepRefused,
)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ShellSession]:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("PS0", None)
    shell = ShellSession(cwd=str(tmp_path), env=env, kill_grace=0.5)
    yield shell
    shell.close()


@pytest.fixture
def unique() -> Iterator[callable]:  # type: ignore[valid-type]
    """`unique(seconds)`: a `sleep` argument no other process has; leftovers are killed."""
    made: list[str] = []

    def make(seconds: int) -> str:
        made.append(f"{seconds}.{secrets.randbelow(900_000) + 100_000}")
        return made[-1]

    yield make
    for marker in made:
        for pid in alive(marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def alive(marker: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


def wait_gone(marker: str, within: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := alive(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def run(session: ShellSession, body: str, io: StepIO | None = None, **options) -> tuple:
    output = bytearray()
    if io is None:
        io = StepIO(on_output=output.extend)
    else:
        io.on_output = output.extend
    outcome = session.run_step(body, io, **options)
    return outcome, output.decode()


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging the test run (the engine used to block forever here)."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def press_ctrl_c_after(seconds: float, times: int = 1):  # type: ignore[no-untyped-def]
    """An `interrupt_requested` that reports `times` presses, the first after `seconds`."""
    start = time.monotonic()
    presses = [0]

    def requested() -> bool:
        if presses[0] < times and time.monotonic() - start >= seconds:
            presses[0] += 1
            return True
        return False

    return requested


# -- expect answers only ever reach the step ----------------------------------------------------


def test_an_answer_the_step_never_reads_is_not_run_by_the_session(session, tmp_path) -> None:
    pwned = tmp_path / "pwned"
    asks = Responder(re.compile(r"Continue\? "), f"touch {pwned}")
    io = StepIO(on_output=lambda _: None, responders=[asks])
    # The step asks, then ends without reading its answer.
    outcome, _ = run(session, "printf 'Continue? '; sleep 0.3; echo\n", io)
    assert outcome.exit_code == 0
    outcome, out = run(session, "echo next\n")
    assert (outcome.exit_code, out) == (0, "next\n")
    # Nor does the next step that reads its terminal get the stale answer.
    outcome, out = run(session, 'read -r -t 0.5 got; echo "[$got]"\n')
    assert out == "[]\n"
    time.sleep(0.2)
    assert not pwned.exists()


def test_an_answer_with_a_line_break_is_refused_unless_asked_for(session, tmp_path) -> None:
    pwned = tmp_path / "pwned"
    hostile = Responder(re.compile(r"name\? "), f"y\ntouch {pwned}")
    io = StepIO(on_output=lambda _: None, responders=[hostile])
    with pytest.raises(StepRefused, match=r"line break.*multiline: true"):
        session.run_step("read -r -p 'name? ' n; echo \"$n\"\n", io)
    with pytest.raises(StepRefused):
        session.run_step("true\n", StepIO(lambda _: None, [Responder(re.compile("x"), "a\rb")]))
    assert not pwned.exists()
    # The refused step ran nothing, and the session is still fine.
    assert run(session, "echo ok\n")[1] == "ok\n"
    two_lines = Responder(re.compile(r"first\? "), "one\ntwo", multiline=True)
    outcome, out = run(
        session,
        "read -r -p 'first? ' a; read -r b; echo \"[$a|$b]\"\n",
        StepIO(on_output=lambda _: None, responders=[two_lines]),
    )
    assert outcome.exit_code == 0 and out.endswith("[one|two]\n")


def test_a_prompt_pattern_that_backtracks_forever_does_not_hang_the_step(session) -> None:
    # `(x+x+)+y` against a long run of x: exponential for a backtracking engine.
    endless = Responder(re.compile(r"(x+x+)+y"), "never")
    io = StepIO(on_output=lambda _: None, responders=[endless])
    started = time.monotonic()
    outcome, out = run(session, "printf 'x%.0s' {1..3000}; sleep 30\n", io, timeout=2)
    assert outcome.timed_out and time.monotonic() - started < 10
    assert "took too long to match" in out


# -- long command lines -------------------------------------------------------------------------


def test_a_command_line_over_the_terminal_limit_runs_and_still_times_out(session, unique) -> None:
    certificate = "-----BEGIN CERTIFICATE-----\n" + "QUJD" * 3000 + "\n-----END CERTIFICATE-----"
    with deadline(30):
        outcome, out = run(session, 'echo "${#CERT}"\n', env={"CERT": certificate})
        assert (outcome.exit_code, out) == (0, f"{len(certificate)}\n")
        marker = unique(60)
        outcome, _ = run(session, f"sleep {marker}\n", env={"CERT": certificate}, timeout=1)
    assert outcome.timed_out
    assert wait_gone(marker) == []


# -- Ctrl-C and timeouts stop the whole tree ----------------------------------------------------


def test_ctrl_c_stops_background_and_setsid_children(session, unique) -> None:
    background, detached, foreground = unique(300), unique(301), unique(302)
    io = StepIO(on_output=lambda _: None, interrupt_requested=press_ctrl_c_after(0.5))
    outcome, _ = run(
        session,
        f"sleep {background} &\nsetsid sleep {detached} &\nsleep {foreground}\n",
        io,
    )
    assert outcome.interrupted
    for marker in (background, detached, foreground):
        assert wait_gone(marker) == [], marker


def test_ctrl_c_escalates_to_sigkill_for_a_step_that_ignores_int_and_term(session, unique) -> None:
    stubborn = unique(303)
    io = StepIO(on_output=lambda _: None, interrupt_requested=press_ctrl_c_after(0.3))
    started = time.monotonic()
    outcome, _ = run(session, f"trap '' INT TERM\nsleep {stubborn}\necho survived\n", io)
    # INT, then TERM after the grace (0.5 s), then KILL after another: one press is enough.
    assert outcome.interrupted and time.monotonic() - started < 5
    assert wait_gone(stubborn) == []
    assert run(session, "echo still here\n")[1] == "still here\n"


def test_a_timeout_also_stops_children_that_left_the_group(session, unique) -> None:
    detached, foreground = unique(304), unique(305)
    outcome, _ = run(session, f"setsid sleep {detached} &\nsleep {foreground}\n", timeout=0.5)
    assert outcome.timed_out
    assert wait_gone(detached) == [] and wait_gone(foreground) == []


def test_a_timeout_kills_what_ignores_sigterm_even_outside_the_group(session, unique) -> None:
    stubborn, foreground = unique(307), unique(308)
    started = time.monotonic()
    outcome, _ = run(
        session,
        f"setsid bash -c \"trap '' TERM; sleep {stubborn}\" &\ntrap '' TERM\nsleep {foreground}\n",
        timeout=0.5,
    )
    assert outcome.timed_out and time.monotonic() - started < 5
    assert wait_gone(stubborn) == [] and wait_gone(foreground) == []


def test_a_suspended_step_is_ended_not_left_stopped(session, unique) -> None:
    held = unique(309)
    outcome, _ = run(session, f"sleep {held} &\nkill -STOP $BASHPID\necho resumed\n")
    assert outcome.signal == signal.SIGSTOP
    assert wait_gone(held) == []
    assert run(session, "jobs -l; echo next\n")[1] == "next\n"


def test_a_background_job_of_a_step_that_succeeded_is_left_running(session, unique) -> None:
    server = unique(306)
    outcome, _ = run(session, f"sleep {server} &\n")
    assert outcome.exit_code == 0
    assert alive(server), "a step's deliberate background job is the operator's"


# -- session pollution --------------------------------------------------------------------------


def test_stty_echo_does_not_bring_the_internal_command_line_into_later_steps(session) -> None:
    run(session, "stty echo </dev/tty\n")
    outcome, out = run(session, "echo after\n")
    assert (outcome.exit_code, out) == (0, "after\n")


def test_stty_icanon_min_0_does_not_end_the_session(session) -> None:
    with deadline(20):
        run(session, "stty -icanon min 0\n")
        outcome, out = run(session, "echo alive\n")
    assert (outcome.exit_code, out) == (0, "alive\n")
    outcome, out = run(session, 'read -r -t 2 line; echo "[$line]"\n', _typed(b"typed\n"))
    assert out == "[typed]\n"


def test_ps0_set_by_a_step_does_not_carry_over(session) -> None:
    run(session, "PS0='PS0 WAS HERE'; TMOUT=1\n")
    time.sleep(1.5)  # TMOUT carried over would end the session while it waits
    outcome, out = run(session, "echo clean\n")
    assert (outcome.exit_code, out) == (0, "clean\n")


def test_late_output_of_a_background_job_is_not_the_next_steps_output(session) -> None:
    run(session, "(sleep 0.3; echo late) &\n")
    time.sleep(1.5)
    stray = bytearray()
    io = StepIO(on_output=lambda _: None, on_stray=stray.extend)
    outcome, out = run(session, "echo next\n", io)
    assert (outcome.exit_code, out, bytes(stray)) == (0, "next\n", b"late\n")
    # Without a place of its own, it is still kept, behind a note saying what it is.
    run(session, "(sleep 0.3; echo later) &\n")
    time.sleep(1.5)
    assert run(session, "echo then\n")[1] == (STRAY_NOTE + b"later\nthen\n").decode()


def test_the_failure_menus_shell_leaves_no_echo_behind(session) -> None:
    """Issue 13, point 4: `exec bash -i` in a step (the failure menu's shell) skipped the
    step's own clean-up; later steps then showed the internal command line."""
    env = {"PS1": "(runbook debug) $ "}
    run(
        session,
        "exec bash --noprofile --norc -i\n",
        _typed(b"exit\n", 0.5),
        env=env,
        interactive=True,
    )
    outcome, out = run(session, "echo after\n")
    assert (outcome.exit_code, out) == (0, "after\n")
    assert "__rb_" not in out and "\x1b[?2004h" not in out


def _typed(data: bytes, after: float = 0.3) -> StepIO:
    """A StepIO whose operator types `data` after a moment."""
    read, write = os.pipe()

    def type_it() -> None:
        time.sleep(after)
        os.write(write, data)

    threading.Thread(target=type_it, daemon=True).start()
    return StepIO(on_output=lambda _: None, input_fd=read)


# -- which shell --------------------------------------------------------------------------------


def test_shell_sh_is_bash_in_posix_mode(tmp_path: Path) -> None:
    shell = ShellSession(shell="sh", cwd=str(tmp_path))
    try:
        assert run(shell, "x=1; cd /\n")[0].exit_code == 0
        outcome, out = run(shell, 'echo "$x $PWD"; shopt -o posix | cut -f2\n')
        assert (outcome.exit_code, out) == (0, "1 /\non\n")
    finally:
        shell.close()


def test_another_shell_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ShellError, match=r"shell: zsh is not supported.*shell: bash"):
        ShellSession(shell="zsh", cwd=str(tmp_path))


# -- secrets in the carried state ---------------------------------------------------------------


def test_no_variable_holding_a_secret_is_carried_whatever_its_name(tmp_path: Path) -> None:
    value = "s3cr3t-" + secrets.token_hex(4)
    env = dict(os.environ, DB_PASSWORD=value)
    shell = ShellSession(cwd=str(tmp_path), env=env, secret_variables=("DB_PASSWORD",))
    try:
        # Names before and after the secret's own, in every group the scrub walks.
        run(
            shell,
            'a_copy="$DB_PASSWORD"; ZZ_COPY="x$DB_PASSWORD"; _late="$DB_PASSWORD"\n'
            'LIST=(one "$DB_PASSWORD"); declare -A MAP=([k]="$DB_PASSWORD"); kept=plain\n',
        )
        outcome, out = run(shell, 'echo "[$a_copy|$ZZ_COPY|$_late|${LIST[*]}|${MAP[*]}|$kept]"\n')
        assert (outcome.exit_code, out) == (0, "[|||||plain]\n")
    finally:
        shell.close()


# -- hostile values, generated ------------------------------------------------------------------

_PRINTABLE = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=0, max_size=40
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_PRINTABLE)
def test_no_answer_runs_as_a_command_whatever_it_holds(session, tmp_path, value) -> None:
    pwned = tmp_path / "pwned"
    send = f"{value}; touch {pwned} `touch {pwned}` $(touch {pwned}) '\"; touch {pwned}"
    answer = Responder(re.compile(r"\? $"), send)
    io = StepIO(on_output=lambda _: None, responders=[answer])
    run(session, "printf 'Ready? '; sleep 0.1; echo\n", io)  # never reads it
    outcome, out = run(session, "echo done\n")
    assert (outcome.exit_code, out) == (0, "done\n")
    assert not pwned.exists()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=40,
    ),
    size=st.sampled_from([0, 5000]),
)
def test_an_env_value_reaches_the_step_as_it_is(session, tmp_path, value, size) -> None:
    value = value + "x" * size  # past the terminal's line limit too
    pwned = tmp_path / "pwned"
    hostile = f"{value}'; touch {pwned}; '$(touch {pwned})"
    outcome, out = run(session, 'printf "%s" "$V"\n', env={"V": hostile})
    assert (outcome.exit_code, out) == (0, hostile)
    assert not pwned.exists()


def test_the_scrub_holds_whatever_ifs_and_options_the_step_set(tmp_path: Path) -> None:
    env = dict(os.environ, API_TOKEN="tok-" + secrets.token_hex(4), DB_PASSWORD="pw-x1")
    shell = ShellSession(cwd=str(tmp_path), env=env, secret_variables=("API_TOKEN", "DB_PASSWORD"))
    try:
        run(shell, 'IFS=,; set -u -f; copy="$API_TOKEN"; other="$DB_PASSWORD"; kept=1\n')
        outcome, out = run(shell, 'printf "[%s|%s|%s|%s]" "${copy-}" "${other-}" "$kept" "$IFS"\n')
        assert (outcome.exit_code, out) == (0, "[||1|,]")
    finally:
        shell.close()
