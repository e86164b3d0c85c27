"""The run console in-process: rich writes to a string, and the keyboard is scripted (the
terminal object carries both, so nothing here touches a real terminal)."""

from __future__ import annotations

import io

from rich.console import Console

from engine.console.run import RunConsole
from engine.console.terminal import EditorFailed, Terminal
from engine.events import (
    Answer,
    Question,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepResult,
    StepStatus,
)
from engine.run import Choice
from tests.conftest import plan

RUNBOOK = """
# Deploy

```bash {id: ship, confirm: danger}
./ship
```
"""


class Keys:
    """A keyboard that presses the keys it was given, and an editor that fails or edits."""

    def __init__(self, *keys: str, edited: str | None = None, broken: bool = False) -> None:
        self.keys = list(keys)
        self.edited = edited
        self.broken = broken

    def read_key(self) -> str:
        return self.keys.pop(0)

    def edit(self, text: str, extension: str) -> str | None:
        if self.broken:
            raise EditorFailed("editor 'nano' not found")
        return self.edited


def console(keyboard: Keys) -> tuple[RunConsole, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(
        Console(file=out, width=120, color_system=None),
        Console(file=err, width=120, color_system=None),
        keyboard,
    )
    return RunConsole(terminal, plan(RUNBOOK), True), out, err


def test_an_unknown_key_shows_the_help_and_asks_again() -> None:
    run_console, out, _ = console(Keys("x", "S"))
    step = plan(RUNBOOK).runbook.steps[0]
    run_console.announce(step, "./ship\n", 1, 1, None)
    assert run_console.ask_step(step, "./ship\n", 1, 1) is Choice.SKIP
    shown = out.getvalue()
    assert "[1/1] Deploy > ship  danger" in shown
    assert "r/Enter run the command" in shown


def test_the_editor_is_the_keyboards() -> None:
    run_console, _, err = console(Keys(edited="./ship --dry-run\n"))
    assert run_console.edit_command("./ship\n") == "./ship --dry-run\n"
    run_console, _, err = console(Keys(broken=True))
    assert run_console.edit_command("./ship\n") is None
    assert "runbook: error: editor 'nano' not found" in err.getvalue()


def test_events_are_shown_as_they_come() -> None:
    run_console, out, _ = console(Keys())
    run_console.emit(RunStarted("rb.md", "Deploy", {}, ("ship",)))
    run_console.emit(Answer("ship", 1, Question.EXPECT, "[secret]", pattern="Token:"))
    run_console.emit(StepFinished("ship", 1, StepStatus.FAILED, result=StepResult(3, None, 0.25)))
    run_console.emit(StepFinished("ship", 0, StepStatus.SKIPPED, reason="operator"))
    run_console.emit(RunFinished(RunStatus.FAILED, ("ship",), "step 'ship' failed"))
    assert [line.rstrip() for line in out.getvalue().splitlines()] == [
        "▶ Deploy  (1 step, rb.md)",
        "  ↳ answered /Token:/ with [secret]",
        "  ✗ ship failed: exit status 3 in 250ms",
        "  ↷ ship skipped (operator)",
        "",
        "  step   status    why",
        "  ship   skipped   operator",
        "Run failed: step 'ship' failed",
    ]
