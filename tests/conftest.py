"""Shared helpers: parse and plan plain strings, summarise diagnostics as (code, line), write
runbooks, run the CLI; and a hermetic environment for every test."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.diagnostics import Diagnostic
from engine.model import Runbook
from engine.parse import parse_runbook
from engine.plan import Plan, plan_runbook

RUNBOOK = Path(sys.executable).parent / "runbook"

# What the engine, rich or the editor hook read from the environment: a caller's shell must
# not change what a test sees (a RUNBOOK_JOURNAL there would send runs to the caller's journal).
ENGINE_VARIABLES = (
    "RUNBOOK_JOURNAL",
    "RUNBOOK_JOURNAL_KEY",
    "EDITOR",
    "VISUAL",
    "FORCE_COLOR",
    "NO_COLOR",
    "COLUMNS",
    "LINES",
    "PAGER",
)


@pytest.fixture(scope="session", autouse=True)
def plan_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own plan cache (engine/plan_cache.py), never the user's: set for the whole
    session, so module fixtures that run the CLI before `hermetic` use it too."""
    directory = tmp_path_factory.mktemp("plan-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNBOOK_PLAN_CACHE", str(directory))
        yield directory


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, plan_cache: Path) -> None:
    """Every test starts without the variables the engine reads (for in-process code and for
    every process a test starts from `os.environ`), and with a plan cache of its session's."""
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNBOOK_PLAN_CACHE", str(plan_cache))


def parse(text: str) -> Runbook:
    return parse_runbook(textwrap.dedent(text).lstrip("\n"), "t.md")


def plan(text: str) -> Plan:
    return plan_runbook(parse(text))


def found(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> list[tuple[str, int]]:
    """(code, line) of each diagnostic, in order: what most tests compare."""
    return [(d.code, d.location.line) for d in diagnostics]


def write_runbook(directory: Path, text: str, name: str = "rb.md") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The (already hermetic) environment, plain output, and a throw-away HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ENGINE_VARIABLES}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "canary").write_text("still here\n")  # a command that escaped its quoting hits it
    env.update(NO_COLOR="1", TERM="xterm-256color", HOME=str(home), **extra)
    return env


def run_cli(
    tmp_path: Path, *args: str | Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`runbook ARGS...` with no terminal (stdin from /dev/null, output to pipes)."""
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        cwd=cwd or tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(tmp_path, COLUMNS="200", **env),
        check=False,
    )


@pytest.fixture
def fence() -> str:
    return "```"


# -- a real PostgreSQL server for the journal's tests -----------------------------------------

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PASSWORD = "pg-Pa55word"  # the tests' server only; it must reach no record


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server of the tests' own: initdb into a temporary directory, listening
    only on 127.0.0.1 on a free port, password authentication, stopped at the end. Run as
    the `postgres` user when the tests run as root (PostgreSQL refuses root). Yields the
    server's URL without a database name."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *as_user,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=60"
    )
    subprocess.run(
        [
            *as_user,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


def new_database(server: str, name: str) -> str:
    """A fresh, empty database on the tests' server; its URL."""
    import psycopg

    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


# The browser tests drive Debian's chromium through Playwright.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """`python -m http.server` for `directory` on 127.0.0.1, a port the system picks; its URL."""
    command = [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--directory", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 10)
        line = process.stdout.readline() if ready and process.stdout else ""
        match = re.search(r"port (\d+)", line)
        assert match, f"http.server did not say where it listens: {line!r}"
        url = f"http://127.0.0.1:{match.group(1)}/"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
