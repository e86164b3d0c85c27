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
from engine.model import Branch, Confirm, Inference, Runbook, Section, Step, StepKind
from engine.terminal_use import TerminalUse, terminal_need
from engine.titles import is_reference, is_rollback


def infer_steps(runbook: Runbook) -> Runbook:
    """The runbook with every command step's inferred settings applied and recorded."""
    steps = _rollback_handler(runbook, tuple(infer_step(step) for step in runbook.steps))
    steps = _reference_sections(runbook, steps)
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


def _rollback_handler(runbook: Runbook, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """A wiki page's "Rollback" section is what to run when a step before it fails, never the
    next steps after a success: the command steps before it that say nothing else get it as
    their `on_failure`, so it leaves the normal flow. Only one such section, named by no
    step, with steps of its own and after at least one command."""
    named = {step.on_failure for step in steps}
    found = [s for s in runbook.sections if is_rollback(s.title) and s.slug not in named]
    if len(found) != 1:
        return steps
    section = found[0]
    members = runbook.section_and_below(section.slug)
    if not any(step.section in members for step in steps):
        return steps
    if not any(step.line < section.line for step in steps):
        return steps  # the page is the rollback ("# Roll back a release"): its steps are the flow
    reason = f"the '{section.title}' section is what to run if it fails"
    inferred = Inference("on_failure", section.slug, reason, section.line)
    before = [
        step
        for step in steps
        if step.kind is StepKind.COMMAND
        and step.line < section.line
        and step.on_failure == "abort"
        and not step.annotated("on_failure")
    ]
    if not before:
        # Only manual steps before it (a numbered procedure): the section is offered as an
        # option the operator takes or not, and an unattended run leaves it out.
        return tuple(
            _as_option(step, section) if step.section in members else step for step in steps
        )
    chosen = {step.id for step in before}
    return tuple(
        replace(step, on_failure=section.slug, inferred=(*step.inferred, inferred))
        if step.id in chosen
        else step
        for step in steps
    )


def _reference_sections(runbook: Runbook, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Steps under "Troubleshooting", "Appendix", "Useful commands", ... are each section's
    one option, taken when the operator asks (an unattended run leaves them out), so a run
    does not follow the logs, open a shell in a pod or port-forward because a page lists how."""
    optional = [s for s in runbook.sections if is_reference(s.title)]
    if not optional or not any(step.line < optional[0].line for step in steps):
        return steps  # a page that is all reference (a cheat sheet) runs as written
    section_of: dict[str, Section] = {}
    for section in optional:
        for slug in runbook.section_and_below(section.slug):
            section_of.setdefault(slug, section)
    return tuple(
        _as_option(step, section_of[step.section]) if step.section in section_of else step
        for step in steps
    )


def _as_option(step: Step, section: Section) -> Step:
    """The step as the one option of its section's own choice, unless it is already an
    option or a failure handler's (which runs only after a failure anyway)."""
    if step.branch is not None or step.on_failure != "abort":
        return step
    return replace(step, branch=Branch(f"{section.slug}-if", section.title, section.line))
