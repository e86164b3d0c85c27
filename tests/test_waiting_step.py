"""No silent waits (issue 13, item 3): a step that asks something without `interactive` or
`expect` is said to be waiting and gets the operator's answer; Ctrl-C says what the next one
does; a killed full-screen step leaves the terminal as it found it. Real CLI in a real pty."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_runbook
from tests.test_run import Operator

FENCE = "```"


def test_a_step_asking_a_question_gets_the_operators_answer(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        f"""# Onboard a user

1. Ask who it is for (the script asks; type the name):

{FENCE}bash
read -p "name? " n
echo "hello, $n" > {tmp_path}/answer
{FENCE}
""",
    )
    operator = Operator(tmp_path, "rb.md")
    try:
        operator.answer_step("r")
        operator.expect("name? ")
        operator.expect("waiting for input")
        operator.type_line("ada")
        assert operator.finish() == 0, operator.screen
    finally:
        operator.close()
    assert (tmp_path / "answer").read_text() == "hello, ada\n"


def test_first_ctrl_c_says_what_the_next_one_does(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        f"""---
title: Drain
---
Drain the queue. The drainer ignores Ctrl-C; press it twice.

{FENCE}bash
trap '' INT; echo draining; sleep 30
{FENCE}
""",
    )
    operator = Operator(tmp_path, "rb.md", "--yes")
    try:
        # The step's own line, not the command shown before it ("echo draining; ..."): a
        # Ctrl-C before the step starts stops the run instead (a race on a busy machine).
        operator.expect("draining\r\n")
        operator.child.sendintr()
        operator.expect("press Ctrl-C again")
        operator.child.sendintr()
        assert operator.finish() != 0
    finally:
        operator.close()
    assert operator.screen.index("press Ctrl-C again") < operator.screen.index("interrupted")


def test_a_killed_full_screen_step_gives_the_terminal_back(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        f"""# Watch the load

$ top-like viewer, stopped after a second:

{FENCE}bash {{timeout: 1s}}
printf '\\033[?1049h\\033[?25l\\033[?2004hwatching'; sleep 30
{FENCE}
""",
    )
    operator = Operator(tmp_path, "rb.md", "--yes")
    try:
        operator.expect("watching")
        operator.finish()
    finally:
        operator.close()
    raw = operator.log.getvalue()
    after = raw[raw.index("watching") :]
    for restore in ("\x1b[?1049l", "\x1b[?25h", "\x1b[?2004l"):
        assert restore in after, repr(after)
