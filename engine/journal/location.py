"""Where the journal lives: `--journal`, else $RUNBOOK_JOURNAL, else `.runbook/journal.db`
under the project root (the nearest directory upwards holding mkdocs.yml or .git). A
`postgresql://` URL names a shared PostgreSQL journal instead of a file; it is shown and
recorded without its password."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "RUNBOOK_JOURNAL"
SCHEMES = ("postgresql://", "postgres://")

# A journal's location: a SQLite file, or a PostgreSQL URL (kept a str: a Path would eat "//").
Location = Path | str


def project_root(start: Path) -> Path:
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / "mkdocs.yml").is_file() or (directory / ".git").exists():
            return directory
    return start


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def journal_location(
    explicit: str | os.PathLike[str] | None = None, start: Path | None = None
) -> Location:
    """The journal asked for: a URL as it is, a file as a Path."""
    chosen = os.fspath(explicit) if explicit else os.environ.get(ENV_VAR)
    if chosen and is_url(chosen):
        return chosen
    if chosen:
        return Path(chosen).expanduser()
    return project_root(start or Path.cwd()) / ".runbook" / "journal.db"


def journal_path(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """The SQLite journal's file (for callers that only ever use a file)."""
    location = journal_location(explicit, start)
    if isinstance(location, str):
        raise ValueError(f"{shown(location)} is not a file")
    return location


def exists(location: Location) -> bool:
    """Whether runs may be recorded there (a server is asked only when it is opened)."""
    return isinstance(location, str) or location.exists()


def shown(location: Location) -> str:
    """The location as shown and recorded: a URL without its password."""
    if not isinstance(location, str):
        return str(location)
    try:
        parts = urlsplit(location)
        if parts.password is None:
            return location
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", location)
