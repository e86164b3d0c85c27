"""The shell driver: one bash session in a pty (pexpect) for the whole run.

Each step runs as a subshell job of that session, so it has its own process group (a timeout
or Ctrl-C stops its whole tree, background children included) while `cd` and variables carry
over: when the subshell exits, it writes its variables, functions and directory to a state
file that the session reads back before the next step. A unique marker, never `$`, tells the
end of a step and its exit status.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

# Interpreters that take the script file as their argument; any other reads it on stdin.
_FILE_ARGUMENT = frozenset(
    {"python", "python3", "node", "ruby", "perl", "bash", "sh", "zsh", "php"}
)
# Variables the session manages itself, never carried from a step to the session.
_NOT_CARRIED = (
    "RANDOM SRANDOM SECONDS LINENO HISTCMD PWD OLDPWD BASH_COMMAND BASH_SUBSHELL BASHPID "
    "PIPESTATUS FUNCNAME BASH_LINENO BASH_SOURCE BASH_ARGC BASH_ARGV BASH_REMATCH "
    "PROMPT_COMMAND PS1 PS2 __rb_status"
)
# Runs once when the session starts. __rb_save runs as the step's subshell exits: it drops
# the special variables (in that dying subshell only) and dumps the rest with builtins alone.
# PROMPT_COMMAND ends every command line, even one that Ctrl-C cut short: it reads the state
# back (at top level, where `declare` makes globals) and prints the marker with the status.
# Output is not post-processed: with ONLCR off (the one translation default termios makes),
# -opost changes no byte but takes the kernel's fast path, about 1.5 times the throughput.
_PRELUDE = r"""
stty -echo -onlcr -opost 2>/dev/null
PS1='' PS2='' PS3='' PS4='+ '
set +o history; unset HISTFILE
export PAGER=cat GIT_PAGER=cat SYSTEMD_PAGER= MANPAGER=cat LESS=-FRX
__rb_state=%(state)s
__rb_secrets=%(secrets)s
trap 'rm -rf -- %(workdir)s' EXIT
__rb_save() {
  [ "$2" = interactive ] && stty -echo 2>/dev/null
  builtin printf -v __rb_cd 'builtin cd -- %%q' "$PWD"
  builtin unset -v %(not_carried)s $__rb_private 2>/dev/null
  if [ -n "$__rb_secrets" ]; then  # no variable holding a secret is written to the state
    for __rb_v in %(all_variables)s; do
      for __rb_s in $__rb_secrets; do
        if [ -n "${!__rb_s}" ] && [[ ${!__rb_v} == *"${!__rb_s}"* ]]; then
          builtin unset -v "$__rb_v" 2>/dev/null; break
        fi
      done
    done
  fi
  { builtin declare -p; builtin declare -f
    [ "$__rb_keep_cwd" = 1 ] && builtin printf '%%s\n' "$__rb_cd"
  } > "$__rb_state" 2>/dev/null
  builtin exit "$1"
}
PROMPT_COMMAND='__rb_status=$?
[ -s "$__rb_state" ] && builtin source "$__rb_state" 2>/dev/null; : > "$__rb_state"
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


@dataclass(slots=True)
class StepIO:
    """What a running step talks to: where output goes, what answers prompts, and input."""

    on_output: Callable[[bytes], None]
    responders: Sequence[Responder] = ()
    on_answer: Callable[[Responder, str], None] | None = None
    input_fd: int | None = None
    interrupt_requested: Callable[[], bool] = field(default=lambda: False)
    tick: Callable[[], None] | None = None


class ShellError(Exception):
    """The session itself failed (could not start, or died): an engine error, not a step's."""


class ShellSession:
    """A persistent shell in a pty; `run_step` executes one step and reports its outcome."""

    def __init__(
        self,
        shell: str = "bash",
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        dimensions: tuple[int, int] = (24, 80),
        kill_grace: float = 2.0,
        secret_variables: tuple[str, ...] = (),
    ) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="runbook-", dir=scratch_root()))
        self._state = self._workdir / "state"
        self._state.touch(mode=0o600)
        self._token = secrets.token_hex(8)
        self._marker = re.compile(rb"\x1eRB" + self._token.encode() + rb":(\d+)\x1e")
        self._kill_grace = kill_grace
        self._count = 0
        full_env = dict(os.environ if env is None else env)
        full_env.update({"TERM": full_env.get("TERM", "xterm-256color"), "PAGER": "cat"})
        try:
            self._child = pexpect.spawn(
                shell,
                ["--noprofile", "--norc", "--noediting", "-i"],
                cwd=cwd,
                env=full_env,
                echo=False,
                dimensions=dimensions,
                encoding=None,
            )
        except (pexpect.ExceptionPexpect, OSError) as exc:
            raise ShellError(f"cannot start {shell}: {exc}") from None
        self._child.delaybeforesend = None
        self._child.delayafterclose = 0
        self._child.delayafterterminate = 0
        self._child.ptyproc.delayafterclose = 0
        self._child.ptyproc.delayafterterminate = 0
        prelude = _PRELUDE % {
            "state": shlex.quote(str(self._state)),
            "workdir": shlex.quote(str(self._workdir)),
            "secrets": shlex.quote(" ".join(secret_variables)),
            # Every variable's name, by prefix, without forking (no `$(compgen -v)`).
            "all_variables": " ".join(f"${{!{c}@}}" for c in string.ascii_letters + "_"),
            "not_carried": _NOT_CARRIED,
            "token": self._token,
        }
        self._child.send(prelude.encode())
        outcome = self._wait(StepIO(on_output=lambda _: None), None, time.monotonic())
        if outcome.exit_code is None:
            raise ShellError(f"{shell} did not start properly")

    def _send(self, script: str) -> None:
        """Type one command line: nothing is left in the terminal's input for the step's own
        programs to read, and PROMPT_COMMAND prints the marker when the line is done."""
        self._count += 1
        self._child.send(f"{script}\n".encode())

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
        script = self._workdir / f"step-{self._count}"
        _write_private(script, body)
        inner = ["stty echo 2>/dev/null"] if interactive else []
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
            mode = " interactive" if interactive else ""
            trap = f"trap '__rb_save $?{mode}' EXIT; "
        else:
            trap = ""  # nothing to carry over: no state to save and read back
        command = (
            f"__rb_keep_cwd={0 if cwd else 1}; __rb_private={shlex.quote(private)}; "
            f"( {trap}{'; '.join(inner)} )" + (" < /dev/null" if no_input else "")
        )
        started = time.monotonic()
        self._send(command)
        try:
            return self._wait(io, timeout, started)
        finally:
            script.unlink(missing_ok=True)

    def _wait(self, io: StepIO, timeout: float | None, started: float) -> Outcome:
        fd = self._child.child_fd
        pending = b""
        window = ""
        timed_out = interrupted = False
        presses = 0
        group: int | None = None
        kill_at: float | None = None
        deadline = started + timeout if timeout else None
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                group = self._step_group()
                self._kill_group(group, signal.SIGTERM)
                kill_at = now + self._kill_grace
            if kill_at is not None and now >= kill_at:
                self._kill_group(group, signal.SIGKILL)
                kill_at = None
            if io.interrupt_requested():
                interrupted = True
                presses += 1
                group = group or self._step_group()
                if presses < 3:
                    self._child.send(b"\x03")
                else:
                    self._kill_group(group, signal.SIGKILL)
            waits = [t for t in (deadline if not timed_out else None, kill_at) if t is not None]
            wait = max(0.0, min(waits) - now) if waits else 0.2
            readable = [fd] + ([io.input_fd] if io.input_fd is not None else [])
            try:
                ready, _, _ = select.select(readable, [], [], min(wait, 0.2))
            except InterruptedError:
                continue
            if not ready and io.tick is not None:
                io.tick()
            if io.input_fd is not None and io.input_fd in ready:
                data = os.read(io.input_fd, 4096)
                if data:
                    self._child.send(data)
            if fd not in ready:
                continue
            chunk = _read_available(fd)
            if not chunk:
                raise ShellError("the shell session ended unexpectedly")
            data = pending + chunk
            match = self._marker.search(data)
            if match:
                if match.start():
                    io.on_output(data[: match.start()])
                code = int(match.group(1))
                if timed_out:
                    # Whatever of the step's group outlived SIGTERM (it ignored it) goes now.
                    self._kill_group(group, signal.SIGKILL)
                return _outcome(code, timed_out, interrupted, time.monotonic() - started)
            # Hold back what could be the start of a marker split across reads.
            cut = data.rfind(b"\x1e")
            if cut >= 0 and len(data) - cut < 40:
                pending, data = data[cut:], data[:cut]
            else:
                pending = b""
            if data:
                io.on_output(data)
                if io.responders:
                    window = (window + data.decode("utf-8", "replace"))[-4096:]
                    window = self._respond(window, io)

    def _respond(self, window: str, io: StepIO) -> str:
        for responder in io.responders:
            if responder.prompt.search(window):
                self._child.send((responder.send + "\n").encode())
                if io.on_answer:
                    io.on_answer(responder, window)
                return ""
        return window

    def _step_group(self) -> int | None:
        """The step's process group: the pty's foreground job, never the session's own."""
        with contextlib.suppress(OSError):
            group = os.tcgetpgrp(self._child.child_fd)
            if group != os.getpgid(self._child.pid):
                return group
        return None

    def _kill_group(self, group: int | None, signum: int) -> None:
        if group is not None:
            with contextlib.suppress(OSError):
                os.killpg(group, signum)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._child.close(force=True)
        # The session's own EXIT trap may be removing it at the same moment.
        shutil.rmtree(self._workdir, ignore_errors=True)


# Anything that can set a variable, define a function or change directory. A step without
# any of these cannot change the session, so its state is not saved and read back (about
# 2 ms a step); a false match only costs that time.
_STATEFUL = re.compile(
    r"=|\+\+|--|\(\(|\(\)|\b(cd|pushd|popd|read|readarray|mapfile|printf|declare|typeset"
    r"|local|export|readonly|unset|getopts|let|for|select|eval|source|function|alias|set"
    r"|shopt|enable|builtin|command|exec|trap|umask|ulimit|hash)\b|(^|[\s;&|(])\.\s"
)


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
    after a select() each time: half the system calls."""
    data = bytearray()
    try:
        data += os.read(fd, 65536)
        if data:
            os.set_blocking(fd, False)
            try:
                while len(data) < limit:
                    more = os.read(fd, 65536)
                    if not more:
                        break
                    data += more
            except BlockingIOError:
                pass  # nothing more is waiting
            finally:
                os.set_blocking(fd, True)
    except OSError:
        pass  # the pty closed: what was read is returned, and an empty read ends the session
    return bytes(data)


def _outcome(code: int, timed_out: bool, interrupted: bool, duration: float) -> Outcome:
    signum = code - 128 if code > 128 and (timed_out or interrupted or code - 128 < 32) else None
    return Outcome(code, signum, timed_out, interrupted, duration)
