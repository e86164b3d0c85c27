"""`runbook run` driven as an operator drives it: the real CLI in a real pty (pexpect), and
unattended (`--yes`, no terminal) through subprocess. Each test writes a small runbook into
its own temporary directory and asserts real effects: files created or not, the exit status,
the text on screen, processes left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

from tests.conftest import environment, write_runbook

RUNBOOK = Path(sys.executable).parent / "runbook"
EXPECT_TIMEOUT = 15

STEP_PROMPT = "[a]bort / [?] "  # the end of `Run it? [R]un / [s]kip / [e]dit / [a]bort / [?] `
MANUAL_PROMPT = "Done? [D]one / [s]kip / [a]bort "
FAILURE_PROMPT = "[c]ontinue / [a]bort "  # the end of the failure menu without a handler
NOTE_PROMPT = "Note (why skipped, optional): "

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def plain(text: str) -> str:
    """Terminal text without colour codes and carriage returns: what the operator reads."""
    return ANSI.sub("", text).replace("\r", "")


def styled(text: str) -> re.Pattern[str]:
    """A pattern for `text` as a terminal shows it: style codes may split it anywhere."""
    codes = r"(?:\x1b\[[0-9;?]*[ -/]*[@-~])*"
    return re.compile(codes.join(re.escape(c) for c in text))


def visible(directory: Path) -> list[str]:
    """The names in a directory, without dot-files (the engine's own journal lives there)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


@pytest.fixture
def unique_sleep():  # type: ignore[no-untyped-def]
    """`unique_sleep(seconds)`: a `sleep` argument no other process on the machine has, a
    marker for pgrep. Any such sleep still alive at teardown is killed, by its pid."""
    made: list[str] = []

    def make(seconds: int) -> str:
        made.append(f"{seconds}.{secrets.randbelow(900_000) + 100_000}")
        return made[-1]

    yield make
    for marker in made:
        for line in alive(f"sleep {marker}"):
            with contextlib.suppress(OSError):
                os.kill(int(line.split()[0]), signal.SIGKILL)


def alive(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True, check=False)
    return found.stdout.splitlines()


def wait_gone(pattern: str, within: float = 3.0) -> list[str]:
    """Processes matching `pattern` still there after `within` seconds (polling, not a sleep
    and hope: a killed process can take a moment to be reaped)."""
    deadline = time.monotonic() + within
    while (left := alive(pattern)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


class Operator:
    """`runbook run ARGS...` in a 40x200 pty, and an operator's hands on its keyboard."""

    def __init__(self, tmp_path: Path, *args: str | Path, cwd: Path | None = None, **env: str):
        assert RUNBOOK.exists(), f"the console script is not installed: {RUNBOOK}"
        self.log = io.StringIO()
        self.child = pexpect.spawn(
            str(RUNBOOK),
            ["run", *map(str, args)],
            cwd=str(cwd or tmp_path),
            encoding="utf-8",
            dimensions=(40, 200),
            timeout=EXPECT_TIMEOUT,
            env=environment(tmp_path, **env),
        )
        self.child.logfile_read = self.log

    def expect(self, text: str, timeout: float = EXPECT_TIMEOUT) -> None:
        """Wait for exact text on the screen, whatever styling codes sit between its parts."""
        try:
            self.child.expect(styled(text), timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF):
            pytest.fail(f"never saw {text!r}; the screen:\n{self.screen}")

    def answer_step(self, key: str) -> None:
        self.expect(STEP_PROMPT)
        self.child.send(key)

    def type_line(self, text: str) -> None:
        self.child.send(text + "\r")

    def finish(self) -> int:
        """Wait for the run to end; its exit status."""
        try:
            self.child.expect(pexpect.EOF)
        except pexpect.TIMEOUT:
            pytest.fail(f"the run did not end; the screen:\n{self.screen}")
        self.child.close()
        assert self.child.signalstatus is None, f"killed by signal {self.child.signalstatus}"
        return int(self.child.exitstatus)

    @property
    def screen(self) -> str:
        return plain(self.log.getvalue())

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


@pytest.fixture
def operator(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start the run in a pty: `operator(*args, **env)`; the child is killed if left over."""
    started: list[Operator] = []

    def start(*args: str | Path, cwd: Path | None = None, **env: str) -> Operator:
        op = Operator(tmp_path, *args, cwd=cwd, **env)
        started.append(op)
        return op

    yield start
    for op in started:
        op.close()


def run_unattended(
    tmp_path: Path, *args: str | Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`runbook run ARGS...` with no terminal at all (stdin from /dev/null, output to pipes)."""
    return subprocess.run(
        [str(RUNBOOK), "run", *map(str, args)],
        cwd=cwd or tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(tmp_path, COLUMNS="200", **env),
        check=False,
    )


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    both = result.stdout + result.stderr
    assert "Traceback" not in both and "internal error" not in both, both


# -- 1. confirm, run, skip ----------------------------------------------------------------------


def test_confirm_runs_each_step_and_skip_leaves_no_trace(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Demo

        ```bash {id: hello}
        echo "hello from step one" && touch hello.txt
        ```

        ```bash {id: unwanted}
        touch unwanted.txt
        ```

        - [ ] Look at the dashboard

        - [ ] Tell the team

        ```bash {id: last}
        echo last-step-ran > last.txt
        ```
        """,
    )
    op = operator(book)
    op.expect("[1/5]")
    op.answer_step("?")  # help, then the same question again
    op.expect("e edit it in $EDITOR first")
    op.answer_step("r")
    op.expect("hello from step one")
    op.expect("✓ hello succeeded")
    assert (tmp_path / "hello.txt").exists()

    op.expect("[2/5]")
    op.answer_step("s")
    op.expect("↷ unwanted skipped (operator)")

    op.expect("☐ Look at the dashboard")
    op.expect(MANUAL_PROMPT)
    op.child.send("d")
    op.expect("✓ demo-3 done")

    op.expect("☐ Tell the team")
    op.expect(MANUAL_PROMPT)
    op.child.send("s")
    op.expect(NOTE_PROMPT)
    op.type_line("nobody is awake")
    op.expect("↷ demo-4 skipped (nobody is awake)")

    op.answer_step("\r")  # Enter runs, like r
    op.expect("✓ last succeeded")
    op.expect("Run succeeded")
    assert op.finish() == 0
    assert not (tmp_path / "unwanted.txt").exists()
    assert (tmp_path / "last.txt").read_text() == "last-step-ran\n"
    # The operator saw each command before it ran, with its position.
    screen = op.screen
    assert "[1/5] Demo > hello" in screen
    assert 'echo "hello from step one" && touch hello.txt' in screen
    assert "[5/5] Demo > last" in screen


def test_abort_at_the_first_prompt_runs_nothing(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Demo

        ```bash {id: first}
        touch first.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("a")
    op.expect("Run aborted")
    assert op.finish() == 1
    assert not (tmp_path / "first.txt").exists()


# -- 2. edit ------------------------------------------------------------------------------------


def test_edit_runs_the_edited_command(tmp_path: Path, operator) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/original/edited/" "$1"\n')
    editor.chmod(0o755)
    book = write_runbook(
        tmp_path,
        """
        # Edit

        ```bash {id: write}
        echo original > result.txt
        ```
        """,
    )
    op = operator(book, EDITOR=str(editor))
    op.answer_step("e")
    op.expect("echo edited > result.txt")  # asked again, now showing the edited command
    op.answer_step("r")
    op.expect("✓ write succeeded")
    assert op.finish() == 0
    assert (tmp_path / "result.txt").read_text() == "edited\n"


# -- 3. failure, retry, abort -------------------------------------------------------------------


def test_failed_step_retried_after_fixing_the_cause(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Retry

        ```bash {id: wait-ready}
        test -f ready.flag || { echo "not ready yet"; exit 3; }
        echo ready > done.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("not ready yet")
    op.expect("✗ wait-ready failed: exit status 3")
    op.expect(FAILURE_PROMPT)
    assert not (tmp_path / "done.txt").exists()
    (tmp_path / "ready.flag").touch()  # the operator fixes the cause in another window
    op.child.send("r")
    op.expect("↻ attempt 2")
    op.expect("✓ wait-ready succeeded")
    op.expect("Run succeeded")
    assert op.finish() == 0
    assert (tmp_path / "done.txt").read_text() == "ready\n"


def test_failed_step_then_abort_exits_1(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Abort

        ```bash {id: broken}
        exit 3
        ```

        ```bash {id: never}
        touch never.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("✗ broken failed: exit status 3")
    op.expect(FAILURE_PROMPT)
    op.child.send("a")
    op.expect("Run aborted")
    assert op.finish() == 1
    assert not (tmp_path / "never.txt").exists()


FAILING_THEN_NEXT = """
# Menu

```bash {id: broken}
test -f fixed.flag || exit 3
echo "fixed now"
```

```bash {id: next}
touch next.txt
```
"""


@pytest.mark.parametrize(
    ("key", "status", "summary"),
    [("s", 0, "Run succeeded"), ("c", 1, "Run failed: some steps failed")],
)
def test_failure_menu_skip_or_continue_goes_on(
    tmp_path: Path, operator, key: str, status: int, summary: str
) -> None:
    book = write_runbook(tmp_path, FAILING_THEN_NEXT)
    op = operator(book)
    op.answer_step("r")
    op.expect("✗ broken failed: exit status 3")
    op.expect(FAILURE_PROMPT)
    op.child.send(key)
    op.answer_step("r")
    op.expect("✓ next succeeded")
    op.expect(summary)
    assert op.finish() == status
    assert (tmp_path / "next.txt").exists()


def test_failure_menu_opens_a_shell_in_the_steps_directory(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path, FAILING_THEN_NEXT.replace("{id: broken}", "{id: broken, cwd: sub}")
    )
    (tmp_path / "sub").mkdir()
    op = operator(book)
    op.answer_step("r")
    op.expect(FAILURE_PROMPT)
    op.child.send("o")
    op.expect("(runbook broken)")
    op.type_line('touch fixed.flag; echo "in $PWD"; exit')
    op.expect(f"in {tmp_path / 'sub'}")
    op.expect(FAILURE_PROMPT)  # the shell's exit returns to the menu
    op.child.send("r")
    op.expect("fixed now")
    op.expect("✓ broken succeeded")
    op.answer_step("r")
    op.expect("Run succeeded")
    assert op.finish() == 0
    assert (tmp_path / "sub" / "fixed.flag").exists()


def test_failure_menu_edit_and_retry(tmp_path: Path, operator) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/exit 3/echo patched > patched.txt/" "$1"\n')
    editor.chmod(0o755)
    book = write_runbook(tmp_path, FAILING_THEN_NEXT)
    op = operator(book, EDITOR=str(editor))
    op.answer_step("r")
    op.expect(FAILURE_PROMPT)
    op.child.send("e")
    op.expect("↻ attempt 2")
    op.expect("✓ broken succeeded")
    op.answer_step("r")
    op.expect("Run succeeded")
    assert op.finish() == 0
    assert (tmp_path / "patched.txt").read_text() == "patched\n"
    assert not (tmp_path / "fixed.flag").exists()


def test_retries_run_the_step_again(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        # Flaky

        ```bash {id: flaky, retries: 2, retry_delay: 100ms}
        echo x >> tries.txt
        [ "$(wc -l < tries.txt)" -ge 3 ]
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "↻ attempt 3" in result.stdout
    assert (tmp_path / "tries.txt").read_text() == "x\nx\nx\n"


# -- 4. Ctrl-C during a step --------------------------------------------------------------------


def test_ctrl_c_stops_a_long_step_and_its_processes(tmp_path: Path, operator, unique_sleep) -> None:
    nap = unique_sleep(30)
    book = write_runbook(
        tmp_path,
        f"""
        # Long

        ```bash {{id: long}}
        echo "long step started"
        sleep {nap}
        touch finished.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("long step started")
    assert alive(f"sleep {nap}"), "the step's sleep should be running"
    pressed = time.monotonic()
    op.child.sendintr()
    op.expect("✗ long interrupted: interrupted (Ctrl-C)", timeout=3)
    assert time.monotonic() - pressed < 5
    op.expect(FAILURE_PROMPT)
    assert wait_gone(f"sleep {nap}") == []
    op.child.send("a")
    op.expect("Run aborted")
    assert op.finish() == 1
    assert not (tmp_path / "finished.txt").exists()


# -- 5. Ctrl-C at a prompt ----------------------------------------------------------------------


def test_ctrl_c_at_the_step_prompt_stops_the_run(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Stop

        ```bash {id: first}
        touch first.txt
        ```

        ```bash {id: second}
        touch second.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("✓ first succeeded")
    op.answer_step("\x03")
    op.expect("Run interrupted")
    assert op.finish() == 130
    assert (tmp_path / "first.txt").exists()
    assert not (tmp_path / "second.txt").exists()


def test_ctrl_c_at_a_line_prompt_stops_the_run(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Stop

        - [ ] Check the graphs

        ```bash {id: after}
        touch after.txt
        ```
        """,
    )
    op = operator(book)
    op.expect(MANUAL_PROMPT)
    op.child.send("s")
    op.expect(NOTE_PROMPT)
    op.child.sendintr()
    op.expect("Run interrupted")
    assert op.finish() == 130
    assert not (tmp_path / "after.txt").exists()


# -- 6. timeout with background children --------------------------------------------------------


def test_timeout_stops_the_whole_process_tree(tmp_path: Path, unique_sleep) -> None:
    background, foreground = unique_sleep(300), unique_sleep(300)
    write_runbook(
        tmp_path,
        f"""
        # Timeout

        ```bash {{id: slow, timeout: 1s}}
        sleep {background} &
        echo "children started"
        sleep {foreground}
        ```

        ```bash {{id: after}}
        touch after.txt
        ```
        """,
    )
    started = time.monotonic()
    result = run_unattended(tmp_path, "rb.md", "--yes")
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "children started" in result.stdout
    assert "✗ slow timed-out: timed out, its processes were stopped" in result.stdout
    assert "Run failed" in result.stdout
    assert took < 10
    assert wait_gone(f"sleep {background}") == []
    assert wait_gone(f"sleep {foreground}") == []
    assert not (tmp_path / "after.txt").exists()


def test_timeout_kills_a_background_child_that_ignores_sigterm(
    tmp_path: Path, unique_sleep
) -> None:
    stubborn = unique_sleep(300)
    write_runbook(
        tmp_path,
        f"""
        # Timeout

        ```bash {{id: slow, timeout: 1s}}
        ( trap '' TERM; sleep {stubborn} ) &
        sleep 30
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 1
    assert wait_gone(f"sleep {stubborn}", within=1.0) == []


# -- 7. expect ----------------------------------------------------------------------------------


def test_expect_answers_a_prompt_in_an_unattended_run(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        # Answer

        ```bash {id: ask, expect: [{prompt: 'Continue\\?', send: 'yes'}]}
        read -r -p "Continue? " x
        echo "got $x"
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "got yes" in result.stdout
    assert "answered /Continue\\?/ with yes" in result.stdout


def test_a_secret_expect_answer_is_masked(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          password: {secret: true}
        ---
        # Login

        ```bash {id: login, expect: [{prompt: 'Password:', send: '{{ password }}', secret: true}]}
        read -r -s -p "Password: " pw
        echo
        [ "$pw" = "$PASSWORD" ] && echo "login ok" && printf '%s' "$pw" > seen.txt
        ```
        """,
    )
    secret = "pa55-w0rd-xyz"
    result = run_unattended(tmp_path, "rb.md", "--yes", "-p", f"password={secret}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "login ok" in result.stdout
    assert "with [secret]" in result.stdout
    assert secret not in result.stdout + result.stderr
    assert (tmp_path / "seen.txt").read_text() == secret


# -- 8. interactive -----------------------------------------------------------------------------


def test_interactive_step_reads_the_operators_keyboard(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Talk

        ```bash {id: talk, interactive: true}
        echo "say something:"
        read -r line
        echo "typed:$line" | tee typed.txt
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("say something:")
    op.type_line("hello")
    op.expect("typed:hello")
    op.expect("✓ talk succeeded")
    assert op.finish() == 0
    assert (tmp_path / "typed.txt").read_text() == "typed:hello\n"


def test_interactive_step_echoes_what_the_operator_types(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        # Talk

        ```bash {id: talk, interactive: true}
        echo "say something:"
        read -r line
        echo "typed:$line"
        ```
        """,
    )
    op = operator(book)
    op.answer_step("r")
    op.expect("say something:")
    op.type_line("hello")
    op.expect("✓ talk succeeded")
    assert op.finish() == 0
    assert "say something:\nhello\n" in op.screen


def test_an_interpreter_runs_the_block(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          name: {default: "O'Brien"}
        ---
        # Report

        ```python {id: summary, run: true}
        import os
        print("hello", os.environ["NAME"], 6 * 7)
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello O'Brien 42" in result.stdout


# -- 9. injection -------------------------------------------------------------------------------

HOSTILE = "$(touch INJECTED); rm -rf ~"


def test_a_parameter_reaches_the_command_as_one_literal_word(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          value: {description: anything at all}
        ---
        # Quote

        ```bash {id: write, env: {COPY: '{{ value }}'}}
        printf '%s' {{ value }} > out.txt
        printf '%s\\n' {{ value }} | wc -l > words.txt
        printf '%s' "$COPY" > env.txt
        printf '%s' "$VALUE" > upper.txt
        ```
        """,
    )
    for value in (HOSTILE, "`touch INJECTED`", "x' ; touch INJECTED; echo '", "{{ 7 * 7 }}"):
        result = run_unattended(tmp_path, "rb.md", "--yes", "-p", f"value={value}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert (tmp_path / "out.txt").read_text() == value
        assert (tmp_path / "words.txt").read_text().strip() == "1"
        assert (tmp_path / "env.txt").read_text() == value
        assert (tmp_path / "upper.txt").read_text() == value
        assert not (tmp_path / "INJECTED").exists()
        assert (tmp_path / "home" / "canary").exists()


def test_a_captured_value_is_quoted_too(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        # Capture

        ```bash {id: produce, capture: produced}
        echo '$(touch INJECTED); rm -rf ~'
        ```

        ```bash {id: consume}
        printf '%s' {{ produced }} > out.txt
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out.txt").read_text() == HOSTILE
    assert not (tmp_path / "INJECTED").exists()
    assert (tmp_path / "home" / "canary").exists()


# -- 10. sandbox escapes ------------------------------------------------------------------------

SANDBOX_RUNBOOK = """
# Escape

```bash {id: early}
touch EARLY
```

```bash {id: escape}
echo {{ EXPRESSION }}
```
"""


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "cycler.__init__.__globals__",
        "''['__class__']",
        "''|attr('__class__')",
        pytest.param("''['__cl' ~ 'ass__']"),
        pytest.param(
            "'{0.__class__}'.format('')",
        ),
    ],
)
def test_a_sandbox_escape_is_refused_before_anything_runs(tmp_path: Path, expression: str) -> None:
    write_runbook(tmp_path, SANDBOX_RUNBOOK.replace("EXPRESSION", expression))
    result = run_unattended(tmp_path, "rb.md", "--yes")
    no_traceback(result)
    assert not (tmp_path / "EARLY").exists(), "a step ran before the refusal"
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(r"rb\.md:8(:\d+)?: error: .*not allowed", result.stdout + result.stderr)


def test_a_sandbox_escape_is_refused_in_the_pty_too(tmp_path: Path, operator) -> None:
    book = write_runbook(tmp_path, SANDBOX_RUNBOOK.replace("EXPRESSION", "''.__class__.__mro__"))
    op = operator(book)
    op.expect("has errors")
    assert op.finish() == 2
    assert "rb.md:8:" in op.screen
    assert "Run it?" not in op.screen
    assert "Traceback" not in op.screen
    assert not (tmp_path / "EARLY").exists()


# -- 11. one terminal session -------------------------------------------------------------------


def test_cwd_and_variables_carry_over_and_exit_fails_one_step(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    write_runbook(
        tmp_path,
        """
        # Session

        ```bash {id: setup}
        cd work
        FOO=bar
        export BAR=baz
        greet() { echo "hi $1"; }
        ```

        ```bash {id: show}
        echo "state: $PWD $FOO $BAR"
        greet there
        ```

        ```bash {id: fails, on_failure: continue}
        echo "about to fail"
        exit 3
        ```

        ```bash {id: after}
        echo "still here: $FOO $BAR"
        touch after.txt
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    out = result.stdout
    assert f"state: {tmp_path / 'work'} bar baz" in out
    assert "hi there" in out
    assert "✗ fails failed: exit status 3" in out
    assert "still here: bar baz" in out
    assert "✓ after succeeded" in out
    assert (tmp_path / "work" / "after.txt").exists()
    assert "Run failed" in out
    assert result.returncode == 1  # a step failed, even though the run went on


# -- 12. dry run and parameter errors -----------------------------------------------------------


def test_dry_run_prints_rendered_commands_and_runs_nothing(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          target: {description: where to deploy}
          token: {secret: true}
        ---
        # Deploy

        ```bash {id: deploy}
        touch deployed.txt; echo deploy --to {{ target }} --token {{ token }}
        ```

        ```bash {id: version, capture: version}
        touch version.txt; echo 1.2
        ```

        ```bash {id: report}
        touch report.txt; echo {{ version }}
        ```
        """,
    )
    result = run_unattended(
        tmp_path, "rb.md", "--dry-run", "-p", "target=web 01", "-p", "token=hunter22"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nothing is executed" in out
    assert "deploy --to 'web 01' --token [secret:token]" in out
    assert "<version from step version>" in out
    assert "hunter22" not in out + result.stderr
    assert visible(tmp_path) == ["home", "rb.md"]


def test_yes_with_missing_parameters_names_all_of_them(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          alpha: {description: first}
          beta: {description: second}
          gamma: {default: present}
        ---
        # Params

        ```bash {id: use}
        touch ran.txt; echo {{ alpha }} {{ beta }} {{ gamma }}
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes")
    no_traceback(result)
    assert result.returncode == 2
    message = result.stderr
    assert "missing required parameter(s): alpha, beta" in message
    assert "gamma" not in message
    assert not (tmp_path / "ran.txt").exists()


def test_a_value_outside_the_choices_is_a_usage_error(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          environment: {choices: [staging, production], default: staging}
        ---
        # Params

        ```bash {id: use}
        touch ran.txt
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes", "-p", "environment=prod")
    no_traceback(result)
    assert result.returncode == 2
    assert "'environment' must be one of staging, production, got 'prod'" in result.stderr
    assert not (tmp_path / "ran.txt").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          region: {default: eu}
        ---
        # Params

        ```bash {id: use}
        touch ran.txt
        ```
        """,
    )
    unknown = run_unattended(tmp_path, "rb.md", "--yes", "-p", "regoin=us")
    assert unknown.returncode == 2
    assert "unknown parameter 'regoin'" in unknown.stderr
    assert "region" in unknown.stderr
    no_tty = run_unattended(tmp_path, "rb.md")
    assert no_tty.returncode == 2
    assert "--yes" in no_tty.stderr
    missing_file = run_unattended(tmp_path, "nope.md", "--yes")
    assert missing_file.returncode == 2
    for result in (unknown, no_tty, missing_file):
        no_traceback(result)
    assert not (tmp_path / "ran.txt").exists()


# -- 13. danger ---------------------------------------------------------------------------------

DANGER_RUNBOOK = """
# Danger

```bash {id: drop-db, confirm: danger}
touch dropped.txt
```
"""


def test_unattended_danger_needs_allow_danger(tmp_path: Path) -> None:
    write_runbook(tmp_path, DANGER_RUNBOOK)
    refused = run_unattended(tmp_path, "rb.md", "--yes")
    no_traceback(refused)
    # Refused before anything runs: no step of the run has happened.
    assert refused.returncode == 2
    assert "--allow-danger" in refused.stdout + refused.stderr
    assert not (tmp_path / "dropped.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".txt")]

    allowed = run_unattended(tmp_path, "rb.md", "--yes", "--allow-danger")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert (tmp_path / "dropped.txt").exists()


def test_interactive_danger_needs_the_step_id_typed(tmp_path: Path, operator) -> None:
    book = write_runbook(tmp_path, DANGER_RUNBOOK)
    op = operator(book)
    op.answer_step("r")
    op.expect("Type the step id (drop-db) to run it: ")
    op.type_line("drop-dv")
    op.expect("That is not the step id; the step did not run.")
    op.expect(STEP_PROMPT)  # asked again
    assert not (tmp_path / "dropped.txt").exists()
    op.child.send("r")
    op.expect("Type the step id (drop-db) to run it: ")
    op.type_line("drop-db")
    op.expect("✓ drop-db succeeded")
    assert op.finish() == 0
    assert (tmp_path / "dropped.txt").exists()


# -- 14. on_failure: a rollback section ---------------------------------------------------------

ROLLBACK_RUNBOOK = """
# Upgrade

```bash {id: prepare}
touch prepared.txt
```

```bash {id: upgrade, on_failure: rollback}
echo "upgrading"; exit 4
```

```bash {id: after}
touch after.txt
```

## Rollback

```bash {id: downgrade}
touch downgraded.txt
```

```bash {id: cleanup}
touch cleaned.txt
```
"""


def test_a_failure_runs_the_rollback_section_then_the_run_fails(tmp_path: Path) -> None:
    write_runbook(tmp_path, ROLLBACK_RUNBOOK)
    result = run_unattended(tmp_path, "rb.md", "--yes")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "✗ upgrade failed: exit status 4" in out
    assert "✓ downgrade succeeded" in out
    assert "✓ cleanup succeeded" in out
    assert "Run failed" in out
    assert (tmp_path / "prepared.txt").exists()
    assert (tmp_path / "downgraded.txt").exists()
    assert (tmp_path / "cleaned.txt").exists()
    assert not (tmp_path / "after.txt").exists()


def test_the_rollback_does_not_run_when_nothing_fails(tmp_path: Path) -> None:
    write_runbook(tmp_path, ROLLBACK_RUNBOOK.replace("exit 4", "true"))
    result = run_unattended(tmp_path, "rb.md", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "after.txt").exists()
    assert not (tmp_path / "downgraded.txt").exists()
    assert not (tmp_path / "cleaned.txt").exists()


def test_the_operator_picks_the_rollback_from_the_failure_menu(tmp_path: Path, operator) -> None:
    book = write_runbook(tmp_path, ROLLBACK_RUNBOOK)
    op = operator(book)
    op.answer_step("r")
    op.expect("✓ prepare succeeded")
    op.answer_step("r")
    op.expect("✗ upgrade failed: exit status 4")
    op.expect("[b] run rollback and stop / [a]bort ")
    op.child.send("b")
    op.answer_step("r")
    op.expect("✓ downgrade succeeded")
    op.answer_step("r")
    op.expect("✓ cleanup succeeded")
    op.expect("Run failed")
    assert op.finish() == 1
    assert (tmp_path / "downgraded.txt").exists()
    assert (tmp_path / "cleaned.txt").exists()
    assert not (tmp_path / "after.txt").exists()


# -- 15. capture and when -----------------------------------------------------------------------


def test_capture_feeds_a_later_template_and_when_skips_on_a_param(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          environment: {choices: [staging, production], default: staging}
        ---
        # Release

        ```bash {id: version, capture: version}
        echo "  1.2.3  "
        ```

        ```bash {id: record}
        printf '%s' {{ version }} > version.txt
        ```

        ```bash {id: announce, when: "environment == 'production'"}
        touch announced.txt
        ```

        ```bash {id: newer, when: "version == '9.9'"}
        touch newer.txt
        ```
        """,
    )
    staging = run_unattended(tmp_path, "rb.md", "--yes")
    assert staging.returncode == 0, staging.stdout + staging.stderr
    assert (tmp_path / "version.txt").read_text() == "1.2.3"
    assert "↷ announce skipped (when: environment == 'production')" in staging.stdout
    assert "↷ newer skipped" in staging.stdout
    assert not (tmp_path / "announced.txt").exists()
    assert not (tmp_path / "newer.txt").exists()

    production = run_unattended(tmp_path, "rb.md", "--yes", "-p", "environment=production")
    assert production.returncode == 0, production.stdout + production.stderr
    assert (tmp_path / "announced.txt").exists()
    assert not (tmp_path / "newer.txt").exists()


# -- 16. --from, --only, --skip -----------------------------------------------------------------

SELECT_RUNBOOK = """
# Select

```bash {id: alpha}
touch alpha
```

```bash {id: beta}
touch beta
```

```bash {id: gamma}
touch gamma
```

```bash {id: delta}
touch delta
```
"""


@pytest.mark.parametrize(
    ("options", "ran"),
    [
        (["--from", "gamma"], ["delta", "gamma"]),
        (["--only", "beta,delta"], ["beta", "delta"]),
        (["--skip", "alpha,gamma"], ["beta", "delta"]),
        (["--from", "beta", "--skip", "delta"], ["beta", "gamma"]),
    ],
)
def test_step_selection(tmp_path: Path, options: list[str], ran: list[str]) -> None:
    book = write_runbook(tmp_path, SELECT_RUNBOOK)
    work = tmp_path / "work"
    work.mkdir()
    result = run_unattended(tmp_path, book, "--yes", *options, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert visible(work) == ran


@pytest.mark.parametrize("option", ["--from", "--only", "--skip"])
def test_an_unknown_step_id_is_a_usage_error_with_a_suggestion(tmp_path: Path, option: str) -> None:
    book = write_runbook(tmp_path, SELECT_RUNBOOK)
    work = tmp_path / "work"
    work.mkdir()
    result = run_unattended(tmp_path, book, "--yes", option, "gamma,detla", cwd=work)
    no_traceback(result)
    assert result.returncode == 2
    assert f"{option} detla: no such step" in result.stderr
    assert "delta" in result.stderr.split("detla", 1)[1]
    assert visible(work) == []


# -- 17. parameters asked interactively ---------------------------------------------------------


def test_missing_parameters_are_asked_for(tmp_path: Path, operator) -> None:
    book = write_runbook(
        tmp_path,
        """
        ---
        params:
          environment: {description: Where to deploy, choices: [staging, production]}
          release: {pattern: 'v[0-9]+'}
          replicas: {type: int}
          token: {secret: true}
        ---
        # Deploy

        ```bash {id: deploy}
        echo "env="{{ environment }}" release=$RELEASE x$REPLICAS token=$TOKEN" | tee params.txt
        echo "again" {{ token }}
        ```
        """,
    )
    secret = "s3cr3t-Value-42"
    op = operator(book)
    op.expect("environment: Where to deploy")
    op.expect("2. production")
    op.expect("environment: ")
    op.type_line("2")
    op.expect("release: ")
    op.type_line("latest")
    op.expect("must match v[0-9]+")
    op.expect("release: ")
    op.type_line("v42")
    op.expect("replicas: ")
    op.type_line("three")
    op.expect("replicas must be a whole number")
    op.expect("replicas: ")
    op.type_line("3")
    op.expect("token: ")
    op.type_line(secret)
    op.expect("[1/1]")
    op.answer_step("r")
    op.expect("✓ deploy succeeded")
    assert op.finish() == 0
    written = (tmp_path / "params.txt").read_text()
    assert written == f"env=production release=v42 x3 token={secret}\n"
    screen = op.screen
    assert secret not in screen, "the secret reached the operator's screen"
    assert "token=[secret:token]" in screen
    assert "again [secret:token]" in screen


# -- 18. parameters in the environment ----------------------------------------------------------


def test_every_parameter_is_exported_in_upper_case(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          region: {default: eu-north}
          db_name: {description: the database}
          flavour: {choices: [small, large], default: small}
          optional_note: {required: false}
        ---
        # Env

        ```bash {id: show}
        echo "R=$REGION D=$DB_NAME F=$FLAVOUR N=${OPTIONAL_NOTE-unset}" > env.txt
        ```

        ```bash {id: child}
        sh -c 'echo "child sees $DB_NAME"' >> env.txt
        ```
        """,
    )
    result = run_unattended(tmp_path, "rb.md", "--yes", "-p", "db_name=app prod")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "env.txt").read_text() == (
        "R=eu-north D=app prod F=small N=\nchild sees app prod\n"
    )


# -- 8. output, byte for byte ---------------------------------------------------------------------


def test_large_output_reaches_the_terminal_and_the_journal_byte_for_byte(tmp_path: Path) -> None:
    """Colours, tabs and carriage returns pass untranslated (the session's pty does no output
    processing), and 12 MB, past a journal checkpoint, are all recorded and verify."""
    from engine.events import Output
    from engine.journal.store import connect, stored_events

    write_runbook(
        tmp_path,
        r"""
        # Output

        ```bash {id: loud}
        printf 'colour: \033[31mred\033[0m\ttab\r\nprogress 50%%\rprogress 100%%\n'
        yes 'line of output, 32 bytes long..' 2>/dev/null | head -c 12000000
        ```
        """,
    )
    journal = tmp_path / "journal.db"
    done = subprocess.run(
        [str(RUNBOOK), "run", "rb.md", "--yes"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        env=environment(tmp_path, RUNBOOK_JOURNAL=str(journal)),
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    printed = b"colour: \x1b[31mred\x1b[0m\ttab\r\nprogress 50%\rprogress 100%\n"
    printed += (b"line of output, 32 bytes long..\n" * 375_000)[:12_000_000]
    assert printed in done.stdout
    db = connect(journal)
    try:
        [run_id] = [row[0] for row in db.execute("SELECT id FROM runs")]
        recorded = "".join(e.text for e in stored_events(db, run_id) if isinstance(e, Output))
    finally:
        db.close()
    assert recorded == printed.decode()
    verify = subprocess.run(
        [str(RUNBOOK), "log", "verify", "--journal", str(journal)],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
