"""Sessions on other machines: the same bash session protocol through a command that gives a
shell (`ssh -tt HOST`, `kubectl exec -i -t POD --`, `docker exec -it C`, `sudo -iu USER`).

The local session reads its commands from a FIFO and finds a step's processes in /proc; neither
reaches another machine. Here the commands are typed into the session's terminal (echo off):
the step's text (and its launcher, when a value is not plain printable ASCII) is written to a
file by builtins, as $'...' strings in which every byte but plain printable ASCII is an
escape, so no byte of a step can act as a terminal's control character, and no typed line
comes near the 4095-byte limit of a terminal's line.
Stopping a step's processes (a timeout, the second Ctrl-C) runs a small bash script on the
target over a side channel (ssh's master connection, or the exec command again without a
terminal): it signals every process that carries the step's tag and every descendant of the
session's shell, as the local reaper does from /proc.

How a host is reached (ssh's master connections, exec commands) is engine/connections.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pexpect

from engine import reaper
from engine.connections import Connection, SshControl, _each, exec_connection
from engine.events import SessionState
from engine.shell import (
    _FILE_ARGUMENT,
    _FUNCTION,
    _NOT_CARRIED,
    _PRELUDE,
    _START_SECONDS,
    Outcome,
    ShellError,
    ShellSession,
    StepIO,
    _changed_variables,
    _entries,
    _InputWatch,
    _parse_dump,
    check_answers,
    may_change_state,
)

# A step's processes on the target, in `pids`, parents before their children: every
# descendant of the session's shell ($3) and every process carrying the step's tag ($2).
_STEP_PROCESSES = r"""
tag=$2 top=$3
declare -A parent
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = "$$" ] && continue
  read -r st < "$d/stat" 2>/dev/null || continue
  st=${st##*) }
  set -- $st
  [ "$1" = Z ] && continue
  parent[$p]=$2
done
declare -A level
deepest=0
for p in "${!parent[@]}"; do
  q=${parent[$p]} k=0
  while [ -n "$q" ] && [ "$q" != 0 ] && [ "$k" -lt 64 ]; do
    if [ "$q" = "$top" ]; then level[$p]=$k; [ "$k" -gt "$deepest" ] && deepest=$k; break; fi
    q=${parent[$q]} k=$((k + 1))
  done
done
pids=()
for ((d = 0; d <= deepest; d++)); do
  for p in "${!level[@]}"; do [ "${level[$p]}" = "$d" ] && pids+=("$p"); done
done
for f in $(grep -lzx "RUNBOOK_STEP_TAG=$tag" /proc/[0-9]*/environ 2>/dev/null); do
  f=${f#/proc/}; f=${f%/environ}
  [ -n "${parent[$f]}" ] && [ -z "${level[$f]}" ] && pids+=("$f")
done
"""
# Signals a step's processes on the target: $1 the signal (0 only counts), $2 the step's tag,
# $3 the session shell's pid. Parents first: a step's shell is gone before the command it
# waits for, so it never runs its next command in between. Prints how many there were.
_REAPER = (
    "sig=$1\n"
    + _STEP_PROCESSES
    + r"""[ "${#pids[@]}" -gt 0 ] && kill -"$sig" "${pids[@]}" 2>/dev/null
echo "${#pids[@]}"
"""
)
# Whether a step's process on the target is blocked reading a terminal (its system call and
# the file it reads, else the kernel function it sleeps in and its input): prints yes or no.
_WAITING = (
    _STEP_PROCESSES
    + r"""case $HOSTTYPE in
  x86_64) reads=" 0 17 19 7 23 270 271 " ;;
  aarch64) reads=" 63 65 67 72 73 " ;;
  *) reads="" ;;
esac
for p in "${pids[@]}"; do
  words=
  read -r words < "/proc/$p/syscall" 2>/dev/null
  set -- $words
  if [ -n "$1" ] && [ "$1" != running ] && [ "$1" -ge 0 ] 2>/dev/null; then
    [[ $reads == *" $1 "* ]] || continue
    input=$(readlink "/proc/$p/fd/$((16#${2#0x}))" 2>/dev/null)
  else
    read -r where < "/proc/$p/wchan" 2>/dev/null
    case $where in n_tty_read|wait_woken) ;; *) continue ;; esac
    input=$(readlink "/proc/$p/fd/0" 2>/dev/null)
  fi
  case $input in /dev/pts/*|/dev/tty*) echo yes; exit 0 ;; esac
done
echo no
"""
)
# The state a step saved, printed after a delimiter (the engine cannot read the target's
# file): only the variables that differ from the session's start (`__rb_base` keeps the
# start's lines on the target), never the engine's own; `__rb_show` keeps the step's status.
_STATE_FUNCTIONS = r"""
__rb_base() {
  local __rb_l __rb_x; declare -gA __rb_seen=()
  builtin mapfile -t __rb_l 2>/dev/null < "$__rb_state"
  for __rb_x in "${__rb_l[@]}"; do
    [ "$__rb_x" = '#rb-functions' ] && break
    [ -n "$__rb_x" ] && __rb_seen[$__rb_x]=1
  done
  : > "$__rb_state"
}
__rb_show() {
  local __rb_l __rb_x __rb_v=1
  builtin mapfile -t __rb_l 2>/dev/null < "$__rb_state"
  builtin printf '\036RBSTOKEN\036'
  for __rb_x in "${__rb_l[@]}"; do
    [ "$__rb_x" = '#rb-functions' ] && __rb_v=
    if [ -n "$__rb_v" ]; then
      [ -n "$__rb_x" ] && [ -n "${__rb_seen[$__rb_x]+1}" ] && continue
      [[ $__rb_x == "declare -"*" __rb_"* ]] && continue
    fi
    builtin printf '%s\n' "$__rb_x"
  done
  return $1
}
"""
# A quiet step on a target is asked about after this, then half as often each time, down to
# once every _ASK_LAST seconds.
_ASK_FIRST, _ASK_LAST = 0.5, 8.0
_PID = re.compile(rb"RBPID:(\d+):")


# Bytes typed as themselves inside $'...'; every other is written \xHH: no control character,
# quote, backslash or `!` (history expansion) reaches the terminal or the shell's parser.
_SAFE = frozenset(range(0x20, 0x7F)) - {ord("'"), ord("\\"), ord("!")}
_ESCAPES = {b: f"\\x{b:02x}" for b in range(256) if b not in _SAFE}  # for str.translate
_LINE = 1000  # characters per typed line: far below a terminal's 4095-byte line limit
# A launcher typed as it is: printable ASCII only (values are shell-quoted), one short line.
_PLAIN = re.compile(rf"[ -~]{{0,{_LINE}}}")


def _pieces(text: str) -> list[str]:
    """`text` escaped for $'...', in pieces of at most _LINE characters, no escape cut in two
    (a backslash only ever starts an escape)."""
    escaped = text.encode().decode("latin-1").translate(_ESCAPES)
    pieces = []
    while len(escaped) > _LINE:
        back = escaped.rfind("\\", _LINE - 3, _LINE)
        cut = back if back >= 0 else _LINE
        pieces.append(escaped[:cut])
        escaped = escaped[cut:]
    pieces.append(escaped)
    return pieces


def _files(files: Sequence[tuple[str, str]]) -> str:
    """A command that writes files of the session's directory with builtins only (no fork):
    each text typed as $'...' pieces, a line each, inside one brace group (read whole before it
    runs, so one marker ends it), ending in `; ` for the rest of the command line."""
    lines = []
    for name, text in files:
        pieces = _pieces(text)
        lines.append(f"__rb_f=$'{pieces[0]}'")
        lines += [f"__rb_f+=$'{piece}'" for piece in pieces[1:]]
        lines.append(f'builtin printf %s "$__rb_f" > "$__rb_dir"/{name}')
    return "{ " + "\n".join(lines) + "; builtin unset -v __rb_f; }; "


@dataclass(frozen=True, slots=True)
class _CommandMarker:
    """The end of command `seq` in the output: markers of earlier commands are passed over.
    The session's one compiled pattern, not a pattern compiled per step (0.4 ms each)."""

    pattern: re.Pattern[bytes]
    seq: bytes

    def search(self, data: bytes) -> re.Match[bytes] | None:
        return next((m for m in self.pattern.finditer(data) if m.group(2) == self.seq), None)


class RemoteSession(ShellSession):
    """A bash session on a target, driven by the same protocol as the local one."""

    def __init__(
        self,
        connection: Connection,
        dimensions: tuple[int, int] = (24, 80),
        kill_grace: float = 2.0,
        secret_variables: tuple[str, ...] = (),
        exports: Mapping[str, str] | None = None,
        host: str | None = None,
    ) -> None:
        self.connection = connection
        # Nothing of the session is kept here (its files are on the target): no local
        # directory a killed engine would leave behind.
        self._commands = None  # type: ignore[assignment]
        self._token = secrets.token_hex(8)
        self._tag = secrets.token_hex(8)
        token = self._token.encode()
        # Every marker carries its command's number: one pattern for the session's markers.
        self._markers = re.compile(rb"\x1eRB" + token + rb":(\d+):(\d*)\x1e")
        self._marker = _CommandMarker(self._markers, b"0")
        self._kill_grace = kill_grace
        self._count = 0
        self._stray = b""
        self._slave = None
        self._pty_name = None  # the terminal is the target's: no local /proc look at it
        self._cwd = ""
        self._baseline = (frozenset(), {})
        self._variables = {}
        self._functions = {}
        self._left = {}
        self._state_changed = False
        self._remote_pid = 0
        self._no_input = False
        self._seq = 0
        self._state_delimiter = b"\x1eRBS" + self._token.encode() + b"\x1e"
        self.host = host or connection.name
        env = dict(os.environ)
        env.setdefault("TERM", "xterm-256color")
        try:
            self._child = pexpect.spawn(
                connection.shell[0],
                list(connection.shell[1:]),
                env=env,
                echo=False,
                dimensions=dimensions,
                encoding=None,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            raise ShellError(
                f"{connection.name}: cannot start {connection.shell[0]}: {exc}"
            ) from None
        self._child.delaybeforesend = None
        self._child.delayafterclose = 0
        self._child.delayafterterminate = 0
        said = bytearray()
        try:
            self._start(said, secret_variables, exports or {})
        except ShellError:
            self.close()
            words = said.decode("utf-8", "replace").replace("\r", "").strip().splitlines()
            tail = "; ".join(line for line in words[-3:] if line.strip())
            raise ShellError(
                f"{connection.name}: the session did not start" + (f": {tail}" if tail else "")
            ) from None

    def _start(
        self, said: bytearray, secret_variables: tuple[str, ...], exports: Mapping[str, str]
    ) -> None:
        prelude = _PRELUDE % {
            "state": '"$__rb_dir/state"',
            "workdir": '"$__rb_dir"',
            "secrets": shlex.quote(" ".join(secret_variables)),
            "all_variables": " ".join(
                f"${{!{c}@}}" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
            ),
            "not_carried": _NOT_CARRIED,
            "token": self._token,
        }
        # The state file is emptied once read (the engine cannot reach it), and echo goes off
        # again after an interactive step.
        prelude = prelude.replace(
            '[ -s "$__rb_state" ] && builtin source "$__rb_state" 2>/dev/null',
            '[ -n "$__rb_echo" ] && { stty -echo 2>/dev/null; __rb_echo=; }\n'
            '[ -s "$__rb_state" ] && { builtin source "$__rb_state" 2>/dev/null;'
            ' : > "$__rb_state"; }',
        ).replace(
            f'builtin printf "\\036RB{self._token}:%d\\036" "$__rb_status"',
            f'builtin printf "\\036RB{self._token}:%d:%s\\036" "$__rb_status" "$__rb_seq"',
        )
        assert "$__rb_seq" in prelude
        prelude += _STATE_FUNCTIONS.replace("TOKEN", self._token)
        head = (
            "__rb_seq=1; stty -echo 2>/dev/null; set +H\n"
            '__rb_dir=$(mktemp -d "${TMPDIR:-/tmp}/runbook-XXXXXX") || builtin exit 1\n'
        )
        self._send(head + prelude.strip())
        self._expect(1)
        self._wait(StepIO(on_output=said.extend), _START_SECONDS, time.monotonic(), None)
        said.clear()
        lines = [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
        lines.append("builtin printf 'RBPID:%s:' \"$$\"")
        write = _files([("env", "\n".join(lines) + "\n")])
        # What the session starts with stays on the target (`__rb_base`): a step's state is
        # sent back as its difference.
        self._send(
            f'__rb_seq=2; {write}builtin source "$__rb_dir"/env; rm -f -- "$__rb_dir"/env;'
            " __rb_keep_cwd=1; __rb_private=''; ( trap '__rb_save $?' EXIT; : ); __rb_base"
        )
        self._expect(2)
        self._wait(StepIO(on_output=said.extend), _START_SECONDS, time.monotonic(), None)
        found = _PID.search(bytes(said))
        self._remote_pid = int(found.group(1)) if found else 0
        self._stray = b""
        self._seq = 2

    def _expect(self, seq: int) -> None:
        """The next marker to wait for: the one of command `seq` (a marker a stray empty
        line printed carries an earlier number, and is not taken for the command's end)."""
        self._marker = _CommandMarker(self._markers, str(seq).encode())

    def _without_stale(self, on_output: Callable[[bytes], None]) -> Callable[[bytes], None]:
        """Output with the markers of earlier commands taken out."""

        def filtered(data: bytes) -> None:
            if b"\x1e" in data:
                data = self._markers.sub(b"", data)
            if data:
                on_output(data)

        return filtered

    def _send(self, script: str) -> None:
        """Hand the session one command: typed into its terminal (echo is off)."""
        self._child.send(f"{script}\n".encode())

    def _reset_terminal(self, interactive: bool) -> None:
        """The terminal's modes are the target's: the session sets them itself."""

    def run_step(
        self,
        body: str,
        io: StepIO,
        *,
        interpreter: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        interactive: bool = False,
        no_input: bool = False,
    ) -> Outcome:
        """Run one step's text in the remote session, as the local session would."""
        check_answers(io)
        self._count += 1
        number = self._count
        tag = f"{self._tag}.{number}"
        script = f'"$__rb_dir"/s-{number}'
        inner = [f"export {reaper.TAG_VARIABLE}={tag}"]
        if interactive:
            inner.append("stty echo 2>/dev/null")
        if cwd:
            inner.append(f"builtin cd -- {shlex.quote(cwd)} || exit 1")
        for name, value in (env or {}).items():
            inner.append(f"export {name}={shlex.quote(value)}")
        if interpreter:
            words = shlex.split(interpreter)
            program = os.path.basename(words[0]) if words else ""
            argument = re.sub(r"[\d.]+$", "", program) in _FILE_ARGUMENT
            inner.append(f"{interpreter} {script}" if argument else f"{interpreter} < {script}")
        else:
            inner.append(f"builtin source {script}")
        private = " ".join(env or {})
        trap = "trap '__rb_save $?' EXIT; " if interactive or may_change_state(body) else ""
        launcher = "; ".join(inner)
        if _PLAIN.fullmatch(launcher):  # typed as it is: one file less to write and read
            write = _files([(f"s-{number}", body)])
        else:  # a value with a newline or a control character, or a long one
            write = _files([(f"s-{number}", body), (f"l-{number}", "\n".join(inner) + "\n")])
            launcher = f'builtin source "$__rb_dir"/l-{number}'
        command = (
            f"{write}__rb_keep_cwd={0 if cwd else 1}; __rb_private={shlex.quote(private)};"
            f" {'__rb_echo=1; ' if interactive else ''}( {trap}{launcher} )"
            + (" < /dev/null" if no_input else " <&2")
            + ("; __rb_show $?" if trap else "")
        )
        state = bytearray()
        on_output = self._without_stale(io.on_output)
        splitter = _StateSplitter(self._state_delimiter, on_output, state)
        io = dataclasses.replace(io, on_output=splitter.feed if trap else on_output)
        self._no_input = no_input
        self._deliver_stray(io)
        self._seq += 1
        self._expect(self._seq)
        started = time.monotonic()
        self._send(f"__rb_seq={self._seq}; {command}")
        outcome = self._wait(io, timeout, started, reaper.StepTree(tag, self._pid))
        splitter.flush()
        if splitter.found:
            self._take_dump(_dump_text(bytes(state)))
        return outcome

    def _take_dump(self, text: str) -> None:
        """The state a step saved: what differs from the session's start, and its directory."""
        if not text.strip():
            return
        head, functions, cwd = _parse_dump(text)
        # Only what differs from the session's start came back: the target compared.
        self._variables = _changed_variables(head, frozenset())
        self._variables.pop("BASH_CMDS", None)  # the command hash table: the session's own
        self._functions = {
            name: body for name, body in functions.items() if not name.startswith("__rb_")
        }
        if cwd is not None:
            self._cwd = cwd
        self._state_changed = True

    def _escalate(self, tree: reaper.StepTree, level: int) -> tuple[reaper.StepTree, int]:
        """Ctrl-C through the target's terminal, then SIGTERM and SIGKILL on the target."""
        if level <= 1:
            self._child.send(b"\x03")
            return tree, 1
        self._signal_remote(tree.tag, signal.SIGTERM if level == 2 else signal.SIGKILL)
        return tree, min(level, 3)

    def _stop_tree(self, tree: reaper.StepTree, grace: float, first: int) -> None:
        """What is left of the step on the target: `first`, then SIGKILL after `grace`."""
        if not self._signal_remote(tree.tag, first) or first == signal.SIGKILL:
            return
        until = time.monotonic() + grace
        while time.monotonic() < until:
            if not self._signal_remote(tree.tag, 0):
                return
            time.sleep(0.1)
        self._signal_remote(tree.tag, signal.SIGKILL)

    def _signal_remote(self, tag: str, signum: int) -> int:
        """Signal the step's processes on the target; how many there were."""
        words = self._on_target(_REAPER, str(int(signum)), tag, timeout=30).split()
        return int(words[-1]) if words and words[-1].isdigit() else 0

    def _on_target(self, script: str, first: str, tag: str, timeout: float) -> str:
        """A bash script run on the target over the side channel with the step's tag and
        the session shell's pid; what it printed ("" when it could not run)."""
        command = self.connection.side_command(
            ["bash", "-c", script, "runbook", first, tag, str(self._remote_pid)]
        )
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.decode(errors="replace")

    def _input_watch(self, tree: reaper.StepTree) -> _InputWatch:
        """On the target: asked over the side channel, after a quiet moment (a step that
        reads /dev/null is never asked about)."""
        if self._no_input:
            return _InputWatch(None)
        return _RemoteInputWatch(lambda: self._on_target(_WAITING, "", tree.tag, 10).strip())

    def take_state(self) -> SessionState | None:
        """The session's state on the target if it may have changed since the last call."""
        if not self._state_changed:
            return None
        self._state_changed = False
        return SessionState(
            cwd=self._cwd,
            variables="".join(self._variables.values()),
            functions="".join(self._functions.values()),
            host=self.host,
        )

    def restore(self, state: SessionState) -> list[str]:
        """Rebuild a recorded state in this (new) session on the target, before any step
        runs: variables, functions, directory. Returns what could not be restored."""
        text = state.variables + state.functions
        text += f"builtin cd -- {shlex.quote(state.cwd)} || builtin echo 'no directory'\n"
        said = bytearray()
        self._seq += 1
        self._expect(self._seq)
        write = _files([("restore", text)])
        self._send(f'__rb_seq={self._seq}; {write}builtin source "$__rb_dir"/restore')
        self._wait(StepIO(on_output=said.extend), _START_SECONDS, time.monotonic(), None)
        self._stray = b""
        problems = []
        if said.strip():
            words = said.decode("utf-8", "replace").replace("\r", "").strip()
            if "no directory" in words:
                problems.append(f"the directory {state.cwd} does not exist on {self.host}")
            else:
                problems.append(words)
        self._variables = _changed_variables(state.variables, frozenset())
        self._functions = _entries(state.functions, _FUNCTION)
        self._cwd = state.cwd
        return problems

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._child.isalive():
                self._send("builtin exit 0")
                self._child.expect(pexpect.EOF, timeout=2)
        with contextlib.suppress(Exception):
            self._child.close(force=True)


class _RemoteInputWatch(_InputWatch):
    """A step on a target waits for input: after a quiet moment the target is asked (its
    /proc) whether a process of the step is blocked reading its terminal."""

    def __init__(self, ask: Callable[[], str]) -> None:
        super().__init__(None)
        self._ask = ask
        self._next = 0.0  # asked again no sooner: each question runs a program on the target
        self._every = _ASK_FIRST

    def output(self, data: bytes, now: float) -> None:
        super().output(data, now)
        if data:
            self._every = _ASK_FIRST

    def waiting(self, now: float, fd: int) -> bool:
        if now < self._next or not self.quiet(now):
            return False
        self._said = self._ask() == "yes"
        self._every = min(self._every * 2, _ASK_LAST)
        self._next = now + self._every
        return self._said


class _StateSplitter:
    """A step's output, then (after the delimiter) the state its session saved: the state
    never reaches the step's output; a delimiter split across reads is held back whole."""

    def __init__(
        self, delimiter: bytes, on_output: Callable[[bytes], None], state: bytearray
    ) -> None:
        self._delimiter = delimiter
        self._on_output = on_output
        self._state = state
        self._carry = b""
        self.found = False

    def feed(self, data: bytes) -> None:
        if self.found:
            self._state.extend(data)
            return
        data, self._carry = self._carry + data, b""
        before, found, after = data.partition(self._delimiter)
        if found:
            self.found = True
            self._state.extend(after)
            data = before
        else:
            cut = data.rfind(b"\x1e")
            if cut >= 0 and len(data) - cut < len(self._delimiter):
                data, self._carry = data[:cut], data[cut:]
        if data:
            self._on_output(data)

    def flush(self) -> None:
        if self._carry:
            self._on_output(self._carry)
            self._carry = b""


def _dump_text(data: bytes) -> str:
    """A state dump as the target's terminal gave it back (line ends as CR LF)."""
    return data.decode("utf-8", "surrogateescape").replace("\r\n", "\n")


class TargetSessions:
    """The run's sessions on targets: one per host, started on first use and kept for the
    whole run (so `cd` and variables carry from step to step on each host)."""

    def __init__(
        self,
        ssh_config: str | None = None,
        dimensions: tuple[int, int] = (24, 80),
        secret_variables: tuple[str, ...] = (),
        exports: Mapping[str, str] | None = None,
        states: Mapping[str, SessionState] | None = None,
        on_restored: Callable[[str, SessionState, list[str]], None] | None = None,
    ) -> None:
        self.ssh = SshControl(ssh_config)
        # On resume: each target's session as the last step on it left it, rebuilt when the
        # session starts (then said through `on_restored`).
        self.states = dict(states or {})
        self.on_restored = on_restored
        self.dimensions = dimensions
        self.secret_variables = secret_variables
        self.exports = dict(exports or {})
        self._sessions: dict[str, RemoteSession] = {}
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}

    def session(
        self, name: str, ssh: str | None, exec_words: Sequence[str] | None
    ) -> RemoteSession:
        """The session on a host, started when first asked for. Raises ShellError."""
        key = f"ssh:{ssh}" if ssh is not None else "exec:" + shlex.join(exec_words or ())
        with self._lock:
            host_lock = self._host_locks.setdefault(key, threading.Lock())
        with host_lock:
            found = self._sessions.get(key)
            if found is not None and found._child.isalive():
                return found
            if ssh is not None:
                connection = self.ssh.connect(ssh)
            else:
                connection = exec_connection(name, exec_words or ())
            session = RemoteSession(
                connection,
                dimensions=self.dimensions,
                secret_variables=self.secret_variables,
                exports={**self.exports, "RUNBOOK_HOST": name},
                host=name,
            )
            self._sessions[key] = session
            state = self.states.pop(name, None)
            if state is not None:
                problems = session.restore(state)
                if self.on_restored is not None:
                    self.on_restored(name, state, problems)
            return session

    def close(self) -> None:
        """Every session ended (all at once), then every master connection."""
        _each(RemoteSession.close, list(self._sessions.values()))
        self._sessions.clear()
        self.ssh.close()
