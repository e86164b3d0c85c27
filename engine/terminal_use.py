"""Which commands need the operator's terminal, and which run until they are stopped.

`interactive` commands (editors, `exec -it` shells, `ssh HOST`, database consoles without a
script, pagers and monitors) get the terminal handed over; `follow` commands (`logs -f`,
`port-forward`, `ssh -N`) stream until Ctrl-C, which then means "done", not "interrupted".
Judged on each simple command's program and options, never on words in strings. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.commands import (
    SimpleCommand,
    after_double_dash,
    option_given,
    positional,
    simple_commands,
)


class TerminalUse(StrEnum):
    INTERACTIVE = "interactive"
    FOLLOW = "follow"


@dataclass(frozen=True, slots=True)
class TerminalNeed:
    """Why a step needs the terminal: the kind, the reason in words, the 1-based line."""

    use: TerminalUse
    reason: str
    line: int


_EDITORS = frozenset({"vi", "vim", "nvim", "nano", "emacs", "pico", "joe", "mcedit", "vimdiff"})
_EDITOR_VARIABLES = frozenset({"$EDITOR", "${EDITOR}", "$VISUAL", "${VISUAL}"})
_SHELLS = frozenset({"bash", "sh", "zsh", "ash", "dash", "fish", "ksh"})
_MONITORS = frozenset(
    {"less", "more", "most", "top", "htop", "atop", "iotop", "iftop", "nmon", "watch", "k9s",
     "tig", "mc", "ncdu", "nmtui", "tmux", "screen", "man", "glances", "btop", "ctop"}
)  # fmt: skip
_REPLS = frozenset({"python", "python3", "python2", "ipython", "node", "irb", "ghci", "lua"})
# Console programs, and the options that give them a script instead of the operator.
_CONSOLES: dict[str, tuple[str, ...]] = {
    "psql": ("-c", "--command", "-f", "--file", "-l", "--list", "--version"),
    "gitlab-psql": ("-c", "--command", "-f", "--file"),
    "mysql": ("-e", "--execute", "--version"),
    "mariadb": ("-e", "--execute"),
    "sqlite3": (),
    "mongo": ("--eval", "--version"),
    "mongosh": ("--eval", "--file", "-f", "--version"),
    "cqlsh": ("-e", "--execute", "-f", "--file"),
    "clickhouse-client": ("-q", "--query", "--queries-file"),
    "influx": ("-execute", "--execute"),
    "sqlplus": (),
}
_CONSOLE_ARGS = frozenset(
    {"-h", "-p", "-U", "-d", "-u", "-P", "--host", "--port", "--user", "--dbname", "-n",
     "-a", "--pass", "--password", "--tls", "-D", "--database"}
)  # fmt: skip
_SSH_VALUE = frozenset(
    {"-b", "-c", "-D", "-E", "-e", "-F", "-I", "-i", "-J", "-L", "-l", "-m", "-O", "-o", "-p",
     "-Q", "-R", "-S", "-W", "-w", "-B"}
)  # fmt: skip
_KUBE_VALUE = frozenset(
    {"-n", "--namespace", "-c", "--container", "--context", "--kubeconfig", "-l", "--selector",
     "--image", "-f", "--filename", "--as", "--cluster", "--user", "-o", "--output"}
)  # fmt: skip
_FOLLOW_LOGS = frozenset({"kubectl", "oc", "docker", "podman", "stern", "nerdctl", "k"})


def terminal_need(text: str) -> TerminalNeed | None:
    """The first command in a shell text that needs the terminal or runs until stopped."""
    follow: TerminalNeed | None = None
    for command in simple_commands(text):
        reason = _interactive(command)
        if reason:
            return TerminalNeed(TerminalUse.INTERACTIVE, reason, command.line)
        reason = _follows(command)
        if reason and follow is None:
            follow = TerminalNeed(TerminalUse.FOLLOW, reason, command.line)
    return follow


def _interactive(command: SimpleCommand) -> str | None:
    name, args = command.name, command.args
    if name in _EDITORS or command.program in _EDITOR_VARIABLES:
        return f"{command.program} is an editor"
    if name in ("crontab", "visudo", "vipw", "vigr"):
        return f"{name} opens an editor" if name != "crontab" or "-e" in args else None
    if name in ("kubectl", "oc", "virsh", "systemctl") and args[:1] == ("edit",):
        return f"{name} edit opens an editor"
    if name == "git" and positional(args, frozenset({"-C", "-c"}))[:1] == ["rebase"]:
        return "git rebase -i opens an editor" if option_given(args, "-i") else None
    if command.stdin_fed or command.piped_out:
        return None  # a console fed from a pipe or file, or read by another program
    if name in _MONITORS and not (name == "top" and option_given(args, "-b")):
        return f"{name} is a full-screen program"
    if name in ("kubectl", "oc", "docker", "podman", "nerdctl", "k"):
        return _exec_shell(command)
    if name == "ssh":
        return _ssh(command)
    if name in _CONSOLES:
        return _console(command)
    if name in _REPLS or name in _SHELLS:
        given = positional(args)
        if not given and not option_given(args, "-c", "-m", "-e", "--eval", "--version"):
            return f"{name} with no script opens a prompt"
        return None
    if name in ("rails", "gitlab-rails", "bin/rails") and positional(args)[:1] in (
        ["console"],
        ["c"],
        ["dbconsole"],
        ["db"],
    ):
        return f"{name} console opens a prompt"
    if name in ("redis-cli", "gitlab-redis-cli"):
        commands = positional(args, frozenset({"-h", "-p", "-a", "-n", "-u", "--user", "--pass"}))
        return None if commands else f"{name} with no command opens a prompt"
    if name == "su" and not option_given(args, "-c", "--command"):
        return "su opens a shell"
    if name == "sudo":  # only a bare `sudo -i` / `sudo -s` is left with sudo as its program
        return "sudo opens a root shell"
    return None


def _exec_shell(command: SimpleCommand) -> str | None:
    verbs = positional(command.args, _KUBE_VALUE)
    if not verbs:
        return None
    verb = verbs[0]
    if verb in ("rsh", "attach") or (verb == "debug" and after_double_dash(command.args) is None):
        return f"{command.name} {verb} opens a shell"
    if verb not in ("exec", "run", "debug"):
        return None
    if not (option_given(command.args, "-t", "--tty") and option_given(command.args, "-i")):
        return None
    inner = after_double_dash(command.args)
    if inner is None and verb == "run":
        inner = tuple(verbs[2:])  # docker run IMAGE COMMAND...
    if not inner:
        return f"{command.name} {verb} -it opens a terminal"
    program = inner[0].rsplit("/", 1)[-1]
    if program in _SHELLS or program in _REPLS or program in _CONSOLES or program in _EDITORS:
        nested = _interactive(SimpleCommand(tuple(inner), command.line))
        if nested or program in _SHELLS:
            return f"{command.name} {verb} -it runs {program} in a terminal"
    return None


def _ssh(command: SimpleCommand) -> str | None:
    if option_given(command.args, "-N", "-W", "-O"):
        return None
    given = positional(command.args, _SSH_VALUE)
    if len(given) <= 1:
        return "ssh with no remote command opens a remote shell"
    remote = " ".join(given[1:])
    nested = [_interactive(c) for c in simple_commands(remote)]
    reason = next((r for r in nested if r), None)
    if reason and option_given(command.args, "-t"):
        return f"ssh -t runs an interactive command ({reason})"
    return None


def _console(command: SimpleCommand) -> str | None:
    scripted = _CONSOLES[command.name]
    if option_given(command.args, *scripted):
        return None
    extra = [a for a in positional(command.args, _CONSOLE_ARGS) if "=" not in a]
    if command.name in ("sqlite3", "sqlplus") and len(extra) > 1:
        return None
    return f"{command.name} with no script opens a prompt"


def _follows(command: SimpleCommand) -> str | None:
    name, args = command.name, command.args
    verbs = positional(args, _KUBE_VALUE)
    if name in _FOLLOW_LOGS and verbs[:1] == ["logs"] and option_given(args, "-f", "--follow"):
        return f"{name} logs -f follows the log until stopped"
    if name == "stern":
        return "stern follows logs until stopped"
    if name in ("kubectl", "oc", "k") and verbs[:1] in (["port-forward"], ["proxy"]):
        return f"{name} {verbs[0]} forwards until stopped"
    if name in ("kubectl", "oc", "k") and option_given(args, "-w", "--watch"):
        return f"{name} --watch watches until stopped"
    if name == "tail" and option_given(args, "-f", "-F", "--follow"):
        return "tail -f follows the file until stopped"
    if name == "journalctl" and option_given(args, "-f", "--follow"):
        return "journalctl -f follows the journal until stopped"
    if name == "ssh" and option_given(args, "-N"):
        return "ssh -N forwards ports until stopped"
    if name in ("socat", "kubefwd"):
        return f"{name} relays until stopped"
    if name in ("nc", "ncat", "netcat") and option_given(args, "-l", "--listen"):
        return f"{name} -l listens until stopped"
    if name == "tcpdump" and not option_given(args, "-c", "-r"):
        return "tcpdump captures until stopped"
    if name == "ping" and not option_given(args, "-c", "-w"):
        return "ping runs until stopped"
    if name in ("docker", "podman") and verbs[:1] == ["stats"] and "--no-stream" not in args:
        return f"{name} stats streams until stopped"
    if name in ("docker", "podman") and verbs[:1] == ["events"]:
        return f"{name} events streams until stopped"
    return None
