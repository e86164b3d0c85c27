"""The session's hardening seen from `runbook run`: the real CLI, in a pty where it matters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_run import (  # tests/test_run.py: the CLI driven as an operator drives it
    FAILURE_PROMPT,
    Operator,
    environment,
    no_traceback,
    run_unattended,
    write_runbook,
)

RUNBOOK = Path(sys.executable).parent / "runbook"


def journalled_outputs(tmp_path: Path) -> dict[str, str]:
    """Each step's output as the journal holds it, by step id."""
    shown = subprocess.run(
        [str(RUNBOOK), "log", "show", "last", "--format", "json"],
        cwd=tmp_path,
        env=environment(tmp_path, RUNBOOK_JOURNAL=str(tmp_path / "journal.db")),
        capture_output=True,
        text=True,
        check=True,
    )
    steps = json.loads(shown.stdout)["steps"]
    return {
        step["id"]: "".join(attempt.get("output") or "" for attempt in step["attempts"])
        for step in steps
    }


def test_after_the_failure_menus_shell_no_internal_line_is_journalled(tmp_path: Path) -> None:
    """Issue 13, point 4."""
    book = write_runbook(
        tmp_path,
        """
        ---
        title: Clear the cache
        ---
        # Clear the cache

        The purge fails the first time on purpose:

        ```bash {id: purge}
        exit 3
        ```

        ```bash {id: check}
        echo "cache is empty"
        ```
        """,
    )
    op = Operator(tmp_path, book, RUNBOOK_JOURNAL=str(tmp_path / "journal.db"))
    try:
        op.answer_step("r")
        op.expect(FAILURE_PROMPT)
        op.child.send("o")
        op.expect("(runbook purge)")
        op.type_line("exit")
        op.expect(FAILURE_PROMPT)
        op.child.send("c")
        op.answer_step("r")
        op.expect("cache is empty")
        assert op.finish() == 1  # a step failed, on purpose
    finally:
        op.close()
    outputs = journalled_outputs(tmp_path)
    assert outputs["check"] == "cache is empty\n"
    assert "__rb_" not in op.screen


def test_a_runbook_with_shell_sh_runs(tmp_path: Path) -> None:
    book = write_runbook(
        tmp_path,
        """
        ---
        title: Rotate the tokens
        shell: sh
        ---
        # Rotate the tokens

        1. Make the directory:

           ```sh
           mkdir -p tokens && cd tokens
           ```

        2. Rotate:

           ```sh
           echo rotated > "$PWD/current"
           ```
        """,
    )
    result = run_unattended(tmp_path, book, "--yes")
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "tokens" / "current").read_text() == "rotated\n"


def test_a_parameter_with_a_line_break_in_an_expect_answer_runs_nothing(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    book = write_runbook(
        tmp_path,
        """
        ---
        params:
          host: {description: The new host's name}
        ---
        # Register the host

        ```bash {id: register, expect: [{prompt: 'Hostname\\? ', send: '{{ host }}'}]}
        read -r -p 'Hostname? ' name
        echo "registered $name"
        ```

        ```bash {id: after}
        echo "the next step"
        ```
        """,
    )
    result = run_unattended(tmp_path, book, "--yes", "-p", f"host=web1\ntouch {pwned}")
    no_traceback(result)
    assert result.returncode != 0
    assert "line break" in result.stdout + result.stderr
    assert "(did the step end the shell?)" not in result.stdout + result.stderr
    assert not pwned.exists()
