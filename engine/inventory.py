"""Ansible inventories read as they are (INI or YAML), without Ansible: hosts become ssh targets
and groups become groups. Pure: text or loaded YAML in, targets out; a construct that cannot be
honoured is an InventoryError naming its line.

    [web]                                  all:
    web[01:03].example.com                   children:
    db1 ansible_host=10.0.0.5 ansible_port=2222   web:
                                               hosts: {web1.example.com: {ansible_user: ops}}
    [prod:children]
    web

What reaches a host: `ansible_host` (else the name), `ansible_port` and `ansible_user` (with
their `ansible_ssh_*` spellings), from the host's own variables over its groups' (a child group's
over its parent's, `all` last). `ansible_connection` may be ssh, smart, paramiko, local (a
bash here) or docker (`docker exec` into the container). Variables that change how ssh logs in
(passwords, keys, extra arguments) are refused: they belong in the ssh config (`--ssh-config`).
Other variables are the playbooks' own and are ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.model import Target

_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])(?::([0-9]+))?\]")
_GROUP = re.compile(r"^[A-Za-z0-9_][\w.-]*$")
_HOST = re.compile(r"^[A-Za-z0-9_][\w.:%-]*$")  # names, addresses (IPv6 too)
_USER = re.compile(r"^[A-Za-z0-9_][\w.-]*$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][\w.-]*$")
_HEADER = re.compile(r"^\[[\w.-]+(?::\w+)?\]\s*$")
_SECTION = re.compile(r"^\[([^\]:]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_ALIASES = {
    "ansible_ssh_host": "ansible_host",
    "ansible_ssh_port": "ansible_port",
    "ansible_ssh_user": "ansible_user",
    "ansible_ssh_connection": "ansible_connection",
}
# Variables that change how ssh logs in: honoured by the ssh config, never guessed here.
_REFUSED = {
    "ansible_password": "password logins cannot be answered (ssh runs with BatchMode)",
    "ansible_ssh_pass": "password logins cannot be answered (ssh runs with BatchMode)",
    "ansible_ssh_private_key_file": "write IdentityFile in the ssh config (--ssh-config)",
    "ansible_private_key_file": "write IdentityFile in the ssh config (--ssh-config)",
    "ansible_ssh_common_args": "write the options in the ssh config (--ssh-config)",
    "ansible_ssh_extra_args": "write the options in the ssh config (--ssh-config)",
    "ansible_ssh_args": "write the options in the ssh config (--ssh-config)",
}
_CONNECTIONS = ("ssh", "smart", "paramiko", "local", "docker")
_GROUP_KEYS = ("hosts", "children", "vars")


class InventoryError(Exception):
    """A construct of the inventory that is not read, at its (1-based) line."""

    def __init__(self, line: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint


@dataclass(slots=True)
class _Group:
    line: int
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    variables: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (value, line)


@dataclass(slots=True)
class _Inventory:
    """Hosts and groups as read, before they become targets."""

    hosts: dict[str, tuple[int, dict[str, tuple[str, int]]]] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)

    def group(self, name: str, line: int) -> _Group:
        if not _GROUP.match(name):
            raise InventoryError(line, f"'{name}' is not a usable group name")
        return self.groups.setdefault(name, _Group(line))

    def host(self, name: str, line: int, variables: dict[str, tuple[str, int]]) -> None:
        _, known = self.hosts.setdefault(name, (line, {}))
        known.update(variables)


def expand_hosts(pattern: str, line: int) -> list[str]:
    """`web[01:03].example.com` → web01, web02, web03 (numbers keep their width, letters
    a-z, an optional step: `[1:9:2]`); one range per name at most."""
    ranges = list(_RANGE.finditer(pattern))
    if not ranges:
        if "[" in pattern or "]" in pattern:
            raise InventoryError(line, f"host pattern '{pattern}' is not read", _RANGE_HINT)
        return [pattern]
    if len(ranges) > 1:
        raise InventoryError(line, f"host pattern '{pattern}' has more than one range", _RANGE_HINT)
    found = ranges[0]
    first, last, step = found.group(1), found.group(2), int(found.group(3) or 1)
    head, tail = pattern[: found.start()], pattern[found.end() :]
    if first.isdigit() != last.isdigit() or step < 1:
        raise InventoryError(line, f"host range '{found.group(0)}' is not read", _RANGE_HINT)
    if first.isdigit():
        width = len(first) if first.startswith("0") else 0
        values = [f"{n:0{width}d}" for n in range(int(first), int(last) + 1, step)]
    else:
        values = [chr(c) for c in range(ord(first), ord(last) + 1, step)]
    if not values or len(values) > 10000:
        raise InventoryError(line, f"host range '{found.group(0)}' gives {len(values)} hosts")
    return [f"{head}{value}{tail}" for value in values]


_RANGE_HINT = "write a range as [01:20], [a:f] or [1:20:2], one per host name"


def read_ini(text: str) -> tuple[Target, ...]:
    """An Ansible INI inventory: `[group]` host lines with `key=value` variables,
    `[group:children]` group names, `[group:vars]` variables."""
    inventory = _Inventory()
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            section, kind = header.group(1).strip(), header.group(2) or "hosts"
            if kind not in ("hosts", "children", "vars"):
                raise InventoryError(
                    number,
                    f"section [{section}:{kind}] is not read",
                    "sections are [group], [group:children] and [group:vars]",
                )
            inventory.group(section, number)
            continue
        if line.startswith("["):
            raise InventoryError(number, f"'{line}' is not a section header")
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(number, f"cannot read this line: {exc}") from None
        group = inventory.group(section, number)
        if kind == "vars":
            name, equals, value = line.partition("=")
            if not equals or not name.strip():
                raise InventoryError(number, f"expected NAME=VALUE in [{section}:vars]")
            group.variables[name.strip()] = (_unquote(value.strip(), number), number)
        elif kind == "children":
            if len(words) != 1:
                raise InventoryError(number, f"expected one group name in [{section}:children]")
            inventory.group(words[0], number)
            group.children.append(words[0])
        else:
            variables = {}
            for word in words[1:]:
                name, equals, value = word.partition("=")
                if not equals or not name:
                    raise InventoryError(
                        number, f"expected NAME=VALUE after the host, got {word!r}"
                    )
                variables[name] = (value, number)
            for host in expand_hosts(words[0], number):
                inventory.host(host, number, variables)
                group.hosts.append(host)
    return _targets(inventory)


def _unquote(value: str, line: int) -> str:
    """A [group:vars] value: as written, or the text of a quoted one."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            return shlex.split(value)[0]
        except ValueError:
            raise InventoryError(line, f"cannot read the value {value}") from None
    return value


def looks_like_ini(text: str) -> bool:
    """An INI inventory: a line that is a `[group]` header, or a first line that is a host
    followed by `name=value` variables (YAML reads neither as an inventory)."""
    lines = [line.rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line.strip() and line.lstrip()[0] not in "#;"]
    if any(_HEADER.match(line) for line in lines):
        return True
    return bool(lines) and bool(re.match(r"^\S+(\s+\w+=\S*)+$", lines[0]))


def looks_like_ansible_yaml(value: object) -> bool:
    """A YAML inventory in Ansible's shape: top-level groups (usually `all`) made of
    `hosts`, `children` and `vars`."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(
            isinstance(v, dict) and v and set(map(str, v)) <= set(_GROUP_KEYS)
            for v in value.values()
        )
        and any("hosts" in v or "children" in v for v in value.values())
    )


def read_yaml(value: dict[object, object], line_of: Callable[..., int]) -> tuple[Target, ...]:
    """An Ansible YAML inventory; `line_of(*keys)` gives a key's 1-based line."""
    inventory = _Inventory()

    def group(name: str, spec: object, path: tuple[str, ...]) -> None:
        at = line_of(*path)
        found = inventory.group(name, at)
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise InventoryError(at, f"group '{name}' must be a mapping of hosts, children, vars")
        for key, item in spec.items():
            key = str(key)
            where = (*path, key)
            if key not in _GROUP_KEYS:
                raise InventoryError(
                    line_of(*where),
                    f"unknown key '{key}' in group '{name}'",
                    "a group has hosts, children and vars",
                )
            if item is None:
                continue
            if not isinstance(item, dict):
                raise InventoryError(
                    line_of(*where), f"'{key}' of group '{name}' must be a mapping"
                )
            if key == "vars":
                found.variables.update(_variables(item, where, line_of))
            elif key == "hosts":
                for pattern, host_vars in item.items():
                    spot = (*where, str(pattern))
                    if host_vars is not None and not isinstance(host_vars, dict):
                        raise InventoryError(
                            line_of(*spot), f"host '{pattern}' must map variables to values"
                        )
                    variables = _variables(host_vars or {}, spot, line_of)
                    for host in expand_hosts(str(pattern), line_of(*spot)):
                        inventory.host(host, line_of(*spot), variables)
                        found.hosts.append(host)
            else:
                for child, child_spec in item.items():
                    found.children.append(str(child))
                    group(str(child), child_spec, (*where, str(child)))

    for name, spec in value.items():
        group(str(name), spec, (str(name),))
    return _targets(inventory)


def _variables(
    mapping: dict[object, object], path: tuple[str, ...], line_of: Callable[..., int]
) -> dict[str, tuple[str, int]]:
    return {
        str(k): ("" if v is None else str(v), line_of(*path, str(k))) for k, v in mapping.items()
    }


def _targets(inventory: _Inventory) -> tuple[Target, ...]:
    """Each host a target (ssh, or exec for local and docker), each group a group."""
    for name in inventory.groups:
        if name in inventory.hosts:
            line = inventory.groups[name].line
            raise InventoryError(line, f"'{name}' names both a group and a host")
    depth = _depths(inventory)
    targets = []
    for name, (line, own) in inventory.hosts.items():
        if not _HOST.match(name):
            raise InventoryError(line, f"'{name}' is not a usable host name")
        variables: dict[str, tuple[str, int]] = {}
        holding = [g for g in inventory.groups if name in _members(inventory, g)]
        for holder in sorted(holding, key=lambda g: (depth.get(g, 0), g)):
            variables.update(_canonical(inventory.groups[holder].variables))
        variables.update(_canonical(own))
        targets.append(_host_target(name, line, variables))
    for name, group in inventory.groups.items():
        members = tuple(dict.fromkeys([*group.hosts, *group.children]))
        if members and name != "all":
            targets.append(Target(name, group.line, group=members))
    if inventory.hosts:  # `all`, as in Ansible: every host
        line = inventory.groups["all"].line if "all" in inventory.groups else 1
        targets.append(Target("all", line, group=tuple(inventory.hosts)))
    return tuple(targets)


def _members(inventory: _Inventory, group: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every host of a group, through its children (`all`: every host)."""
    if group == "all":
        return set(inventory.hosts)
    found = inventory.groups.get(group)
    if found is None or group in seen:
        return set()
    hosts = set(found.hosts)
    for child in found.children:
        hosts |= _members(inventory, child, seen | {group})
    return hosts


def _depths(inventory: _Inventory) -> dict[str, int]:
    """How far each group is from `all`: a parent's variables are applied before its
    child's. A group that is its own ancestor is an error, as in Ansible."""
    parents: dict[str, list[str]] = {}
    for name, group in inventory.groups.items():
        for child in group.children:
            parents.setdefault(child, []).append(name)
    depth: dict[str, int] = {"all": 0}

    def of(name: str, path: tuple[str, ...]) -> int:
        if name in depth:
            return depth[name]
        if name in path:
            raise InventoryError(
                inventory.groups[name].line,
                "groups contain each other: " + " -> ".join([*path[path.index(name) :], name]),
            )
        found = 1 + max((of(p, (*path, name)) for p in parents.get(name, [])), default=0)
        depth[name] = found
        return found

    for name in inventory.groups:
        of(name, ())
    return depth


def _canonical(variables: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {_ALIASES.get(k, k): v for k, v in variables.items()}


def _host_target(name: str, line: int, variables: dict[str, tuple[str, int]]) -> Target:
    """How to reach a host, from its variables."""
    for key, why in _REFUSED.items():
        if key in variables:
            raise InventoryError(variables[key][1], f"host '{name}': {key} is not read", why)

    def value(key: str) -> tuple[str, int] | None:
        return variables.get(key)

    connection = (value("ansible_connection") or ("ssh", line))[0]
    if connection not in _CONNECTIONS:
        at = variables["ansible_connection"][1]
        raise InventoryError(
            at,
            f"host '{name}': ansible_connection={connection} is not supported",
            "targets are reached by ssh, local or docker",
        )
    address, address_line = value("ansible_host") or (name, line)
    if connection == "local":
        return Target(name, line, exec="env")  # a bash here, as Ansible's local connection
    if connection == "docker":
        if not _CONTAINER.match(address):
            raise InventoryError(address_line, f"host '{name}': '{address}' is not a container")
        return Target(name, line, exec=f"docker exec -i -t {address}")
    if not _HOST.match(address):
        raise InventoryError(address_line, f"host '{name}': '{address}' is not a host address")
    destination = address
    user = value("ansible_user")
    if user is not None:
        if not _USER.match(user[0]):
            raise InventoryError(user[1], f"host '{name}': '{user[0]}' is not a user name")
        destination = f"{user[0]}@{address}"
    port = value("ansible_port")
    if port is not None:
        if not port[0].isdigit() or not 0 < int(port[0]) < 65536:
            raise InventoryError(port[1], f"host '{name}': '{port[0]}' is not a port")
        shown = f"[{address}]" if ":" in address else address
        destination = f"ssh://{user[0] + '@' if user else ''}{shown}:{int(port[0])}"
    return Target(name, line, ssh=destination)
