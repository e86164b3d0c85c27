"""How a target is reached: the command that gives its shell and the side channel beside it.

SSH is OpenSSH's own client: the operator's config (or `--ssh-config FILE` as `-F`), agents,
jump hosts and known_hosts as they are set. One master connection per host for the whole run
(`ControlMaster`, `ControlPersist`) in a private directory; `BatchMode=yes`, so an unknown or
changed host key, or a password prompt, fails that host's connection instead of waiting. A
directory a killed engine left behind is cleaned by the next run. An exec target
(`kubectl exec -i -t POD --`) runs the same session through its command.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from engine.shell import ShellError

_T = TypeVar("_T")
_HOST_NAME = re.compile(r"^[^-\s][^\s]*$")

# Run by the target's login shell: a bash, or a clear word that there is none.
REMOTE_BASH = (
    "command -v bash >/dev/null 2>&1 || { echo 'runbook: this target has no bash: steps run in"
    " a bash session (remote shells must be bash)' >&2; exit 127; };"
    " exec bash --noprofile --norc --noediting -i"
)


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach one host: the command that gives its shell (with a terminal), and the
    command that runs a program beside the session (no terminal) to stop a step's processes."""

    name: str
    shell: tuple[str, ...]
    side: tuple[str, ...]
    joined: bool = False  # the side command takes one string (ssh's remote command)

    def side_command(self, words: Sequence[str]) -> list[str]:
        """The side channel running `words` on the target."""
        if self.joined:
            return [*self.side, " ".join(shlex.quote(w) for w in words)]
        return [*self.side, *words]


def exec_connection(name: str, words: Sequence[str]) -> Connection:
    """A target reached by an exec command (`kubectl exec -i -t POD --`): the session runs
    `sh -c` through it; the side channel is the same command without its terminal flags."""
    if not words:
        raise ShellError(f"target {name}: the exec command is empty")
    side = []
    for word in words:
        if word in ("-t", "--tty", "--tty=true"):
            continue
        if re.fullmatch(r"-[a-zA-Z]*t[a-zA-Z]*", word) and not word.startswith("--"):
            word = word.replace("t", "")
            if word == "-":
                continue
        side.append(word)
    return Connection(name, (*words, "sh", "-c", REMOTE_BASH), tuple(side))


class SshControl:
    """The run's ssh master connections: one per host, in a private directory, closed at the
    end of the run."""

    def __init__(self, config: str | None = None) -> None:
        self.config = config
        # Found once: pexpect would search $PATH again for each host's session.
        self.program = shutil.which("ssh") or "ssh"
        remove_stale_directories(Path(tempfile.gettempdir()))
        self.directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
        os.chmod(self.directory, 0o700)
        # Its owner, so a later run can tell it was left by an engine that was killed.
        (self.directory / _OWNER).write_text(_process_identity(os.getpid()) or "")
        self._masters: dict[str, Connection] = {}
        self._sockets: dict[str, str] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}

    def options(self, destination: str) -> list[str]:
        """What every ssh command of the run is given: the config, the control socket, and
        batch mode (nothing is asked: no password prompt, no host key accepted silently)."""
        config = ["-F", self.config] if self.config else []
        # A socket per destination as written, not ssh's %C: two aliases of one HostName and
        # port (jump hosts, HostKeyAlias) would share %C, and the second master would lose.
        with self._lock:
            socket = self._sockets.setdefault(destination, f"m{len(self._sockets)}")
        path = f"ControlPath={self.directory}/{socket}"
        return [*config, "-o", path, "-o", "BatchMode=yes"]

    def connect(self, destination: str) -> Connection:
        """The connection to `destination`, its master started on first use. Raises
        ShellError with ssh's own words (refused, host key changed, ...)."""
        if not _HOST_NAME.match(destination):
            raise ShellError(f"{destination!r} is not an ssh destination")
        with self._lock:
            host_lock = self._host_locks.setdefault(destination, threading.Lock())
        with host_lock:
            if destination in self._masters:
                return self._masters[destination]
            log = self.directory / f"master-{secrets.token_hex(4)}.log"
            with open(log, "wb") as errors:
                try:
                    done = subprocess.run(
                        [
                            self.program,
                            *self.options(destination),
                            "-o",
                            "ControlMaster=yes",
                            "-o",
                            # Up while the run's sessions are; gone a minute after the last,
                            # even when the engine was killed and never said `-O exit`.
                            "ControlPersist=60",
                            "-N",
                            "-f",
                            "--",
                            destination,
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=errors,
                        stderr=errors,
                        timeout=120,
                        check=False,
                    )
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise ShellError(f"ssh {destination}: {exc}") from None
            said = log.read_text(errors="replace").strip()
            log.unlink(missing_ok=True)
            if done.returncode != 0:
                raise ShellError(f"ssh {destination}: " + _last_words(said))
            base = [self.program, *self.options(destination), "-o", "ControlMaster=no"]
            connection = Connection(
                destination,
                (*base, "-tt", "--", destination, "exec /bin/sh -c " + shlex.quote(REMOTE_BASH)),
                (*base, "-T", "--", destination),
                joined=True,
            )
            self._masters[destination] = connection
            return connection

    def close(self) -> None:
        """Every master asked to exit (all at once), and the private directory removed."""

        def stop(destination: str) -> None:
            if _terminate_master(self.directory / self._sockets[destination]):
                return
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [self.program, *self.options(destination), "-O", "exit", "--", destination],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=10,
                    check=False,
                )

        _each(stop, list(self._masters))
        self._masters.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


_PREFIX = "rb-ssh-"
_OWNER = "owner"  # in a run's ssh directory: "PID START" of the engine that made it
_UNOWNED_STALE_SECONDS = 3600.0  # a directory made before owners were written


def _process_identity(pid: int) -> str | None:
    """`PID START`: the pid and its start time (a later process may reuse the pid); None
    when there is no such process. Without /proc, `PID -` when the pid is in use."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as found:
            fields = found.read().rsplit(b")", 1)[1].split()
        return f"{pid} {fields[19].decode()}"
    except (OSError, IndexError):
        if os.path.isdir("/proc/self"):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass
    return f"{pid} -"


def remove_stale_directories(root: Path) -> list[Path]:
    """Remove the ssh directories of runs whose engine is gone (killed: kill -9, a lost
    machine), after asking the masters still listening there to exit. Only this user's
    directories; a live engine's are left alone. Returns what was removed."""
    try:
        candidates = [entry for entry in root.iterdir() if entry.name.startswith(_PREFIX)]
    except OSError:
        return []
    removed = []
    for directory in candidates:
        try:
            info = directory.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            owner = (directory / _OWNER).read_text().split()
        except FileNotFoundError:
            owner = []  # made before owners were written, or an instant before its owner
        except OSError:
            continue
        if len(owner) != 2 or not owner[0].isdigit():
            if time.time() - info.st_mtime < _UNOWNED_STALE_SECONDS:
                continue
        elif _process_identity(int(owner[0])) == " ".join(owner):
            continue  # its engine is running
        with contextlib.suppress(OSError):
            for entry in directory.iterdir():
                if entry.is_socket():
                    _terminate_master(entry)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


# OpenSSH's multiplexing protocol (PROTOCOL.mux): a hello, then a request to terminate.
_MUX_HELLO, _MUX_VERSION, _MUX_TERMINATE, _MUX_OK = 0x1, 4, 0x10000005, 0x80000001


def _terminate_master(path: Path) -> bool:
    """Ask the master listening on `path` to exit, as `ssh -O exit` does, without starting an
    ssh client for it (20 hosts: 20 fewer processes at the end of a run). False: not done."""

    def message(*words: int) -> bytes:
        payload = struct.pack(f">{len(words)}I", *words)
        return struct.pack(">I", len(payload)) + payload

    def receive(connection: socket.socket) -> bytes:
        head = connection.recv(4, socket.MSG_WAITALL)
        size = struct.unpack(">I", head)[0] if len(head) == 4 else 0
        return connection.recv(size, socket.MSG_WAITALL) if 0 < size < 65536 else b""

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(10)
            connection.connect(str(path))
            connection.sendall(message(_MUX_HELLO, _MUX_VERSION))
            if receive(connection)[:4] != struct.pack(">I", _MUX_HELLO):
                return False
            connection.sendall(message(_MUX_TERMINATE, 1))
            reply = receive(connection)[:4]  # nothing: the master has already gone
            return reply in (b"", struct.pack(">I", _MUX_OK))
    except (OSError, struct.error):
        return False


def _last_words(text: str) -> str:
    """ssh's message, without the banner of a changed host key: its conclusion first."""
    lines = [line.strip() for line in text.splitlines() if line.strip().strip("@")]
    if not lines:
        return "the connection failed"
    if any("REMOTE HOST IDENTIFICATION HAS CHANGED" in line for line in lines):
        offending = next((line for line in lines if line.startswith("Offending")), "")
        return (
            "the host key has changed (not accepted): "
            + lines[-1]
            + (f" ({offending})" if offending else "")
        )
    return "; ".join(lines[-2:])


def _each(action: Callable[[_T], None], items: Sequence[_T]) -> None:
    """`action` on every item, in parallel: closing 20 hosts one by one takes seconds."""
    if len(items) <= 1:
        for item in items:
            action(item)
        return
    with ThreadPoolExecutor(min(len(items), 32)) as pool:
        list(pool.map(action, items))
