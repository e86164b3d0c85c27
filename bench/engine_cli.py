"""What the benchmarks that time the real `runbook` CLI share: where it is, and its bytecode."""

from __future__ import annotations

import compileall
import shutil
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def runbook_command() -> str:
    """The `runbook` script next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "runbook"
    return str(local) if local.exists() else shutil.which("runbook") or "runbook"


def compile_engine() -> None:
    """Write the engine's .pyc files, as an install does. Part of the warm-up: where
    PYTHONDONTWRITEBYTECODE is set, an editable install would otherwise compile every module
    on every start (about 40 ms), which no installed engine does."""
    compileall.compile_dir(ENGINE, quiet=1)
