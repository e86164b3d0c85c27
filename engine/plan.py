"""plan: Runbook (+ parameters) → Plan, the validated step graph. Pure.

Semantics (documented in runbooks/format.md):
- Steps run in document order; `needs` adds edges, and a step never runs before what it needs.
- `on_failure` names abort, continue, ask, or a step or section: the failure handler. Handler
  steps (a rollback section) are left out of the normal flow and run only after a failure.
- Display-only steps (`run: false`) are shown but never run, so nothing may need them.
- A template may read parameters, front-matter env vars, and values captured by steps that
  run before it.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from engine.diagnostics import Diagnostic, DiagnosticSink, did_you_mean
from engine.model import FAILURE_ACTIONS, Param, Runbook, Step, StepKind
from engine.param_types import TYPE_NAMES, typed_value
from engine.regexes import matches, pattern_problem
from engine.targets import is_group, is_template
from engine.templates import (
    NameUse,
    TemplateProblem,
    expression_names,
    literal_templates,
    placement_problems,
    shell_variables,
    template_names,
)


class EdgeKind(StrEnum):
    NEEDS = "needs"
    FAILURE = "on_failure"


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind


@dataclass(frozen=True, slots=True)
class Plan:
    """The runbook's steps in execution order, with failure handlers and graph edges."""

    runbook: Runbook
    order: tuple[str, ...]
    handlers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    edges: tuple[Edge, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def steps(self) -> list[Step]:
        by_id = {s.id: s for s in self.runbook.steps}
        return [by_id[i] for i in self.order]

    def handler(self, target: str) -> tuple[str, ...]:
        return dict(self.handlers).get(target, ())


def plan_runbook(runbook: Runbook) -> Plan:
    """Order and validate a runbook's steps; every problem becomes a diagnostic."""
    sink = DiagnosticSink(runbook.path)
    by_id = {s.id: s for s in runbook.steps}
    index = {s.id: n for n, s in enumerate(runbook.steps)}
    handlers = _failure_handlers(runbook, by_id, sink)
    handler_steps = {i for _, ids in handlers for i in ids}
    edges: list[Edge] = [
        Edge(s.id, target, EdgeKind.FAILURE)
        for s in runbook.steps
        for target in [s.on_failure]
        if target not in FAILURE_ACTIONS and (target in by_id or dict(handlers).get(target))
    ]
    needs: dict[str, list[str]] = {}
    for step in runbook.steps:
        needs[step.id] = _valid_needs(step, by_id, handler_steps, sink)
        edges.extend(Edge(n, step.id, EdgeKind.NEEDS) for n in needs[step.id])

    flow = [s.id for s in runbook.steps if s.run and s.id not in handler_steps]
    order = _topological(flow, needs, index, by_id, sink)
    ordered_handlers = tuple(
        (target, tuple(_topological(list(ids), needs, index, by_id, sink)))
        for target, ids in handlers
    )
    _check_templates(runbook, order, ordered_handlers, sink)
    _check_patterns(runbook, sink)
    _check_targets(runbook, sink)
    return Plan(
        runbook=runbook,
        order=tuple(order),
        handlers=ordered_handlers,
        edges=tuple(edges),
        diagnostics=runbook.diagnostics + tuple(sink.items),
    )


def _check_targets(runbook: Runbook, sink: DiagnosticSink) -> None:
    """Each step's target names one the runbook declares (a template is known only at run
    time); with no `targets:` at all, a name must come from `--inventory`: said, not an error."""
    names = [t.name for t in runbook.targets]
    for step in runbook.steps:
        column = step.column_of("target")
        if step.target is None:
            for key in ("forks", "serial"):
                if getattr(step, key) is not None:
                    sink.warning(
                        step.line,
                        "no-target",
                        f"'{key}' has no effect on a step without a target",
                        column=step.column_of(key),
                    )
            continue
        if step.target in names and is_group(step.target, runbook.targets):
            for key in ("capture", "interactive"):
                if getattr(step, key) and step.annotated(key):
                    sink.error(
                        step.line,
                        "group-step",
                        f"'{key}' needs one host; target '{step.target}' is a group",
                        "give the step a single target, or drop the key",
                        column=step.column_of(key),
                    )
        if step.target_section is None:  # a section's target is checked once, at its heading
            _check_target_name(step.target, names, step.line, column, sink)
    for section in runbook.sections:
        if section.target is not None:
            _check_target_name(section.target, names, section.line, section.annotation_column, sink)


def _check_target_name(
    target: str, names: list[str], line: int, column: int, sink: DiagnosticSink
) -> None:
    """A target's name is declared, or a template (known at run time), or said to be neither."""
    if is_template(target) or target in names:
        return
    if not names:
        sink.warning(
            line,
            "undeclared-target",
            f"target '{target}' is not declared in front matter `targets:`; it must"
            " come from --inventory, or it is taken as an ssh destination",
            column=column,
        )
        return
    sink.error(
        line,
        "unknown-target",
        f"unknown target '{target}'",
        did_you_mean(target, names) or f"declared targets: {', '.join(names)}",
        column=column,
    )


def _failure_handlers(
    runbook: Runbook, by_id: dict[str, Step], sink: DiagnosticSink
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    slugs = {s.slug for s in runbook.sections}
    handlers: dict[str, tuple[str, ...]] = {}
    for step in runbook.steps:
        target = step.on_failure
        if target in FAILURE_ACTIONS or target in handlers:
            continue
        column = step.column_of("on_failure")
        if target in by_id and target in slugs:
            sink.error(
                step.line,
                "ambiguous-target",
                f"on_failure '{target}' is both a step id and a section",
                "rename the step or the section",
                column=column,
            )
        elif target in by_id:
            if target == step.id:
                sink.error(
                    step.line,
                    "bad-target",
                    "a step cannot be its own failure handler",
                    column=column,
                )
            else:
                handlers[target] = (target,)
        elif target in slugs:
            members = _section_steps(runbook, target)
            if step.id in members:
                sink.error(
                    step.line,
                    "bad-target",
                    f"step '{step.id}' is inside its own failure handler section '{target}'",
                    column=column,
                )
            elif not members:
                sink.error(
                    step.line,
                    "bad-target",
                    f"failure handler section '{target}' has no steps",
                    column=column,
                )
            else:
                handlers[target] = members
        else:
            sink.error(
                step.line,
                "unknown-target",
                f"on_failure '{target}' is not abort, continue, ask, a step id or a section",
                did_you_mean(target, [*FAILURE_ACTIONS, *by_id, *slugs]),
                column=column,
            )
    return tuple(handlers.items())


def _section_steps(runbook: Runbook, slug: str) -> tuple[str, ...]:
    """Ids of the steps in a section and in all of its subsections."""
    members = runbook.section_and_below(slug)
    return tuple(s.id for s in runbook.steps if s.section in members)


def _valid_needs(
    step: Step, by_id: dict[str, Step], handler_steps: set[str], sink: DiagnosticSink
) -> list[str]:
    valid = []
    column = step.column_of("needs")
    for need in step.needs:
        other = by_id.get(need)
        if other is None:
            sink.error(
                step.line,
                "unknown-step",
                f"needs '{need}', which is not a step id",
                did_you_mean(need, by_id),
                column=column,
            )
        elif need == step.id:
            sink.error(step.line, "self-need", f"step '{need}' needs itself", column=column)
        elif not other.run:
            sink.error(
                step.line,
                "needs-display-only",
                f"needs '{need}', which is display-only (run: false) and never runs",
                column=column,
            )
        elif need in handler_steps and step.id not in handler_steps:
            sink.error(
                step.line,
                "needs-handler",
                f"needs '{need}', a failure handler step that does not run in the normal flow",
                column=column,
            )
        else:
            valid.append(need)
    return valid


def _topological(
    ids: list[str],
    needs: dict[str, list[str]],
    index: dict[str, int],
    by_id: dict[str, Step],
    sink: DiagnosticSink | None,
) -> list[str]:
    """Document order, moved only as far as `needs` requires (Kahn's algorithm on positions)."""
    members = set(ids)
    waiting = {i: {n for n in needs.get(i, ()) if n in members} for i in ids}
    dependants: dict[str, list[str]] = {i: [] for i in ids}
    for step_id, required in waiting.items():
        for need in required:
            dependants[need].append(step_id)
    ready = [(index[i], i) for i in ids if not waiting[i]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, step_id = heapq.heappop(ready)
        order.append(step_id)
        for dependant in dependants[step_id]:
            waiting[dependant].discard(step_id)
            if not waiting[dependant]:
                heapq.heappush(ready, (index[dependant], dependant))
    if len(order) < len(ids):
        stuck = [i for i in ids if i not in set(order)]
        if sink is not None:
            for cycle in _cycles(stuck, waiting):
                first = by_id[cycle[0]]
                sink.error(
                    first.line,
                    "cycle",
                    "steps need each other in a cycle: " + " -> ".join([*cycle, cycle[0]]),
                    "remove one of these `needs`",
                    column=first.column_of("needs"),
                )
        order.extend(sorted(stuck, key=index.__getitem__))
    return order


def _cycles(stuck: list[str], waiting: dict[str, set[str]]) -> list[list[str]]:
    """Each distinct cycle among the steps Kahn's algorithm could not order."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for start in stuck:
        path, position = [start], {start: 0}
        node = start
        while True:
            nexts = sorted(n for n in waiting[node] if waiting.get(n))
            if not nexts:
                break
            node = nexts[0]
            if node in position:
                cycle = path[position[node] :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(_rotate(cycle))
                break
            position[node] = len(path)
            path.append(node)
    return found


def _rotate(cycle: list[str]) -> list[str]:
    """The cycle in `needs` order (a needs b needs c), starting at its smallest id."""
    smallest = cycle.index(min(cycle))
    return cycle[smallest:] + cycle[:smallest]


def _check_patterns(runbook: Runbook, sink: DiagnosticSink) -> None:
    """Regular expressions from the runbook that would hang a run (exponential backtracking)
    are errors before any step runs; invalid ones are reported where they are read."""
    for param in runbook.params:
        problem = pattern_problem(param.pattern) if param.pattern else None
        if problem and "not a valid" not in problem:
            sink.error(param.line, "slow-pattern", f"'{param.name}': {problem}")
    for step in runbook.steps:
        for expect in step.expect:
            problem = pattern_problem(expect.prompt)
            if problem and "not a valid" not in problem:
                sink.error(expect.line, "slow-pattern", f"step '{step.id}': {problem}")


def _check_templates(
    runbook: Runbook,
    order: list[str],
    handlers: tuple[tuple[str, tuple[str, ...]], ...],
    sink: DiagnosticSink,
) -> None:
    by_id = {s.id: s for s in runbook.steps}
    base = {p.name for p in runbook.params} | {name for name, _ in runbook.env}
    for step in runbook.steps:
        if step.capture and step.capture in base:
            sink.error(
                step.line,
                "capture-name",
                f"capture '{step.capture}' has the name of a parameter or env var",
                column=step.column_of("capture"),
            )
    captured = set(base)
    all_captures = set(base) | {s.capture for s in runbook.steps if s.capture}
    for step_id in order:
        step = by_id[step_id]
        _check_step_templates(step, captured, all_captures, sink)
        if step.capture:
            captured.add(step.capture)
    for target, ids in handlers:
        # A handler runs right after the step that failed: only what was captured before the
        # earliest step naming it is sure to exist, plus what its own steps capture.
        failing = [n for n, i in enumerate(order) if by_id[i].on_failure == target]
        known = set(base) | {
            capture
            for i in order[: min(failing, default=0)]
            if (capture := by_id[i].capture) is not None
        }
        for step_id in ids:
            _check_step_templates(by_id[step_id], known, all_captures, sink)
            if (capture := by_id[step_id].capture) is not None:
                known.add(capture)
    for step in runbook.steps:
        if not step.run:
            _check_step_templates(step, all_captures, all_captures, sink)
    _check_arithmetic_flow(runbook, [by_id[i] for i in order], all_captures, sink)


_ASSIGNED = re.compile(r"\b([A-Za-z_]\w*)=[^\s;&|]*\{\{")
# Where bash may evaluate arithmetic (a superset, read before any parse): $(( )), (( )), for
# (( )), $[ ], an array subscript, -eq and the other tests, let, ${v:offset}, declare -i.
_ARITHMETIC_HINT = re.compile(
    r"\(\(|\$\[|\w\[|-(?:eq|ne|lt|le|gt|ge)\b|\blet\b|\$\{\w+:(?![-=+?])|\b(?:declare|typeset|local|readonly)\b"
)
_SINGLE_QUOTED = re.compile(r"'[^'\n]*'")  # nothing in single quotes is arithmetic (jq's .a[])
_PROBES = ("a", "a[$(id)]", "$(id)", "x[0]", "1+1")


def _check_arithmetic_flow(
    runbook: Runbook, steps: list[Step], names: set[str], sink: DiagnosticSink
) -> None:
    """A variable set from a template in one step and evaluated as arithmetic in a later
    one: `a[$(cmd)]` in the value would run `cmd` there, and no single step's escaping can
    see it. Quiet when every parameter the assignment reads accepts integers only."""
    shell = [s for s in steps if s.kind is StepKind.COMMAND and not s.interpreter]
    # Cheap first: the shell is parsed only where a template may be assigned to a variable
    # and that variable's name appears in a later step.
    candidates = {m.group(1) for s in shell for m in _ASSIGNED.finditer(s.command)}
    if not candidates:
        return
    shell = [s for s in shell if "{{" in s.command or any(c in s.command for c in candidates)]
    # Only a step with some arithmetic can evaluate a variable: none after the steps that
    # assign, no parse at all (most runbooks); the steps after the last such one are not read.
    arithmetic = [
        n
        for n, s in enumerate(shell)
        if n
        and _ARITHMETIC_HINT.search(_SINGLE_QUOTED.sub("''", s.command))
        and any(c in s.command for c in candidates)
    ]
    if not arithmetic:
        return
    shell = shell[: arithmetic[-1] + 1]
    integers = {p.name for p in runbook.params if p.pattern and _integers_only(p.pattern)}
    assigned: dict[str, Step] = {}
    for step in shell:
        set_here, evaluated = shell_variables(step.command, names)
        for variable in sorted(evaluated & assigned.keys() - set_here):
            source = assigned[variable]
            reads = {u.name for u in _safe_names(source.command, names)}
            if reads and reads <= integers:
                continue
            sink.warning(
                step.body_line,
                "arithmetic-variable",
                f"${variable} is set from a template in step '{source.id}' and evaluated as"
                f" arithmetic in step '{step.id}': a value like a[$(cmd)] would run cmd",
                "give the parameter an integer pattern (pattern: '[0-9]+'), or write the"
                " template in the arithmetic itself, where only an integer is accepted",
            )
        for variable in set_here:
            assigned[variable] = step


def _integers_only(pattern: str) -> bool:
    return not any(matches(pattern, probe) for probe in _PROBES)


def _safe_names(body: str, names: set[str]) -> list[NameUse]:
    try:
        return template_names(body, names)
    except TemplateProblem:
        return []


def _check_step_templates(
    step: Step, known: set[str], everything: set[str], sink: DiagnosticSink
) -> None:
    body = step.command or step.body  # what runs: a session's sample output left out
    if step.kind is StepKind.COMMAND and "{{" in body:
        for literal in literal_templates(body, everything):
            sink.info(
                step.source_line(literal.line),
                "literal-template",
                f"{literal.name} is not a Jinja template for this runbook (it names nothing the"
                " runbook defines); it is passed to the command as written",
                "this is right for Go and Helm templates; declare the name under `params:` if"
                " it is a parameter",
                column=step.source_column(literal.line, literal.column),
            )
        language = _language(step.interpreter)
        # In a shell step only `...` and quotes across {% if %} branches can hold no value at
        # all: other steps need no parse here.
        risky = language != "shell" or "`" in body or "{%" in body
        for line, message in placement_problems(body, language, everything) if risky else ():
            sink.error(
                step.source_line(line),
                "template-context",
                message,
                "pass the value through `env:` and read it from the environment",
            )
    texts: list[tuple[str, int, int]] = [(body, 0, 0)]  # line 0: the body's own lines
    texts += [(v, step.line, step.column_of("env")) for _, v in step.env]
    texts += [(e.send, step.line, step.column_of("expect")) for e in step.expect]
    if step.cwd:
        texts.append((step.cwd, step.line, step.column_of("cwd")))
    for text, first_line, fixed_column in texts:
        try:
            uses = template_names(text, everything if text is body else None)
        except TemplateProblem as problem:
            sink.error(
                first_line or step.source_line(problem.line),
                "template",
                problem.message,
                problem.hint,
                column=fixed_column or 1,
            )
            continue
        for use in uses:
            _check_name(
                step,
                use.name,
                first_line or step.source_line(use.line),
                fixed_column or step.source_column(use.line, use.column),
                known,
                everything,
                sink,
            )
    if step.when:
        column = step.column_of("when")
        try:
            uses = expression_names(step.when)
        except TemplateProblem as problem:
            sink.error(step.line, "when", f"'when': {problem.message}", column=column)
            return
        for use in uses:
            _check_name(step, use.name, step.line, column, known, everything, sink)


def _language(interpreter: str | None) -> str:
    if not interpreter:
        return "shell"
    from engine.interpreters import language_of  # only runbooks with interpreter steps

    return language_of(interpreter)


def _check_name(
    step: Step,
    name: str,
    line: int,
    column: int,
    known: set[str],
    everything: set[str],
    sink: DiagnosticSink,
) -> None:
    if name in known:
        return
    if name in everything:
        sink.error(
            line,
            "capture-order",
            f"'{name}' is captured by a step that does not run before step '{step.id}'",
            f"add `needs` on the step that captures '{name}'",
            column=column,
        )
        return
    sink.error(
        line,
        "undefined-name",
        f"'{name}' is not a parameter, env var or captured value",
        did_you_mean(name, everything) or "declare it under `params:` in the front matter",
        column=column,
    )


def implicit_params(runbook: Runbook) -> tuple[Param, ...]:
    """The parameters the text asks for without declaring them (placeholders, unset $VARS)."""
    return tuple(p for p in runbook.params if p.implicit)


def resolve_params(
    runbook: Runbook, given: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """Parameter values from what was given and the defaults: (values, missing, problems).

    Implicit parameters are resolved like declared ones: required, so an unattended run
    without them stops before any step. A value is checked against the parameter's `type`
    and kept as written (an int or float normalised, a bool as true/false).
    """
    declared = {p.name: p for p in runbook.params}
    # `-p NAMESPACE=ops` names the parameter found as $NAMESPACE in the text.
    given = {
        name.lower() if name not in declared and name.lower() in declared else name: value
        for name, value in given.items()
    }
    problems = []
    for name in given:
        if name not in declared:
            hint = did_you_mean(name, declared)
            problems.append(f"unknown parameter '{name}'" + (f"; {hint}" if hint else ""))
    values: dict[str, str] = {}
    missing: list[str] = []
    for param in runbook.params:
        value = given.get(param.name, param.default)
        if value is None:
            if param.required:
                missing.append(param.name)
            else:
                values[param.name] = ""
            continue
        got = "" if param.secret else f", got {value!r}"  # a secret is never echoed
        typed = typed_value(value, param.type)
        if typed is None:
            problems.append(f"'{param.name}' must be a {TYPE_NAMES[param.type]}{got}")
            continue
        value = typed
        if param.choices and value not in param.choices:
            problems.append(f"'{param.name}' must be one of {', '.join(param.choices)}{got}")
        elif param.pattern and not matches(param.pattern, value):
            problems.append(f"'{param.name}' must match {param.pattern!r}{got}")
        values[param.name] = value
    return values, missing, problems
