"""Finding and stopping a step's whole process tree, background and `setsid` children included.

A step's processes are found three ways, read from /proc (Linux): its process group, the
descendants of the session's shell, and the processes whose environment carries the step's tag
(an exported variable every child inherits, so a child that left the group with `setsid` or
was re-parented to init when its parent exited is still found). Only a process that both left
the session and cleared its environment (`env -i` under `setsid`) escapes; a cgroup would catch
it too, but needs a delegated cgroup most machines do not give a user. Where there is no /proc,
only the process group is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

TAG_VARIABLE = "RUNBOOK_STEP_TAG"
_PROC = "/proc"


@dataclass(frozen=True, slots=True)
class StepTree:
    """What identifies one step's processes."""

    tag: str
    shell_pid: int
    group: int | None = None


def find(tree: StepTree) -> set[int]:
    """The step's live processes (zombies excluded: they cannot be signalled away)."""
    if not os.path.isdir(_PROC):
        return set()
    parents: dict[int, int] = {}
    found: set[int] = set()
    needle = f"\0{TAG_VARIABLE}={tree.tag}\0".encode()
    own = {os.getpid(), tree.shell_pid}
    for name in os.listdir(_PROC):
        if not name.isdigit():
            continue
        pid = int(name)
        fields = _stat(pid)
        if fields is None or fields[0] == "Z":
            continue
        parents[pid] = fields[1]
        if pid in own:
            continue
        if (tree.group is not None and fields[2] == tree.group) or _environ_has(pid, needle):
            found.add(pid)
    for pid in parents:
        if pid not in own and _descends(pid, tree.shell_pid, parents):
            found.add(pid)
    return found


def signal_all(pids: set[int], group: int | None, signum: int) -> None:
    if group is not None:
        with contextlib.suppress(OSError):
            os.killpg(group, signum)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signum)


def stop(tree: StepTree, grace: float, first: int = signal.SIGTERM) -> set[int]:
    """Signal every process of the step (`first`, then SIGKILL after `grace` seconds for any
    still there); returns the processes that had to be killed."""
    pids = find(tree)
    if not pids and tree.group is None:
        return set()
    signal_all(pids, tree.group, first)
    if first == signal.SIGKILL:
        return pids
    until = time.monotonic() + grace
    while time.monotonic() < until:
        left = find(tree)
        if not left:
            return set()
        time.sleep(0.02)
    left = find(tree)
    signal_all(left, tree.group, signal.SIGKILL)
    return left


def process_stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent and process group of a process (None when it is gone)."""
    return _stat(pid)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """State, parent and process group of a process, from /proc/PID/stat."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as file:
            text = file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last `)`.
    rest = text[text.rfind(b")") + 2 :].split()
    try:
        return rest[0].decode(), int(rest[1]), int(rest[2])
    except (IndexError, ValueError):
        return None


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as file:
            return needle in b"\0" + file.read()
    except OSError:
        return False  # gone, or another user's (which the engine could not signal anyway)


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = 0
    while pid in parents and seen < 4096:
        pid = parents[pid]
        if pid == ancestor:
            return True
        seen += 1
    return False
