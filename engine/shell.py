"""The shell driver: one bash session in a pty (pexpect) for the whole run.

Each step runs as a subshell job of that session, so it has its own process group, while `cd`
and variables carry over: when the subshell exits, it writes its variables, functions and
directory to a state file that the session reads back before the next step. A unique marker,
never `$`, tells the end of a step and its exit status.

The session reads its commands from a FIFO, never from the pty: nothing a step leaves in the
terminal (an `expect` answer it did not read, keys typed ahead) can reach the session as a
command, no command is echoed whatever a step does to the terminal's modes, and no command
line meets the terminal's 4095-byte line limit. Steps read the pty, as the operator's terminal.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import string
import tempfile
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import pexpect

from engine import reaper
from engine.events import SessionState

if TYPE_CHECKING:
    import regex

# Interpreters that take the script file as their argument; any other reads it on stdin.
_FILE_ARGUMENT = frozenset(
    {"python", "python3", "node", "ruby", "perl", "bash", "sh", "zsh", "php"}
)
# Variables the session manages itself, never carried from a step to the session.
_NOT_CARRIED = (
    "RANDOM SRANDOM SECONDS LINENO HISTCMD PWD OLDPWD BASH_COMMAND BASH_SUBSHELL BASHPID "
    "PIPESTATUS FUNCNAME BASH_LINENO BASH_SOURCE BASH_ARGC BASH_ARGV BASH_REMATCH "
    "PROMPT_COMMAND PS0 PS1 PS2 TMOUT __rb_status " + reaper.TAG_VARIABLE
)
# A command longer than this goes to the session through a file: one short line in the FIFO
# never fills its buffer (64 KB), so sending can never block.
_LINE_LIMIT = 2048
# How long one search of an `expect` prompt (a runbook's regular expression) may take.
_MATCH_SECONDS = 0.1
_START_SECONDS = 15.0
# A step whose status says one of these stopped it was suspended, not ended.
_STOPPED = frozenset({signal.SIGTSTP, signal.SIGSTOP, signal.SIGTTIN, signal.SIGTTOU})
# Runs once when the session starts. __rb_save runs as the step's subshell exits: it drops
# the special variables (in that dying subshell only) and dumps the rest with builtins alone.
# PROMPT_COMMAND ends every command, even one that Ctrl-C cut short: it reads the state back
# (at top level, where `declare` makes globals) and prints the marker with the status. The
# engine then reads the same file (the state `resume` rebuilds) and empties it.
# The pty's modes are set by the engine itself (no echo, no output processing) before each step.
_PRELUDE = r"""
PS0='' PS1='' PS2='' PS3='' PS4='+ '
set +o history; unset HISTFILE
export PAGER=cat GIT_PAGER=cat SYSTEMD_PAGER= MANPAGER=cat LESS=-FRX
__rb_state=%(state)s
__rb_secrets=%(secrets)s
trap 'rm -rf -- %(workdir)s' EXIT
__rb_save() {
  # Whatever the step set, this runs with plain word splitting and no nounset or errexit;
  # the step's own IFS is put back before the dump (options are not carried anyway).
  builtin set +euf; __rb_ifs=${IFS-__rb_unset}; IFS=$' \t\n'
  builtin printf -v __rb_cd 'builtin cd -- %%q' "$PWD"
  builtin unset -v %(not_carried)s $__rb_private 2>/dev/null
  if [ -n "$__rb_secrets" ]; then  # no variable holding a secret is written to the state
    # The values first: unsetting a secret's own variable must not end the scrub early.
    __rb_found=()
    for __rb_s in $__rb_secrets; do [ -n "${!__rb_s}" ] && __rb_found+=("${!__rb_s}"); done
    for __rb_v in %(all_variables)s; do
      [[ $__rb_v == __rb_* ]] && continue
      __rb_ref="$__rb_v[*]"  # every element of an array, or the value
      for __rb_s in "${__rb_found[@]}"; do
        if [[ ${!__rb_ref} == *"$__rb_s"* ]]; then
          builtin unset -v "$__rb_v" 2>/dev/null; break
        fi
      done
    done
    builtin unset -v __rb_found __rb_ref __rb_s __rb_v
  fi
  if [ "$__rb_ifs" = __rb_unset ]; then builtin unset -v IFS; else IFS=$__rb_ifs; fi
  builtin unset -v __rb_ifs
  { builtin declare -p; builtin printf '%%s\n' '#rb-functions'; builtin declare -f
    [ "$__rb_keep_cwd" = 1 ] && builtin printf '%%s\n' "$__rb_cd"
  } > "$__rb_state" 2>/dev/null
  builtin exit "$1"
}
PROMPT_COMMAND='__rb_status=$?
[ -s "$__rb_state" ] && builtin source "$__rb_state" 2>/dev/null
builtin printf "\036RB%(token)s:%%d\036" "$__rb_status"'
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a step's process ended."""

    exit_code: int | None
    signal: int | None = None
    timed_out: bool = False
    interrupted: bool = False
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.interrupted


@dataclass(frozen=True, slots=True)
class Responder:
    """Types `send` when output matches `prompt` (declarative answers, like invoke's)."""

    prompt: re.Pattern[str]
    send: str
    label: str = ""
    # A line break in `send` types a second line: refused unless the annotation asks for it.
    multiline: bool = False


@dataclass(slots=True)
class StepIO:
    """What a running step talks to: where output goes, what answers prompts, and input."""

    on_output: Callable[[bytes], None]
    responders: Sequence[Responder] = ()
    on_answer: Callable[[Responder, str], None] | None = None
    input_fd: int | None = None
    interrupt_requested: Callable[[], bool] = field(default=lambda: False)
    tick: Callable[[], None] | None = None
    # Output that arrived between the previous step's end and this one's start (a background
    # job the previous step left running). Without this, it reaches `on_output` behind a note.
    on_stray: Callable[[bytes], None] | None = None
    # The step seems to wait for input (its output ends without a line break, it went quiet,
    # and it is reading the terminal): tell the operator; returns a file descriptor whose input
    # goes to the step from then on (the operator's keyboard), or None.
    on_waiting: Callable[[str], int | None] | None = None
    # A word from the engine while the step runs (what the next Ctrl-C does); without it, the
    # note goes to `on_output` as a `[runbook: ...]` line.
    on_notice: Callable[[str], None] | None = None


class ShellError(Exception):
    """The session itself failed (could not start, or died): an engine error, not a step's."""


class StepRefused(ShellError):
    """The step cannot be run as written (nothing was run): its text or answers are unsafe."""


STRAY_NOTE = b"\r\n[runbook: output of a process an earlier step left running]\r\n"
# After this long without output, a step whose last line is unfinished may be asking something.
QUIET_SECONDS = 0.5
_CTRL_C_NEXT = {
    1: "Ctrl-C sent to the step; press Ctrl-C again to stop all its processes (SIGTERM)",
    2: "SIGTERM sent to the step's processes; press Ctrl-C again to kill them (SIGKILL)",
}


class Marker(Protocol):
    """What finds the end of a command in the session's output (a compiled pattern, or a
    remote session's finder of one command's marker): group 1 is the exit status."""

    def search(self, data: bytes) -> re.Match[bytes] | None: ...


class ShellSession:
    """A persistent shell in a pty; `run_step` executes one step and reports its outcome."""

    _marker: Marker

    def __init__(
        self,
        shell: str = "bash",
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        dimensions: tuple[int, int] = (24, 80),
        kill_grace: float = 2.0,
        secret_variables: tuple[str, ...] = (),
        track_state: bool = True,
    ) -> None:
        program, options = _shell_command(shell)
        self._workdir = Path(tempfile.mkdtemp(prefix="runbook-", dir=scratch_root()))
        self._state = self._workdir / "state"
        self._state.touch(mode=0o600)
        fifo = self._workdir / "commands"
        os.mkfifo(fifo, 0o600)
        # Read and write: opening never blocks, and the session's end of it sees no EOF
        # while the engine lives.
        self._commands = os.open(fifo, os.O_RDWR)
        self._token = secrets.token_hex(8)
        # Another token tags the steps' processes: their environment must not tell the marker's.
        self._tag = secrets.token_hex(8)
        self._marker = re.compile(rb"\x1eRB" + self._token.encode() + rb":(\d+)\x1e")
        self._kill_grace = kill_grace
        self._count = 0
        self._stray = b""
        self._slave: int | None = None
        self._pty_name: str | None = None
        # The session's state as `resume` would rebuild it: what differs from the start.
        self._cwd = os.path.abspath(cwd or os.getcwd())
        self._baseline: tuple[frozenset[str], dict[str, str]] = (frozenset(), {})
        self._variables: dict[str, str] = {}
        self._functions: dict[str, str] = {}
        self._left: dict[int, str] = {}  # processes steps left running: pid -> command line
        self._state_changed = False
        full_env = dict(os.environ if env is None else env)
        full_env.update({"TERM": full_env.get("TERM", "xterm-256color"), "PAGER": "cat"})

        def read_commands_from_fifo() -> None:  # in the child, before exec
            commands = os.open(fifo, os.O_RDONLY)
            os.dup2(commands, 0)
            os.close(commands)

        try:
            self._child = pexpect.spawn(
                program,
                [*options, "--noprofile", "--norc", "--noediting", "-i"],
                cwd=cwd,
                env=full_env,
                echo=False,
                dimensions=dimensions,
                encoding=None,
                preexec_fn=read_commands_from_fifo,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            os.close(self._commands)
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise ShellError(f"cannot start {shell}: {exc}") from None
        self._child.delaybeforesend = None
        self._child.delayafterclose = 0
        self._child.delayafterterminate = 0
        self._child.ptyproc.delayafterclose = 0  # type: ignore[attr-defined]
        self._child.ptyproc.delayafterterminate = 0  # type: ignore[attr-defined]
        self._modes = self._session_modes()
        self._open_slave()
        prelude = _PRELUDE % {
            "state": shlex.quote(str(self._state)),
            "workdir": shlex.quote(str(self._workdir)),
            "secrets": shlex.quote(" ".join(secret_variables)),
            # Every variable's name, by prefix, without forking (no `$(compgen -v)`).
            "all_variables": " ".join(f"${{!{c}@}}" for c in string.ascii_letters + "_"),
            "not_carried": _NOT_CARRIED,
            "token": self._token,
        }
        self._send(prelude.strip())
        started = time.monotonic()
        outcome = self._wait(StepIO(on_output=lambda _: None), _START_SECONDS, started, None)
        self._stray = b""
        if outcome.exit_code is None:
            raise ShellError(f"{shell} did not start properly")
        if track_state:
            # What the session starts with: a step's state is recorded as its difference.
            self._send("__rb_keep_cwd=1; __rb_private=''; ( trap '__rb_save $?' EXIT; : )")
            self._wait(StepIO(on_output=lambda _: None), _START_SECONDS, time.monotonic(), None)
            self._stray = b""
            head, functions, _ = _parse_dump(self._take_state_file() or "")
            self._baseline = (frozenset(head.splitlines(keepends=True)), functions)

    def _session_modes(self) -> list:  # type: ignore[type-arg]
        """Set the pty's modes the session relies on, and return them: no echo (answers and
        keys typed ahead are not printed twice), lines and signals from the terminal (`read`,
        Ctrl-C), and no output processing: with ONLCR off (the one translation default
        termios makes), -opost changes no byte but takes the kernel's fast path, about 1.5
        times the throughput."""
        fd = self._child.child_fd
        modes = termios.tcgetattr(fd)
        modes[1] &= ~(termios.OPOST | termios.ONLCR)
        modes[3] &= ~(termios.ECHO | termios.ECHONL)
        modes[3] |= termios.ICANON | termios.ISIG | termios.IEXTEN
        modes[6][termios.VMIN] = 1
        modes[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, modes)
        return termios.tcgetattr(fd)

    def _open_slave(self) -> None:
        """The terminal's own side, to discard input no step read (Linux: through /proc)."""
        with contextlib.suppress(OSError):
            name = os.readlink(f"/proc/{self._child.pid}/fd/1")
            if name.startswith("/dev/pts/"):
                self._slave = os.open(name, os.O_RDWR | os.O_NOCTTY)
                self._pty_name = name

    def _reset_terminal(self, interactive: bool) -> None:
        """Before each step: the session's modes back, whatever an earlier step (`stty`, a
        killed editor, the failure menu's shell) left; echo on for an interactive step; and no
        input left over from before (an unread answer, keys typed ahead)."""
        fd = self._child.child_fd
        wanted = self._modes
        if interactive:
            wanted = [*self._modes]
            wanted[3] |= termios.ECHO
        with contextlib.suppress(termios.error):
            if termios.tcgetattr(fd) != wanted:
                termios.tcsetattr(fd, termios.TCSANOW, wanted)
            if self._slave is not None:
                termios.tcflush(self._slave, termios.TCIFLUSH)

    def _send(self, script: str) -> None:
        """Hand the session one command: through the FIFO, never the terminal."""
        data = f"{script}\n".encode()
        while data:
            data = data[os.write(self._commands, data) :]

    @property
    def _pid(self) -> int:
        """The session shell's pid (pexpect's is typed optional: it is set once spawned)."""
        pid = self._child.pid
        assert pid is not None
        return pid

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
        """Run one step's text in the session and stream its output until it ends.

        An interactive step gets the terminal's echo while it runs (the session keeps it off).
        With `no_input` the step reads /dev/null: nobody is there to type (unattended runs).
        """
        check_answers(io)
        self._count += 1
        number = self._count
        script = self._workdir / f"step-{number}"
        _write_private(script, body)
        tag = f"{self._tag}.{number}"
        inner = [f"export {reaper.TAG_VARIABLE}={tag}"]
        if cwd:
            inner.append(f"builtin cd -- {shlex.quote(cwd)} || exit 1")
        for name, value in (env or {}).items():
            inner.append(f"export {name}={shlex.quote(value)}")
        if interpreter:
            words = shlex.split(interpreter)
            program = os.path.basename(words[0]) if words else ""
            target = shlex.quote(str(script))
            tail = (
                f" {target}"
                if re.sub(r"[\d.]+$", "", program) in _FILE_ARGUMENT
                else f" < {target}"
            )
            inner.append(f"{interpreter}{tail}")
        else:
            inner.append(f"builtin source {shlex.quote(str(script))}")
        private = " ".join(env or {})
        if interactive or (not interpreter and may_change_state(body)):
            trap = "trap '__rb_save $?' EXIT; "
        else:
            trap = ""  # nothing to carry over: no state to save and read back
        # The session reads commands from the FIFO: the step reads the terminal (fd 2).
        command = (
            f"__rb_keep_cwd={0 if cwd else 1}; __rb_private={shlex.quote(private)}; "
            f"( {trap}{'; '.join(inner)} )" + (" < /dev/null" if no_input else " <&2")
        )
        launcher = None
        if len(command) > _LINE_LIMIT:  # a certificate or a JSON document in `env:`
            launcher = self._workdir / f"launch-{number}"
            _write_private(launcher, command + "\n")
            command = f"builtin source {shlex.quote(str(launcher))}"
        self._deliver_stray(io)
        self._reset_terminal(interactive)
        started = time.monotonic()
        self._send(command)
        try:
            outcome = self._wait(io, timeout, started, reaper.StepTree(tag, self._pid))
        finally:
            script.unlink(missing_ok=True)
            if launcher is not None:
                launcher.unlink(missing_ok=True)
        if trap:
            self._read_dump()
        if interactive or _BACKGROUND.search(body):
            self._note_left_running(reaper.StepTree(tag, self._pid))
        return outcome

    # -- the state resume rebuilds ------------------------------------------------------------

    def _read_dump(self) -> None:
        """Take the state the last step wrote (the session has sourced it): its variables and
        functions that differ from the session's start, and its directory."""
        text = self._take_state_file()
        if text is None:
            return
        head, functions, cwd = _parse_dump(text)
        base_lines, base_functions = self._baseline
        self._variables = _changed_variables(head, base_lines)
        self._functions = {
            name: body
            for name, body in functions.items()
            if base_functions.get(name) != body and not name.startswith("__rb_")
        }
        if cwd is not None:
            self._cwd = cwd
        self._state_changed = True

    def _take_state_file(self) -> str | None:
        """The state file's text, if the last command wrote one; emptied, so a later step that
        saves nothing leaves nothing to source."""
        try:
            if os.stat(self._state).st_size == 0:
                return None
            text = self._state.read_text(encoding="utf-8", errors="surrogateescape")
            with open(self._state, "w"):
                pass
        except OSError:
            return None
        return text

    def _note_left_running(self, tree: reaper.StepTree) -> None:
        """Processes the step left behind (`&`, `ssh -f`): a resumed session cannot have them."""
        left = {pid: command for pid, command in self._left.items() if _alive(pid)}
        for pid in reaper.find(tree):
            left.setdefault(pid, _command_line(pid))
        if left != self._left:
            self._left = left
            self._state_changed = True

    def take_state(self) -> SessionState | None:
        """The session's state if it may have changed since the last call, else None."""
        if not self._state_changed:
            return None
        self._state_changed = False
        return SessionState(
            cwd=self._cwd,
            variables="".join(self._variables.values()),
            functions="".join(self._functions.values()),
            left_running=tuple(c for c in self._left.values() if c),
        )

    def restore(self, state: SessionState) -> list[str]:
        """Rebuild a recorded state in this (new) session, before any step runs: variables,
        functions, directory. Returns what could not be restored, in words."""
        problems: list[str] = []
        lines = [state.variables, state.functions]
        if os.path.isdir(state.cwd):
            lines.append(f"builtin cd -- {shlex.quote(state.cwd)}\n")
        else:
            problems.append(f"the directory {state.cwd} no longer exists")
        script = self._workdir / "restore"
        _write_private(script, "".join(lines))
        said = bytearray()
        self._send(f"builtin source {shlex.quote(str(script))}")
        try:
            self._wait(StepIO(on_output=said.extend), _START_SECONDS, time.monotonic(), None)
        finally:
            script.unlink(missing_ok=True)
        self._stray = b""
        if said.strip():
            problems.append(said.decode("utf-8", "replace").strip())
        # Recorded as this session's own state: the next step's dump starts from it.
        self._variables = _changed_variables(state.variables, frozenset())
        self._functions = _entries(state.functions, _FUNCTION)
        if os.path.isdir(state.cwd):
            self._cwd = state.cwd
        return problems

    def _deliver_stray(self, io: StepIO) -> None:
        """Output written since the last step ended belongs to no step: handed over apart."""
        stray, self._stray = self._stray, b""
        fd = self._child.child_fd
        with contextlib.suppress(OSError):
            if select.select([fd], [], [], 0)[0]:  # once: a job printing without end
                stray += _read_available(fd)  # must not keep the step from starting
        if not stray:
            return
        if io.on_stray is not None:
            io.on_stray(stray)
        else:
            io.on_output(STRAY_NOTE + stray)

    def _wait(
        self, io: StepIO, timeout: float | None, started: float, tree: reaper.StepTree | None
    ) -> Outcome:
        fd = self._child.child_fd
        pending = b""
        window = ""
        timed_out = interrupted = False
        # Stopping a step goes up one level at a time: 1 SIGINT (the terminal's Ctrl-C),
        # 2 SIGTERM, 3 SIGKILL, each to the whole tree, a grace period apart.
        level = 0
        escalate_at: float | None = None
        deadline = started + timeout if timeout else None
        matchers = [(_timed_pattern(r.prompt), r) for r in io.responders]
        watch = self._input_watch(tree) if tree is not None else None
        keys: int | None = None  # the operator's keys, once the step was found waiting
        modes = _ModeWatch()
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                if tree is None:
                    raise ShellError("the shell session did not answer in time")
                tree, level = self._escalate(tree, max(level, 1) + 1)
                escalate_at = now + self._kill_grace
            if io.interrupt_requested() and tree is not None:
                interrupted = True
                tree, level = self._escalate(tree, level + 1)
                escalate_at = now + self._kill_grace
                if level in _CTRL_C_NEXT:
                    _notice(io, _CTRL_C_NEXT[level])
            if escalate_at is not None and now >= escalate_at and tree is not None:
                if level >= 3:
                    raise ShellError("the step's processes could not be stopped (even SIGKILL)")
                tree, level = self._escalate(tree, level + 1)
                escalate_at = now + self._kill_grace
            waits = [t for t in (None if timed_out else deadline, escalate_at) if t is not None]
            wait = max(0.0, min(waits) - now) if waits else 0.2
            source = io.input_fd if io.input_fd is not None else keys
            readable = [fd] + ([source] if source is not None else [])
            try:
                ready, _, _ = select.select(readable, [], [], min(wait, 0.2))
            except InterruptedError:
                continue
            if not ready:
                if io.tick is not None:
                    io.tick()
                if watch is not None and io.input_fd is None and watch.waiting(now, fd):
                    found = self._waiting(io, watch)
                    keys = found if found is not None else keys
            if source is not None and source in ready:
                try:
                    data = os.read(source, 4096)
                except OSError:
                    data = b""
                if data:
                    self._child.send(data)
                elif source == keys:
                    self._child.send(b"\x04")  # Ctrl-D: the end of the step's input
                    keys = None
            if fd not in ready:
                continue
            chunk = _read_available(fd)
            if not chunk:
                raise ShellError("the shell session ended unexpectedly")
            data = pending + chunk
            # Every marker starts with \x1e: memchr over the chunk rather than the regex engine.
            match = self._marker.search(data) if b"\x1e" in data else None
            if watch is not None:
                watch.output(data[: match.start()] if match else data, time.monotonic())
            if b"\x1b" in data:
                modes.feed(data)
            if match:
                if match.start():
                    io.on_output(data[: match.start()])
                if modes.changed and tree is not None:
                    io.on_output(modes.reset())  # whatever the step left the terminal in
                self._stray = data[match.end() :]
                code = int(match.group(1))
                if tree is not None and (timed_out or interrupted):
                    # What outlived the step's own end (background and `setsid` children).
                    first = signal.SIGKILL if level >= 2 else signal.SIGTERM
                    self._stop_tree(tree, self._kill_grace, first)
                elif tree is not None and code - 128 in _STOPPED:
                    # Suspended (Ctrl-Z typed, SIGSTOP): the session took the terminal back,
                    # and a stopped job would stay stopped for good. It is ended instead,
                    # once the session has forgotten it (or it reports it under the next step).
                    self._send("builtin disown -a")
                    self._wait(StepIO(on_output=lambda _: None), _START_SECONDS, now, None)
                    self._stop_tree(tree, 0, signal.SIGKILL)
                return _outcome(code, timed_out, interrupted, time.monotonic() - started)
            # Hold back what could be the start of a marker split across reads.
            cut = data.rfind(b"\x1e")
            if cut >= 0 and len(data) - cut < 40:
                pending, data = data[cut:], data[:cut]
            else:
                pending = b""
            if data:
                io.on_output(data)
                if matchers:
                    window = (window + data.decode("utf-8", "replace"))[-4096:]
                    window = self._respond(window, io, matchers)

    def _input_watch(self, tree: reaper.StepTree) -> _InputWatch:
        """What tells that the step's processes wait for input: /proc, here."""
        return _InputWatch(self._pty_name)

    def _waiting(self, io: StepIO, watch: _InputWatch) -> int | None:
        """The step is waiting for input: said once per question; the operator's keys."""
        if io.on_waiting is not None:
            return io.on_waiting(watch.last_line())
        _notice(io, "the step is waiting for input (it reads the terminal): nobody answers it")
        return None

    def _stop_tree(self, tree: reaper.StepTree, grace: float, first: int) -> None:
        """Stop what is left of a step's processes (a remote session does it remotely)."""
        reaper.stop(tree, grace, first)

    def _escalate(self, tree: reaper.StepTree, level: int) -> tuple[reaper.StepTree, int]:
        """Go to `level` of stopping the step: Ctrl-C through the terminal, then SIGTERM and
        SIGKILL to every process of the step, found afresh each time."""
        if tree.group is None:
            tree = reaper.StepTree(tree.tag, tree.shell_pid, self._step_group())
        if level <= 1:
            self._child.send(b"\x03")
            return tree, 1
        signum = signal.SIGTERM if level == 2 else signal.SIGKILL
        reaper.signal_all(reaper.find(tree), tree.group, signum)
        return tree, min(level, 3)

    def _respond(
        self, window: str, io: StepIO, matchers: list[tuple[regex.Pattern[str], Responder]]
    ) -> str:
        for index, (pattern, responder) in enumerate(matchers):
            try:
                found = pattern.search(window, timeout=_MATCH_SECONDS)
            except TimeoutError:
                # A pattern that backtracks without end: dropped, and said so in the output.
                del matchers[index]
                io.on_output(
                    f"\r\n[runbook: the expect prompt /{responder.prompt.pattern}/ took too long"
                    " to match and is no longer used]\r\n".encode()
                )
                return window
            if found:
                self._child.send((responder.send + "\n").encode())
                if io.on_answer:
                    io.on_answer(responder, window)
                return ""
        return window

    def _step_group(self) -> int | None:
        """The step's process group: the pty's foreground job, never the session's own."""
        with contextlib.suppress(OSError):
            group = os.tcgetpgrp(self._child.child_fd)
            if group != os.getpgid(self._pid):
                return group
        return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._child.close(force=True)
        for fd in (self._commands, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        # The session's own EXIT trap may be removing it at the same moment.
        shutil.rmtree(self._workdir, ignore_errors=True)


def _shell_command(shell: str) -> tuple[str, list[str]]:
    """The program and options for the front matter's `shell`: bash, or `sh` as bash in POSIX
    mode. The session's protocol (PROMPT_COMMAND, `declare -p`) needs bash."""
    words = shlex.split(shell) or ["bash"]
    name = os.path.basename(words[0])
    if name.startswith("bash"):
        return words[0], words[1:]
    if name == "sh":
        return shutil.which("bash") or "bash", ["--posix", *words[1:]]
    raise ShellError(
        f"shell: {shell} is not supported: steps run in a bash session"
        " (`shell: bash`, or `shell: sh` for bash in POSIX mode)"
    )


def check_answers(io: StepIO) -> None:
    """Refuse an `expect` answer that would type a second line without being marked so."""
    for responder in io.responders:
        if not responder.multiline and ("\n" in responder.send or "\r" in responder.send):
            raise StepRefused(
                f"the answer to the expect prompt /{responder.prompt.pattern}/ holds a line"
                " break, which would type a second line; mark that answer `multiline: true`"
                " if it is meant"
            )


def _notice(io: StepIO, text: str) -> None:
    if io.on_notice is not None:
        io.on_notice(text)
    else:
        io.on_output(f"\r\n[runbook: {text}]\r\n".encode())


# System calls (x86_64, aarch64) a process makes while it waits to read the terminal.
_READS = {"x86_64": {0, 17, 19, 7, 23, 270, 271}, "aarch64": {63, 65, 67, 72, 73}}.get(
    os.uname().machine, set()
)


class _InputWatch:
    """Tells a step that waits for an answer: its output ends without a line break (or it
    printed nothing), it has been quiet a moment, and a process of its foreground group is
    blocked reading the terminal (from /proc: its system call and the file it reads)."""

    def __init__(self, pty_name: str | None) -> None:
        self._pty = pty_name
        self._last = time.monotonic()
        self._tail = b""
        self._said = False  # said for this quiet moment; new output asks again
        self._checked = 0.0

    def output(self, data: bytes, now: float) -> None:
        if data:
            self._last = now
            self._tail = (self._tail + data[-200:])[-200:]  # not a copy of the whole chunk
            self._said = False

    def last_line(self) -> str:
        return self._tail.rpartition(b"\n")[2].decode("utf-8", "replace")

    def quiet(self, now: float) -> bool:
        """Quiet a moment after output that ends without a line break, not yet said, and
        not checked a moment ago: time to look whether the step reads its terminal."""
        if self._said or now - self._last < QUIET_SECONDS or self._tail.endswith(b"\n"):
            return False
        if now - self._checked < QUIET_SECONDS:
            return False
        self._checked = now
        return True

    def waiting(self, now: float, fd: int) -> bool:
        if self._pty is None or not _READS or not self.quiet(now):
            return False
        try:
            group = os.tcgetpgrp(fd)
        except OSError:
            return False
        if any(_reads_terminal(pid, self._pty) for pid in _group_members(group)):
            self._said = True
        return self._said


def _group_members(group: int) -> list[int]:
    """The processes of a process group: its leader first (a `read` in the step's own shell),
    then the others, found in /proc."""
    members = [group]
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != group:
                fields = reaper.process_stat(int(name))
                if fields is not None and fields[2] == group:
                    members.append(int(name))
    return members


def _reads_terminal(pid: int, pty: str) -> bool:
    try:
        with open(f"/proc/{pid}/syscall") as file:
            words = file.read().split()
    except OSError:
        return False
    if not words or not words[0].isdigit() or int(words[0]) not in _READS:
        return False
    try:
        target = os.readlink(f"/proc/{pid}/fd/{int(words[1], 16)}")
    except (OSError, ValueError, IndexError):
        return False
    return target == pty or target == "/dev/tty"


class _ModeWatch:
    """Terminal modes a step's output turned on (the alternate screen, a hidden cursor,
    application keys, bracketed paste, mouse reports): put back when it ends without doing so."""

    _SET = re.compile(rb"\x1b\[\?([\d;]+)([hl])|\x1b([=>])")
    _RESET: ClassVar[dict[bytes, bytes]] = {
        b"1049": b"\x1b[?1049l",
        b"1047": b"\x1b[?1047l",
        b"47": b"\x1b[?47l",
        b"25": b"\x1b[?25h",  # the cursor shown again
        b"1": b"\x1b[?1l",
        b"2004": b"\x1b[?2004l",
        b"1000": b"\x1b[?1000l",
        b"1002": b"\x1b[?1002l",
        b"1003": b"\x1b[?1003l",
        b"1006": b"\x1b[?1006l",
    }

    def __init__(self) -> None:
        self._on: dict[bytes, bool] = {}

    def feed(self, data: bytes) -> None:
        for match in self._SET.finditer(data):
            if match.group(3):
                self._on[b"keypad"] = match.group(3) == b"="
                continue
            for mode in match.group(1).split(b";"):
                if mode in self._RESET:
                    # Set means `h`, except the cursor, hidden by `l`.
                    self._on[mode] = (match.group(2) == b"l") == (mode == b"25")

    @property
    def changed(self) -> bool:
        return any(self._on.values())

    def reset(self) -> bytes:
        out = b"".join(
            b"\x1b>" if mode == b"keypad" else self._RESET[mode]
            for mode, on in self._on.items()
            if on
        )
        self._on.clear()
        return out


def _timed_pattern(prompt: re.Pattern[str]) -> regex.Pattern[str]:
    """The prompt compiled by `regex`, whose searches take a time limit (`re`'s cannot).
    Imported here: only steps with `expect` answers need it (10 ms of start-up)."""
    import regex

    try:
        return regex.compile(prompt.pattern, prompt.flags)
    except (regex.error, ValueError):
        raise StepRefused(f"expect prompt /{prompt.pattern}/ cannot be used: {prompt}") from None


# Anything that can set a variable, define a function or change directory. A step without
# any of these cannot change the session, so its state is not saved and read back (about
# 2 ms a step); a false match only costs that time.
_STATEFUL = re.compile(
    r"=|\+\+|--|\(\(|\(\)|\b(cd|pushd|popd|read|readarray|mapfile|printf|declare|typeset"
    r"|local|export|readonly|unset|getopts|let|for|select|eval|source|function|alias|set"
    r"|shopt|enable|builtin|command|exec|trap|umask|ulimit|hash)\b|(^|[\s;&|(])\.\s"
)


# Anything that can leave a process running after the step ends: a background job, a
# daemonising ssh or a detached program. Only such steps are looked at after they end.
_BACKGROUND = re.compile(r"(?<![&>|])&(?![&>])|\b(ssh|nohup|setsid|disown|daemon\w*)\b")
# Variables bash sets itself, different in every session: never recorded.
_NOT_RECORDED = frozenset(
    {
        "_",
        "COLUMNS",
        "LINES",
        "BASHOPTS",
        "SHELLOPTS",
        "BASH_VERSINFO",
        "BASH_ARGV0",
        "EUID",
        "PPID",
        "UID",
        "GROUPS",
        "EPOCHREALTIME",
        "EPOCHSECONDS",
        "SHLVL",
        "OPTIND",
        "OPTERR",
        "BASH_LOADABLES_PATH",
        "BASH_ARGC",
        "BASH_ARGV",
        "BASH_SOURCE",
        "COMP_WORDBREAKS",
        "DIRSTACK",
    }
)
_FUNCTION = re.compile(r"^(\S+) \(\) $", re.M)
_CD = "builtin cd -- "


def _parse_dump(text: str) -> tuple[str, dict[str, str], str | None]:
    """The variables (`declare -p` lines), functions and directory in a state file the
    session wrote."""
    head, _, rest = text.partition("#rb-functions\n")
    cwd = None
    last = rest.rstrip("\n").rpartition("\n")[2]
    if last.startswith(_CD):
        rest = rest[: rest.rstrip("\n").rfind(last)]
        with contextlib.suppress(ValueError):
            words = shlex.split(last[len(_CD) :])
            cwd = words[0] if len(words) == 1 else None
    return head, _entries(rest, _FUNCTION), cwd


def _changed_variables(head: str, baseline: frozenset[str]) -> dict[str, str]:
    """Each variable's `declare -p` line (one line each: bash writes a value with a line
    break as $'...'), but those the session started with and those bash sets itself. Set
    lookups, not parsing: a dump has hundreds of lines, a step changes a few."""
    changed: dict[str, str] = {}
    name = ""
    for line in head.splitlines(keepends=True):
        if line in baseline:
            name = ""
            continue
        if line.startswith("declare -"):
            name = line.split(" ", 2)[2].partition("=")[0].rstrip("\n") if " " in line[9:] else ""
            if name in _NOT_RECORDED or name.startswith("__rb_"):
                name = ""
            elif name:
                changed[name] = line
        elif name:  # a value over several lines, from a bash that writes it so
            changed[name] += line
    return changed


def _entries(text: str, start: re.Pattern[str]) -> dict[str, str]:
    found = list(start.finditer(text))
    return {
        match.group(1): text[match.start() : found[i + 1].start() if i + 1 < len(found) else None]
        for i, match in enumerate(found)
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def may_change_state(body: str) -> bool:
    """Whether a shell step could change variables, functions or the directory."""
    return _STATEFUL.search(body) is not None


def scratch_root() -> str | None:
    """Where the session keeps its step scripts and state: the user's runtime directory or
    /dev/shm (memory-backed: a file there costs ~20 us, on a disk's overlay up to 0.5 ms),
    else the usual temporary directory. Only the session itself (mode 0700) reads them."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _write_private(path: Path, text: str) -> None:
    """Create a file only the owner can read, with `text` in it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def _read_available(fd: int, limit: int = 256 * 1024) -> bytes:
    """One read, then whatever else is already waiting (a pty gives at most 4 KB a read):
    fewer, larger chunks for everything downstream. The rest is read without blocking, not
    after a select() each time: half the system calls. The reads are joined once at the end
    (a growing bytearray copied each byte about three times)."""
    reads: list[bytes] = []
    size = 0
    try:
        first = os.read(fd, 65536)
        if first:
            reads.append(first)
            size = len(first)
            os.set_blocking(fd, False)
            try:
                while size < limit:
                    more = os.read(fd, 65536)
                    if not more:
                        break
                    reads.append(more)
                    size += len(more)
            except BlockingIOError:
                pass  # nothing more is waiting
            finally:
                os.set_blocking(fd, True)
    except OSError:
        pass  # the pty closed: what was read is returned, and an empty read ends the session
    return reads[0] if len(reads) == 1 else b"".join(reads)


def _outcome(code: int, timed_out: bool, interrupted: bool, duration: float) -> Outcome:
    signum = code - 128 if code > 128 and (timed_out or interrupted or code - 128 < 32) else None
    return Outcome(code, signum, timed_out, interrupted, duration)
