"""The table of destructive commands: which program and verb destroy or stop something.

A step that matches a rule is confirmed as dangerous at run time unless its annotation says
otherwise (`confirm: true` means "I know"); `check` names the rule. Rules look at a command's
program and arguments (`rm -r`, `kubectl delete`), or, for SQL and key-value stores whose
statements sit inside strings and here-documents, at the statement text. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from engine.commands import SimpleCommand, option_given, positional, simple_commands


@dataclass(frozen=True, slots=True)
class DangerRule:
    """One kind of destructive command: a stable name, what it destroys, how to spot it."""

    name: str
    what: str
    programs: frozenset[str]
    matches: Callable[[SimpleCommand], bool]


@dataclass(frozen=True, slots=True)
class DangerMatch:
    """A rule that matched, at a 1-based line of the text, with the words that matched."""

    rule: str
    what: str
    line: int
    text: str


_KUBE_VERBS = frozenset({"delete", "drain", "cordon", "taint", "replace"})
_SAFE_DEVICES = ("/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty")
_CLOUD = frozenset(
    {"aws", "gcloud", "az", "doctl", "hcloud", "linode-cli", "openstack", "ibmcloud"}
)
_CLOUD_VERB = re.compile(
    r"^(delete|remove|rm|rb|terminate|destroy|deregister|purge|detach|revoke)([-_].*)?$"
)


def _verbs(command: SimpleCommand, *skip_options: str) -> list[str]:
    return positional(command.args, frozenset(skip_options))


def _kube(command: SimpleCommand) -> bool:
    if command.name not in ("kubectl", "oc", "k"):
        return False
    verbs = _verbs(command, "-n", "--namespace", "--context", "-l", "--selector", "-o")
    if not verbs:
        return False
    if verbs[0] == "adm":
        return len(verbs) > 1 and verbs[1] in ("drain", "cordon", "taint", "prune")
    if verbs[0] == "scale":
        return any(a in ("--replicas=0", "--replicas") for a in command.args) and (
            "--replicas=0" in command.args or _after(command.args, "--replicas") == "0"
        )
    if verbs[0] == "rollout":
        return len(verbs) > 1 and verbs[1] == "undo"
    return verbs[0] in _KUBE_VERBS


def _after(args: tuple[str, ...], option: str) -> str | None:
    return args[args.index(option) + 1] if option in args[:-1] else None


def _rm(command: SimpleCommand) -> bool:
    return command.name == "rm" and option_given(command.args, "-r", "-R", "--recursive")


def _dd(command: SimpleCommand) -> bool:
    if command.name != "dd":
        return False
    targets = [a[3:] for a in command.args if a.startswith("of=")]
    return any(t.startswith("/dev/") and not t.startswith(_SAFE_DEVICES) for t in targets)


def _git(command: SimpleCommand) -> bool:
    if command.name != "git":
        return False
    verbs = _verbs(command, "-C", "-c")
    if not verbs:
        return False
    if verbs[0] == "push":
        return option_given(command.args, "-f", "--force", "--force-with-lease", "--mirror") or any(
            v.startswith(":") or v.startswith("+") for v in verbs[1:]
        )
    if verbs[0] == "reset":
        return "--hard" in command.args
    if verbs[0] == "clean":
        return option_given(command.args, "-f", "--force")
    if verbs[0] == "branch":
        return option_given(command.args, "-D") or (
            option_given(command.args, "-d", "--delete") and option_given(command.args, "-f")
        )
    return False


def _service(command: SimpleCommand) -> bool:
    verbs = _verbs(command, "-H", "--host", "-M", "--machine")
    if command.name == "systemctl":
        return bool(verbs) and verbs[0] in (
            "stop", "disable", "mask", "kill", "poweroff", "reboot", "halt", "isolate",
        )  # fmt: skip
    if command.name == "service":
        return len(verbs) > 1 and verbs[1] == "stop"
    if command.name in ("gitlab-ctl", "supervisorctl", "pm2"):
        return bool(verbs) and verbs[0] in ("stop", "kill", "cleanse", "uninstall", "remove")
    if command.name == "virtctl":
        return bool(verbs) and verbs[0] in ("stop", "restart", "pause", "migrate")
    return command.name in ("reboot", "shutdown", "poweroff", "halt")


def _packages(command: SimpleCommand) -> bool:
    verbs = _verbs(command)
    if command.name in ("apt-get", "apt", "aptitude", "yum", "dnf", "zypper"):
        return bool(verbs) and verbs[0] in ("remove", "purge", "autoremove", "erase")
    if command.name in ("pip", "pip3", "npm", "gem"):
        return bool(verbs) and verbs[0] == "uninstall"
    return False


def _orchestration(command: SimpleCommand) -> bool:
    verbs = _verbs(command, "-n", "--namespace", "--kube-context", "-chdir")
    if command.name == "helm":
        return bool(verbs) and verbs[0] in ("uninstall", "delete", "rollback", "del")
    if command.name in ("terraform", "tofu", "terragrunt"):
        if verbs and verbs[0] == "destroy":
            return True
        return (
            bool(verbs)
            and verbs[0] == "apply"
            and (
                "-auto-approve" in command.args
                or "--auto-approve" in command.args
                or "-destroy" in command.args
            )
        )
    if command.name == "knife":
        return len(verbs) > 1 and verbs[1] in ("delete", "bulk")
    if command.name in ("docker", "podman", "nerdctl"):
        return _containers(verbs, command)
    if command.name in ("docker-compose",):
        return bool(verbs) and (verbs[0] == "rm" or (verbs[0] == "down" and "-v" in command.args))
    return False


def _containers(verbs: list[str], command: SimpleCommand) -> bool:
    if not verbs:
        return False
    if verbs[0] in ("rm", "rmi", "kill"):
        return True
    if verbs[0] in ("system", "volume", "image", "network", "container") and len(verbs) > 1:
        return verbs[1] in ("prune", "rm")
    if verbs[0] == "compose" and len(verbs) > 1:
        return verbs[1] == "rm" or (verbs[1] == "down" and option_given(command.args, "-v"))
    return False


def _cloud(command: SimpleCommand) -> bool:
    if command.name not in _CLOUD:
        return False
    verbs = _verbs(command, "--region", "--profile", "--project", "-g", "--resource-group")
    return any(_CLOUD_VERB.match(v) for v in verbs[1:4])


def _disks(command: SimpleCommand) -> bool:
    name = command.name
    if name.startswith("mkfs") or name in ("wipefs", "shred", "blkdiscard", "sgdisk"):
        return name != "sgdisk" or option_given(command.args, "--zap-all", "-Z", "--delete", "-d")
    if name in ("lvremove", "vgremove", "pvremove"):
        return True
    if name in ("zpool", "zfs"):
        return bool(command.args) and command.args[0] == "destroy"
    if name in ("iptables", "ip6tables", "nft"):
        return option_given(command.args, "-F", "--flush") or "flush" in command.args
    return False


def _stores(command: SimpleCommand) -> bool:
    verbs = _verbs(command, "--endpoints", "-address", "-h", "-p", "-n")
    if command.name in ("dropdb", "dropuser"):
        return True
    if command.name == "etcdctl":
        return bool(verbs) and verbs[0] == "del"
    if command.name in ("consul", "vault"):
        return len(verbs) > 1 and verbs[0] == "kv" and verbs[1] in ("delete", "destroy")
    return False


def _database_nodes(command: SimpleCommand) -> bool:
    verbs = _verbs(command, "-c", "--config-file", "-D", "--pgdata", "-f", "-h", "-p")
    if command.name == "patronictl":
        return bool(verbs) and verbs[0] in ("failover", "switchover", "remove", "reinit", "restart")
    if command.name == "pg_ctl":
        return bool(verbs) and verbs[0] in ("stop", "promote", "kill")
    if command.name == "pg_ctlcluster":
        return len(verbs) > 2 and verbs[2] in ("stop", "promote")
    if command.name == "repmgr":
        return len(verbs) > 1 and verbs[1] in ("promote", "switchover", "unregister")
    if command.name == "nodetool":
        return bool(verbs) and verbs[0] in ("decommission", "removenode", "drain", "stopdaemon")
    return False


def _programs(words: str) -> frozenset[str]:
    return frozenset(words.split())


RULES: tuple[DangerRule, ...] = (
    DangerRule(
        "kube-delete",
        "deletes, drains or cordons cluster objects",
        _programs("kubectl oc k"),
        _kube,
    ),
    DangerRule("rm-recursive", "removes files recursively", _programs("rm"), _rm),
    DangerRule("dd-device", "writes over a block device", _programs("dd"), _dd),
    DangerRule("git-rewrite", "rewrites or discards git history", _programs("git"), _git),
    DangerRule(
        "stop-service",
        "stops, disables or reboots a service or a machine",
        _programs(
            "systemctl service gitlab-ctl supervisorctl pm2 virtctl reboot shutdown poweroff halt"
        ),
        _service,
    ),
    DangerRule(
        "remove-package",
        "removes installed packages",
        _programs("apt-get apt aptitude yum dnf zypper pip pip3 npm gem"),
        _packages,
    ),
    DangerRule(
        "destroy-release",
        "destroys or rolls back deployed infrastructure",
        _programs("helm terraform tofu terragrunt knife docker podman nerdctl docker-compose"),
        _orchestration,
    ),
    DangerRule("cloud-delete", "deletes cloud resources", _CLOUD, _cloud),
    DangerRule(
        "wipe-disk",
        "formats or wipes a disk, or flushes firewall rules",
        _programs(
            "mkfs wipefs shred blkdiscard sgdisk lvremove vgremove pvremove zpool zfs iptables "
            "ip6tables nft"
        ),
        _disks,
    ),
    DangerRule(
        "database-node",
        "fails over, stops or removes a database node",
        _programs("patronictl pg_ctl pg_ctlcluster repmgr nodetool"),
        _database_nodes,
    ),
    DangerRule(
        "drop-store",
        "deletes a database or keys",
        _programs("dropdb dropuser etcdctl consul vault"),
        _stores,
    ),
)
_RULES_BY_PROGRAM: dict[str, tuple[DangerRule, ...]] = {
    program: tuple(r for r in RULES if program in r.programs)
    for program in frozenset().union(*(r.programs for r in RULES))
}
_STATEMENT_WORDS = re.compile(r"\b(?:DROP|TRUNCATE|DELETE|FLUSH\w+)\b|_backend|dropDatabase", re.I)

_SQL = (
    ("sql-drop", "drops a database object", re.compile(
        r"\bDROP\s+(TABLE|DATABASE|SCHEMA|INDEX|VIEW|USER|ROLE|OWNED|EXTENSION|TABLESPACE)\b",
        re.I)),
    ("sql-truncate", "empties a table", re.compile(r"\bTRUNCATE\s+(TABLE\s+)?[\w.\"]+", re.I)),
    ("sql-delete-all", "deletes every row of a table", re.compile(
        r"\bDELETE\s+FROM\s+[\w.\"]+\s*(;|\"|'|\)|$)", re.I | re.M)),
    ("sql-terminate", "terminates database sessions", re.compile(
        r"\bpg_(terminate|cancel)_backend\b", re.I)),
    ("kv-flush", "flushes a key-value store", re.compile(
        r"\b(FLUSHALL|FLUSHDB)\b|\bdropDatabase\s*\(", re.I)),
)  # fmt: skip


def find_danger(text: str) -> DangerMatch | None:
    """The first destructive command in a shell text, or None."""
    for command in simple_commands(text):
        for rule in _RULES_BY_PROGRAM.get(command.name.split(".", 1)[0], ()):
            if rule.matches(command):
                return DangerMatch(rule.name, rule.what, command.line, " ".join(command.words))
    return find_statement_danger(text)


def find_statement_danger(text: str) -> DangerMatch | None:
    """The first destructive SQL or key-value statement in any text (an SQL step, a `psql -c`
    string, a here-document), or None."""
    if not _STATEMENT_WORDS.search(text):
        return None
    for name, what, pattern in _SQL:
        match = pattern.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            return DangerMatch(name, what, line, match.group(0).strip())
    return None
