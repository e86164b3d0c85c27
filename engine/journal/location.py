"""Where the journal lives: `--journal`, else $RUNBOOK_JOURNAL, else `.runbook/journal.db`
under the project root (the nearest directory upwards holding mkdocs.yml or .git)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "RUNBOOK_JOURNAL"


def project_root(start: Path) -> Path:
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "mkdocs.yml").is_file() or (directory / ".git").exists():
            return directory
    return start


def journal_path(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return project_root(start or Path.cwd()) / ".runbook" / "journal.db"
