"""A run's parameters as one value: what each is, which are secret, and the one `Masker`
that hides every secret (and secret `expect` answers) wherever the run's texts go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.masking import Masker
from engine.plan import Plan
from engine.templates import SecretValue, TemplateProblem, render_step

SHOWN_SECRET = "<secret>"  # how a secret parameter is shown and recorded: never its value


@dataclass(frozen=True, slots=True)
class Parameters:
    """Parameter values, the names of the secret ones, and their masker (built once)."""

    values: Mapping[str, str]
    secret: frozenset[str] = frozenset()
    masker: Masker = field(default_factory=lambda: Masker({}))

    @classmethod
    def of(cls, plan: Plan, values: Mapping[str, str]) -> Parameters:
        runbook = plan.runbook
        secret = frozenset(p.name for p in runbook.params if p.secret)
        hidden = {k: v for k, v in values.items() if k in secret}
        hidden.update(_secret_answers(plan, {**dict(runbook.env), **values}))
        return cls(MappingProxyType(dict(values)), secret, Masker(hidden))

    def shown(self, names: list[str]) -> dict[str, str]:
        """Each named parameter as shown and recorded: a secret that has a value hidden."""
        return {
            name: SHOWN_SECRET
            if name in self.secret and self.values.get(name)
            else self.values.get(name, "")
            for name in names
        }

    def context(self) -> dict[str, object]:
        """The values for templates: a secret one as a `SecretValue`, inserted by reference."""
        return {
            name: SecretValue(value, name.upper()) if name in self.secret else value
            for name, value in self.values.items()
        }


def _secret_answers(plan: Plan, context: Mapping[str, object]) -> dict[str, str]:
    """`expect` answers marked secret, rendered, so they are masked when a program echoes them."""
    answers = {}
    for step in plan.runbook.steps:
        for number, expect in enumerate(step.expect, 1):
            if expect.secret:
                try:
                    answers[f"{step.id}.expect{number}"] = render_step(
                        "", None, (), ((expect.prompt, expect.send, True),), context
                    ).answers[0][1]
                except TemplateProblem:
                    continue  # it depends on a captured value: preflight reports a real problem
    return answers
