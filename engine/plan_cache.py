"""A runbook's plan kept on disk by the sha256 of its bytes, so `run` of an unchanged file
skips the parser (markdown-it and its regular expressions are a third of the start-up).

The key covers everything the plan is a function of: the bytes, the path as given, the
Python version, the engine's own source (each module's size and modification time) and the
installed packages (their directory's modification time), so an edited runbook, an upgraded
engine or an upgraded markdown-it is parsed afresh. Entries live in the user's cache
directory (mode 0700; pickles are trusted like the engine's own code, so nobody else may
write there); any problem with the cache falls back to parsing, never to an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import site
import sys
import tempfile
from pathlib import Path

from engine.model import Runbook
from engine.plan import Plan

ENV_VAR = "RUNBOOK_PLAN_CACHE"  # a directory for the cache, or `off` to always parse
KEEP = 200  # entries kept; the oldest go when a new one is written past this
_ENGINE = Path(__file__).resolve().parent


def cache_dir() -> Path | None:
    """$RUNBOOK_PLAN_CACHE (None when `off`), else $XDG_CACHE_HOME/runbook/plans, else
    ~/.cache/runbook/plans."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return None if chosen.lower() in ("off", "0", "no") else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runbook" / "plans"


def _engine_fingerprint() -> bytes:
    """The engine's parsing code as it is now: the top-level modules' names, sizes, mtimes,
    and the installed packages' directories (an upgraded markdown-it changes their mtime)."""
    parts = [sys.version.encode()]
    for directory in site.getsitepackages():
        with contextlib.suppress(OSError):
            parts.append(f"{directory}:{os.stat(directory).st_mtime_ns}".encode())
    with os.scandir(_ENGINE) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.endswith(".py"):
                stat = entry.stat()
                parts.append(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return b"\n".join(parts)


def _key(data: bytes, shown: str) -> str:
    digest = hashlib.sha256(_engine_fingerprint())
    digest.update(b"\0" + shown.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(data)
    return digest.hexdigest()


def load_plan(path: Path) -> tuple[Runbook, Plan]:
    """The runbook at `path` and its plan: from the cache when its bytes were planned before.
    The file is read once (it may be a pipe)."""
    from engine.loader import read_bytes, runbook_of

    shown = str(path)
    data = read_bytes(path, shown)
    directory = cache_dir()
    if directory is None:
        return _planned(runbook_of(data, shown))
    entry = directory / (_key(data, shown) + ".pickle")
    with contextlib.suppress(Exception):
        if _private(entry.parent):
            plan = pickle.loads(entry.read_bytes())
            if isinstance(plan, Plan):
                return plan.runbook, plan
    runbook, plan = _planned(runbook_of(data, shown))
    if runbook.text and runbook.digest:
        _store(entry, plan)
    return runbook, plan


def _private(directory: Path) -> bool:
    """Ours, and nobody else may write there: only then is a pickle in it loaded."""
    stat = directory.stat()
    return stat.st_uid == os.getuid() and not stat.st_mode & 0o022


def _planned(runbook: Runbook) -> tuple[Runbook, Plan]:
    from engine.plan import plan_runbook

    return runbook, plan_runbook(runbook)


def _store(entry: Path, plan: Plan) -> None:
    """Written to a temporary file and renamed: a reader sees a whole entry or none."""
    with contextlib.suppress(Exception):
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(plan, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, entry)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _prune(entry.parent)


def _prune(directory: Path) -> None:
    entries = sorted(directory.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in entries[: max(len(entries) - KEEP, 0)]:
        with contextlib.suppress(OSError):
            old.unlink()
