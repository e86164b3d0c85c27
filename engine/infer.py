"""Inference: settings concluded from what a step's commands do, as an engineer reading the
page would conclude them. A destructive command is confirmed as dangerous, a command that needs
the terminal gets it, a command that never ends is a `follow` step, and data in a shell fence is
shown, not run. Each conclusion is recorded on the step with its reason; an annotation of the
same key always wins (`confirm: true` says "I know it is destructive"). Pure.
"""

from __future__ import annotations

from dataclasses import replace

from engine.classify import BlockKind, judge_block
from engine.danger import find_danger, find_statement_danger
from engine.model import Confirm, Inference, Runbook, Step, StepKind
from engine.terminal_use import TerminalUse, terminal_need


def infer_steps(runbook: Runbook) -> Runbook:
    """The runbook with every command step's inferred settings applied and recorded."""
    steps = tuple(infer_step(step) for step in runbook.steps)
    if steps == runbook.steps:
        return runbook
    return replace(runbook, steps=steps)


def infer_step(step: Step) -> Step:
    """One step with what its content implies; unchanged when nothing is implied."""
    if step.kind is not StepKind.COMMAND:
        return step
    found: list[Inference] = []
    shell = step.interpreter is None
    run, confirm, interactive, follow = step.run, step.confirm, step.interactive, step.follow
    text = step.command or step.body  # what runs: a session's prompts and output left out
    if shell and run and not step.annotated("run") and not step.session:
        judged = judge_block(text)
        if judged.kind is BlockKind.DATA:
            found.append(Inference("run", "false", f"it holds {judged.what}", step.body_line))
            run = False
    if run and confirm is not Confirm.DANGER and not step.annotated("confirm"):
        danger = find_danger(text) if shell else find_statement_danger(text)
        if danger:
            line = step.source_line(danger.line)
            reason = f"`{danger.text}` {danger.what} [{danger.rule}]"
            found.append(Inference("confirm", "danger", reason, line))
            confirm = Confirm.DANGER
    need = terminal_need(text) if shell and run else None
    if need and not interactive and not follow and not step.annotated("interactive"):
        line = step.source_line(need.line)
        if need.use is TerminalUse.INTERACTIVE:
            found.append(Inference("interactive", "true", need.reason, line))
            interactive = True
        elif not step.annotated("follow"):
            found.append(Inference("follow", "true", need.reason, line))
            follow = True
    if not found:
        return step
    return replace(
        step,
        run=run,
        confirm=confirm,
        interactive=interactive,
        follow=follow,
        inferred=step.inferred + tuple(found),
    )
