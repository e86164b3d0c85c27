"""Short labels for what is special about a step (`danger`, `timeout=5m`, `guessed`), the
same on the terminal, in `show` and on the site."""

from __future__ import annotations

from engine.duration import format_duration
from engine.model import Confirm, Step


def step_flags(step: Step) -> list[str]:
    """Short labels for what is special about a step."""
    flags = []
    if step.confirm is Confirm.DANGER:
        flags.append("danger")
    elif step.confirm is Confirm.NO:
        flags.append("no-confirm")
    if not step.run:
        flags.append("display-only")
    if step.timeout:
        flags.append(f"timeout={format_duration(step.timeout)}")
    if step.retries:
        flags.append(f"retries={step.retries}")
    if step.needs:
        flags.append("needs=" + ",".join(step.needs))
    if step.when:
        flags.append(f"when={step.when}")
    if step.on_failure != "abort":
        flags.append(f"on_failure={step.on_failure}")
    if step.session:
        flags.append(f"session={len(step.session)}")  # prompt commands; the rest is output
    if step.interactive:
        flags.append("interactive")
    if step.expect:
        flags.append(f"expect={len(step.expect)}")
    if step.capture:
        flags.append(f"capture={step.capture}")
    if step.interpreter:
        flags.append(f"interpreter={step.interpreter}")
    if step.cwd:
        flags.append(f"cwd={step.cwd}")
    if step.checked:
        flags.append("checked")
    if step.guessed:
        flags.append("guessed")
    if step.follow:
        flags.append("follow")
    if step.branch is not None:
        flags.append(f"option={step.branch.label}")
    if step.offers:
        flags.append(f"offers={len(step.offers)}")
    if step.target is not None:
        flags.append(f"target={step.target}")
    if step.serial is not None:
        flags.append(f"serial={step.serial}")
    elif step.forks is not None:
        flags.append(f"forks={step.forks}")
    return flags
