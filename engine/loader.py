"""Reading runbook files: bytes from disk, decoded and parsed into the model.

The one place the CLI turns a path into a Runbook, so check, show and run read files alike.
"""

from __future__ import annotations

import hashlib
import os
import select
import stat
from dataclasses import replace
from pathlib import Path

from engine.diagnostics import DiagnosticSink
from engine.model import Runbook

PIPE_WAIT = 10.0  # seconds a named pipe may take to bring its first byte
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "site", "__pycache__"})


class RunbookNotFound(Exception):
    """A path the user named that is not a readable runbook file or directory."""


def read_runbook(path: Path, display: str | None = None) -> Runbook:
    """Read, decode and parse one runbook; encoding problems join its diagnostics."""
    shown = display or str(path)
    return runbook_of(read_bytes(path, shown), shown)


def read_bytes(path: Path, shown: str) -> bytes:
    """A runbook file's bytes, read once (it may be a pipe: `runbook run <(...)`)."""
    try:
        return read_regular_file(path)
    except IsADirectoryError:
        raise RunbookNotFound(f"{shown}: is a directory, not a runbook file") from None
    except FileNotFoundError:
        raise RunbookNotFound(f"{shown}: no such file") from None
    except OSError as exc:
        raise RunbookNotFound(f"{shown}: cannot read: {exc.strerror}") from None


def runbook_of(data: bytes, shown: str) -> Runbook:
    """Decode and parse a runbook's bytes."""
    # Imported here: `run` of a planned file (engine/plan_cache.py) never loads the parser.
    from engine.parse import parse_runbook
    from engine.source import decode_source, report_mojibake

    sink = DiagnosticSink(shown)
    text = decode_source(data, sink)
    if not sink.items:
        report_mojibake(text, sink)
    runbook = parse_runbook(text, shown)
    return replace(
        runbook,
        diagnostics=tuple(sink.items) + runbook.diagnostics,
        text=text,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def read_regular_file(path: Path) -> bytes:
    """A file's bytes, or a pipe's (`runbook run <(...)`). Opened without blocking: a FIFO
    nobody writes to within PIPE_WAIT seconds is refused instead of waited on for ever, and a
    device or a socket, which would never end, is refused; both as an OSError saying why."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise OSError(0, "a device or a socket, not a file that can be read to its end")
        if stat.S_ISFIFO(mode):
            ready, _, _ = select.select([descriptor], [], [], PIPE_WAIT)
            if not ready:
                raise OSError(0, f"a pipe nothing was written to in {PIPE_WAIT:g} s")
        os.set_blocking(descriptor, True)
        return file.read()


def find_runbooks(paths: list[Path]) -> list[Path]:
    """The files named, and every `*.md` below the directories named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*.md")
                    if p.is_file() and not SKIPPED_DIRS.intersection(p.relative_to(path).parts)
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise RunbookNotFound(f"{path}: no such file or directory")
    return found
