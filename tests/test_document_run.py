"""What the operator sees while a runbook runs (issue 13) and what the run does with the
engine's inferences (issue 12): prose before each step, the parameters and the summary table,
guessed blocks, follow steps, choices between options, commands a manual step offers. The run
loop in-process with a real shell and a scripted operator; the console into a string."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from engine.console.run import RunConsole
from engine.console.terminal import Terminal
from engine.console.text import Text
from engine.events import (
    Answer,
    Output,
    Question,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
)
from engine.parameters import Parameters
from engine.plan import Plan
from engine.run import FOLLOW_STOPPED, Choice, RunOptions, preflight
from engine.shell import ShellSession
from tests.conftest import plan as plan_of
from tests.test_runner import ScriptedUI, run


@pytest.fixture
def session(tmp_path: Path) -> Iterator[ShellSession]:
    shell = ShellSession(cwd=str(tmp_path), env=dict(os.environ, HOME=str(tmp_path)))
    yield shell
    shell.close()


WIKI = """
---
title: Drain a node
description: Move the pods off one node before maintenance.
params:
  node: {default: worker-1}
  token: {secret: true}
---
# Drain a node

Work on **one availability zone at a time**. See [the dashboard](https://grafana.example/d/k8s).

- keep `kubectl` at hand
- if it does not come back within *2 minutes*, kill it hard

```bash {id: cordon}
echo cordon {{ node }}
```

- [x] Checked the [alerts](https://alerts.example) are silenced

```console
$ echo drained
drained
```
"""


def console(plan: Plan, quiet: bool = False) -> tuple[RunConsole, io.StringIO]:
    out = io.StringIO()
    terminal = Terminal(
        Console(file=out, width=120, color_system=None), Console(file=io.StringIO())
    )
    return RunConsole(terminal, plan, False, quiet), out


def lines(out: io.StringIO) -> list[str]:
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_the_prose_before_a_step_is_rendered_markdown() -> None:
    plan = plan_of(WIKI)
    shown, out = console(plan)
    step = plan.runbook.steps[0]
    shown.announce(step, "echo cordon worker-1\n", 1, 3, None)
    text = "\n".join(lines(out))
    assert "Work on one availability zone at a time." in text
    assert "See the dashboard (https://grafana.example/d/k8s)." in text
    assert "• keep kubectl at hand" in text
    assert "**" not in text and "`" not in text
    assert text.rstrip().endswith("echo cordon worker-1")


def test_prose_in_a_list_item_keeps_its_fence_a_fence() -> None:
    text = (
        "# Check\n\n1. Look at it:\n   ```bash\n   echo look\n   ```\n\n"
        "   Expected output:\n\n    ```\n    notAfter=Dec 31 2026\n    ```\n\n"
        "2. Then:\n   ```bash\n   echo then\n   ```\n"
    )
    plan = plan_of(text)
    shown, out = console(plan)
    shown.announce(plan.runbook.steps[1], "echo then\n", 2, 2, None)
    said = lines(out)
    assert "notAfter=Dec 31 2026" in [line.strip() for line in said]
    assert not any("`" in line for line in said)  # a code block, not inline code or text


def test_quiet_hides_the_prose_but_not_the_command() -> None:
    plan = plan_of(WIKI)
    shown, out = console(plan, quiet=True)
    shown.announce(plan.runbook.steps[0], "echo cordon worker-1\n", 1, 3, None)
    text = "\n".join(lines(out))
    assert "availability zone" not in text
    assert "echo cordon worker-1" in text


def test_a_checked_manual_step_is_rendered_not_raw() -> None:
    plan = plan_of(WIKI)
    shown, out = console(plan)
    manual = plan.runbook.steps[1]
    shown.announce(manual, manual.body, 2, 3, None)
    text = "\n".join(lines(out))
    assert "☑" in text and "☐" not in text
    assert "Checked the alerts (https://alerts.example) are silenced" in text
    assert "](" not in text


def test_the_run_opens_with_its_parameters_and_ends_with_every_step() -> None:
    plan = plan_of(WIKI)
    shown, out = console(plan)
    ids = tuple(s.id for s in plan.runbook.steps)
    shown.emit(RunStarted("rb.md", "Drain a node", {"node": "worker-1", "token": "<secret>"}, ids))
    shown.emit(StepStarted(ids[0], 1, "command", command="echo cordon worker-1\n"))
    shown.emit(Output(ids[0], 1, "cordon worker-1\n"))
    shown.emit(StepFinished(ids[0], 1, StepStatus.SUCCEEDED, result=StepResult(0, None, 0.1)))
    shown.emit(StepFinished(ids[1], 1, StepStatus.SKIPPED, note="done by the on-call"))
    shown.emit(RunFinished(RunStatus.SUCCEEDED, message="1 step skipped"))
    text = lines(out)
    assert text[0] == "▶ Drain a node  (3 steps, rb.md)"
    assert "  Move the pods off one node before maintenance." in text
    assert "  node    worker-1" in text
    assert "  token   [secret:token]" in text
    assert any(line.split()[:2] == [ids[0], "succeeded"] for line in text)
    assert any(
        ids[1] in line and "skipped" in line and "done by the on-call" in line for line in text
    )
    assert any(ids[2] in line and "not reached" in line for line in text)
    assert text[-1] == "Run succeeded, 1 step skipped"


def test_a_session_step_shows_the_expected_output_after_its_own(session: ShellSession) -> None:
    plan = plan_of(WIKI)
    shown, out = console(plan)
    step = plan.runbook.steps[2]
    shown.emit(StepFinished(step.id, 1, StepStatus.SUCCEEDED, result=StepResult(0, None, 0.1)))
    text = lines(out)
    assert "  expected (the runbook's example output):" in text
    assert "  drained" in text


def test_an_interrupted_run_says_how_to_resume() -> None:
    shown, out = console(plan_of(WIKI))
    shown.emit(RunFinished(RunStatus.INTERRUPTED, message="interrupted"))
    assert lines(out)[-1] == "Run interrupted: resume it with `runbook resume`"


def test_every_step_is_announced_with_its_command_under_yes_too(session: ShellSession) -> None:
    ui = ScriptedUI()
    values = {"node": "worker-1", "token": "x"}
    status, events = run(plan_of(WIKI), session, ui, RunOptions(assume_yes=True), values)
    assert status is RunStatus.SUCCEEDED
    assert ui.announced[0][:3] == (
        "cordon",
        "echo cordon worker-1\n",
        "1/3",
    )
    assert len(ui.announced) == 3
    final = events[-1]
    assert isinstance(final, RunFinished) and final.message == "1 step skipped"


GUESSED = """
# Clean up

```
ls /
```

```bash {id: after}
echo after
```
"""


def test_yes_skips_a_guessed_block_unless_run_guessed(session: ShellSession) -> None:
    plan = plan_of(GUESSED)
    guessed = plan.runbook.steps[0]
    assert guessed.guessed
    _, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True))
    skipped = [e for e in events if isinstance(e, StepFinished) and e.step == guessed.id]
    assert skipped[0].status is StepStatus.SKIPPED and "--run-guessed" in (skipped[0].reason or "")
    _, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True, run_guessed=True))
    ran = [e for e in events if isinstance(e, StepFinished) and e.step == guessed.id]
    assert ran[0].status is StepStatus.SUCCEEDED


def test_a_guessed_block_is_always_confirmed(session: ShellSession) -> None:
    plan = plan_of(GUESSED.replace("```\nls /", "```text {confirm: false}\nls /"))
    ui = ScriptedUI(Choice.SKIP, Choice.RUN)
    run(plan, session, ui, RunOptions())
    assert ui.asked[0] == ("step", plan.runbook.steps[0].id)


FOLLOW = """
# Tail

```bash {id: watch, timeout: 1s}
tail -f /dev/null
```

```bash {id: next}
echo next
```
"""


def test_a_follow_step_stopped_by_its_timeout_is_done_and_the_run_goes_on(
    session: ShellSession,
) -> None:
    plan = plan_of(FOLLOW)
    assert plan.runbook.steps[0].follow
    status, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True))
    assert status is RunStatus.SUCCEEDED
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert [(e.step, e.status) for e in finished] == [
        ("watch", StepStatus.SUCCEEDED),
        ("next", StepStatus.SUCCEEDED),
    ]
    assert finished[0].reason == FOLLOW_STOPPED and finished[0].result.timed_out


def test_an_unattended_run_refuses_a_follow_step_without_a_timeout() -> None:
    plan = plan_of(FOLLOW.replace(", timeout: 1s", ""))
    problems = preflight(plan, Parameters.of(plan, {}), RunOptions(assume_yes=True))
    assert len(problems) == 1
    assert "step 'watch' is follow (tail -f follows the file until stopped)" in problems[0]
    assert re.match(r"\S+:\d+: step 'watch'", problems[0])


OPTIONS = """
# Recover the cache

### Option 1: restart

```bash {id: restart}
echo restart
```

### Option 2: rebuild

```bash {id: rebuild}
echo rebuild
```

## Check

```bash {id: check}
echo check
```
"""


def test_a_choice_is_asked_once_and_the_other_option_skipped(session: ShellSession) -> None:
    plan = plan_of(OPTIONS)
    ui = ScriptedUI("Option 2: rebuild", Choice.RUN, Choice.RUN)
    status, events = run(plan, session, ui, RunOptions())
    assert status is RunStatus.SUCCEEDED
    assert [kind for kind, _ in ui.asked] == ["branch", "step", "step"]
    answers = [e for e in events if isinstance(e, Answer) and e.question is Question.BRANCH]
    assert [(a.step, a.answer) for a in answers] == [("restart", "Option 2: rebuild")]
    finished = {e.step: e for e in events if isinstance(e, StepFinished)}
    assert finished["restart"].status is StepStatus.SKIPPED
    assert "not taken" in (finished["restart"].reason or "")
    assert finished["rebuild"].status is StepStatus.SUCCEEDED


def test_none_skips_every_option(session: ShellSession) -> None:
    ui = ScriptedUI(None, Choice.RUN)
    _, events = run(plan_of(OPTIONS), session, ui, RunOptions())
    finished = {e.step: e.status for e in events if isinstance(e, StepFinished)}
    assert finished == {
        "restart": StepStatus.SKIPPED,
        "rebuild": StepStatus.SKIPPED,
        "check": StepStatus.SUCCEEDED,
    }


def test_yes_needs_choose_and_choose_picks_case_insensitively(session: ShellSession) -> None:
    plan = plan_of(OPTIONS)
    params = Parameters.of(plan, {})
    problems = preflight(plan, params, RunOptions(assume_yes=True))
    assert len(problems) == 1 and "--choose" in problems[0] and "Option 1: restart" in problems[0]
    options = RunOptions(assume_yes=True, choose=("RESTART",))
    assert preflight(plan, params, options) == []
    _, events = run(plan, session, ScriptedUI(), options)
    finished = {e.step: e.status for e in events if isinstance(e, StepFinished)}
    assert finished["restart"] is StepStatus.SUCCEEDED
    assert finished["rebuild"] is StepStatus.SKIPPED


FALLBACK = """
# Stop it

```bash {id: stop}
echo stopping
```

??? warning "If it will not stop"
    ```bash {id: force}
    echo forced
    ```
"""


def test_an_unattended_run_leaves_a_fallback_out_unless_chosen(session: ShellSession) -> None:
    plan = plan_of(FALLBACK)
    params = Parameters.of(plan, {})
    assert preflight(plan, params, RunOptions(assume_yes=True)) == []
    _, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True))
    finished = {e.step: e.status for e in events if isinstance(e, StepFinished)}
    assert finished == {"stop": StepStatus.SUCCEEDED, "force": StepStatus.SKIPPED}
    options = RunOptions(assume_yes=True, choose=("if it will not stop",))
    _, events = run(plan, session, ScriptedUI(), options)
    finished = {e.step: e.status for e in events if isinstance(e, StepFinished)}
    assert finished["force"] is StepStatus.SUCCEEDED


INFERRED_ROLLBACK = """
# Release 2.0

## Upgrade

```bash
echo upgrading; exit 3
```

## Rollback

```bash
echo rolling back
```

## Troubleshooting

```bash
echo looking around
```
"""


def test_an_inferred_rollback_is_offered_but_never_run_unattended(session: ShellSession) -> None:
    plan = plan_of(INFERRED_ROLLBACK)
    assert plan.runbook.steps[0].on_failure == "rollback"
    assert preflight(plan, Parameters.of(plan, {}), RunOptions(assume_yes=True)) == []
    status, events = run(plan, session, ScriptedUI(), RunOptions(assume_yes=True))
    ran = [e.step for e in events if isinstance(e, StepStarted)]
    assert status is RunStatus.FAILED and ran == ["upgrade-1"]  # no rollback, no troubleshooting
    # With an operator, the failure menu's rollback runs the section.
    status, events = run(
        plan, session, ScriptedUI(Choice.RUN, Choice.ROLLBACK, Choice.RUN), RunOptions()
    )
    ran = [e.step for e in events if isinstance(e, StepStarted)]
    assert ran[:2] == ["upgrade-1", "rollback-1"]


OFFERS = """
# Restart the service

1. Run `echo restarted` on the node
2. Watch the graphs
"""


def test_a_manual_step_runs_the_command_it_offers(session: ShellSession) -> None:
    plan = plan_of(OFFERS)
    step = plan.runbook.steps[0]
    assert step.offers == ("echo restarted",)
    ui = ScriptedUI((Choice.RUN, "echo restarted"))
    status, events = run(plan, session, ui, RunOptions())
    assert status is RunStatus.SUCCEEDED
    started = [e for e in events if isinstance(e, StepStarted)]
    assert [(e.kind, e.attempt, e.command) for e in started] == [
        ("manual", 1, ""),
        ("command", 2, "echo restarted"),
    ]
    output = "".join(e.text for e in events if isinstance(e, Output))
    assert "restarted" in output
    finished = [e for e in events if isinstance(e, StepFinished)]
    assert [(e.attempt, e.status) for e in finished] == [(2, StepStatus.SUCCEEDED)]


def test_an_offered_command_asks_for_its_placeholders(session: ShellSession) -> None:
    # `<path-to-cert>` would be a redirection from a file: it is a parameter, quoted.
    plan = plan_of("# Upload\n\n1. Upload it: `printf '%s|' upload --cert=<path-to-cert>`\n")
    (offer,) = plan.runbook.steps[0].offers
    assert offer == "printf '%s|' upload --cert={{ path_to_cert }}"
    assert [p.name for p in plan.runbook.params] == ["path_to_cert"]
    ui = ScriptedUI((Choice.RUN, offer))
    values = {"path_to_cert": "my cert;.pem"}
    status, events = run(plan, session, ui, RunOptions(), values)
    assert status is RunStatus.SUCCEEDED
    output = "".join(e.text for e in events if isinstance(e, Output))
    assert "upload|--cert=my cert;.pem|" in output
    # The operator is shown (and picks) the command as it runs, with the value in it.
    shown = "printf '%s|' upload --cert='my cert;.pem'"
    status, events = run(plan, session, ScriptedUI((Choice.RUN, shown)), RunOptions(), values)
    assert status is RunStatus.SUCCEEDED
    assert next(a.command for a in events if isinstance(a, Answer)) == shown
    assert "upload|--cert=my cert;.pem|" in "".join(e.text for e in events if isinstance(e, Output))


def test_a_destructive_offer_needs_the_step_id_typed(session: ShellSession, tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    offer = f"rm -rf {tmp_path}/cache"
    plan = plan_of(f"# Clean\n\n1. Clear the cache: `{offer}`\n")
    # Not typed: nothing runs, the answer is recorded, the step is then skipped.
    ui = ScriptedUI((Choice.RUN, offer), Choice.SKIP, (Choice.SKIP, ""))
    _, events = run(plan, session, ui, RunOptions())
    assert (tmp_path / "cache").exists()
    assert [(a.question, a.answer) for a in events if isinstance(a, Answer)][1] == (
        Question.CONFIRM,
        "skip",
    )
    ui = ScriptedUI((Choice.RUN, offer), Choice.RUN)
    status, _ = run(plan, session, ui, RunOptions())
    assert status is RunStatus.SUCCEEDED and not (tmp_path / "cache").exists()


def test_a_rollback_is_announced(session: ShellSession) -> None:
    from tests.test_runner import ROLLBACK

    ui = ScriptedUI()
    run(plan_of(ROLLBACK), session, ui, RunOptions(assume_yes=True))
    assert ("rollback", "rollback", "1", None) in ui.announced
    assert ui.announced[-1][0] == "downgrade" and ui.announced[-1][3] == "rollback"


def test_the_failure_help_offers_no_rollback_when_there_is_none() -> None:
    from engine.shell import Outcome

    plan = plan_of(GUESSED)
    out = io.StringIO()
    keys = iter(["?", "a"])

    class Keys:
        def read_key(self) -> str:
            return next(keys)

        def edit(self, text: str, extension: str) -> str | None:
            return None

    terminal = Terminal(Console(file=out, width=120, color_system=None), None, Keys())
    shown = RunConsole(terminal, plan, True)
    outcome = Outcome(exit_code=1, signal=None, duration=0.1)
    assert shown.ask_failure(plan.runbook.steps[1], outcome, None) is Choice.ABORT
    assert "[b]" not in out.getvalue() and "rollback" not in out.getvalue()
    assert "a abort" in out.getvalue()


def test_prose_with_a_table_goes_to_rich_and_plain_markup_is_rendered_here() -> None:
    from engine.console.run import _markdown

    quick = _markdown(
        "Stop **one** node; see [runbook](https://x.example).\n\n1. first\n2. `second`"
    )
    assert isinstance(quick, Text)
    assert quick.plain == "Stop one node; see runbook (https://x.example).\n\n 1. first\n 2. second"
    assert not isinstance(_markdown("| a | b |\n|---|---|\n| 1 | 2 |"), Text)
    assert _markdown("A snake_case_name and 2*3*4 stay.").plain == (  # type: ignore[union-attr]
        "A snake_case_name and 2*3*4 stay."
    )
