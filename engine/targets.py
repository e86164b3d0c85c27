"""Targets: where a step runs. Read from front matter (`targets:`) or an inventory file, and
resolved to hosts. Pure: plain data in, plain data out.

    targets:
      db1: {ssh: db1.internal}            # an ssh destination, as `ssh` would take it
      web: {group: [web1, web2, web3]}    # a group: targets by name, or ssh destinations
      pod: {exec: "kubectl exec -i -t {{ pod }} --"}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.diagnostics import DiagnosticSink, did_you_mean
from engine.model import Target

TARGET_KEYS = ("ssh", "exec", "group")
DEFAULT_FORKS = 5
MAX_FORKS = 500
_NAME = re.compile(r"^[A-Za-z0-9_][\w.@:-]*$")


@dataclass(frozen=True, slots=True)
class Host:
    """One place a step runs: its name in records and output, and how it is reached (an ssh
    destination, or an exec command's template)."""

    name: str
    ssh: str | None = None
    exec: str | None = None
    line: int = 0


def read_targets(
    value: object, line_of: Callable[..., int], sink: DiagnosticSink
) -> tuple[Target, ...]:
    """The `targets:` mapping checked into targets; `line_of(*path)` gives a key's line."""
    if not isinstance(value, dict):
        sink.error(
            line_of(),
            "front-matter-value",
            "'targets' must map names to {ssh: HOST}, {exec: COMMAND} or {group: [NAMES]}",
        )
        return ()
    found: list[Target] = []
    for raw_name, spec in value.items():
        name = str(raw_name)
        at = line_of(name)
        if not _NAME.match(name):
            sink.error(
                at,
                "target-name",
                f"target name '{name}' is not usable",
                "use letters, digits, '-', '_', '.'",
            )
            continue
        if isinstance(spec, str):  # `db1: db1.internal` is shorthand for an ssh destination
            spec = {"ssh": spec}
        if isinstance(spec, list):  # `web: [web1, web2]` is shorthand for a group
            spec = {"group": spec}
        if not isinstance(spec, dict):
            sink.error(
                at,
                "target-value",
                f"target '{name}' must be {{ssh: ...}}, {{exec: ...}} or {{group: [...]}}",
            )
            continue
        unknown = [str(k) for k in spec if k not in TARGET_KEYS]
        for key in unknown:
            sink.error(
                line_of(name, key),
                "unknown-key",
                f"unknown key '{key}' in target '{name}'",
                did_you_mean(key, TARGET_KEYS),
            )
        given = [k for k in TARGET_KEYS if k in spec]
        if len(given) != 1:
            if not unknown:
                sink.error(
                    at,
                    "target-value",
                    f"target '{name}' needs exactly one of ssh, exec or group",
                )
            continue
        key = given[0]
        item = spec[key]
        if key == "group":
            members = [item] if isinstance(item, str) else item
            if (
                not isinstance(members, list)
                or not members
                or not all(isinstance(m, str | int) and str(m).strip() for m in members)
            ):
                sink.error(
                    line_of(name, key),
                    "target-value",
                    f"target '{name}': 'group' must be a list of names",
                )
                continue
            found.append(Target(name, at, group=tuple(str(m).strip() for m in members)))
        elif not isinstance(item, str) or not item.strip():
            sink.error(line_of(name, key), "target-value", f"target '{name}': '{key}' must be text")
        elif key == "ssh" and (
            item.strip().startswith("-") or any(c.isspace() for c in item.strip())
        ):
            sink.error(
                line_of(name, key),
                "target-value",
                f"target '{name}': {item!r} is not an ssh destination",
                "write [user@]host[:port] or an alias of your ssh config; options go in the config",
            )
        else:
            value = item.strip()
            found.append(
                Target(name, at, ssh=value) if key == "ssh" else Target(name, at, exec=value)
            )
    return tuple(found)


def resolve(name: str, targets: Sequence[Target]) -> tuple[Host, ...]:
    """The hosts a step's target names: a target's own, a group's members (groups nest), or,
    for a name no target has, that name as an ssh destination."""
    by_name = {t.name: t for t in targets}
    hosts: dict[str, Host] = {}

    def expand(current: str, seen: frozenset[str]) -> None:
        target = by_name.get(current)
        if target is None:
            hosts.setdefault(current, Host(current, ssh=current))
        elif target.group:
            for member in target.group:
                if member not in seen:
                    expand(member, seen | {member})
        else:
            hosts.setdefault(current, Host(current, target.ssh, target.exec, target.line))

    expand(name, frozenset({name}))
    return tuple(hosts.values())


def is_group(name: str, targets: Sequence[Target]) -> bool:
    return any(t.name == name and t.group for t in targets)


def is_template(text: str) -> bool:
    """A target given by a template (`{{ pod }}`): known only at run time."""
    return "{{" in text or "{%" in text
