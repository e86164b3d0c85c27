"""The journal, tested from the outside: the real `runbook` CLI as a subprocess (or in a real
pty where a terminal matters), a real SQLite file in the test's temporary directory, and no
mocks. Each test points RUNBOOK_JOURNAL at its own file, so nothing is written into the repo.

- fault injection: the engine is killed with SIGKILL at many points of a run; the journal
  still verifies, the run shows as interrupted and `resume --yes` finishes it, running every
  step that had finished exactly once;
- tampering: bytes changed or rows deleted in the SQLite file are named by `log verify`;
- secrets: a secret parameter's value, base64 and URL-encoded forms reach no file of the
  journal, no `log` output and no terminal output;
- recorded fields, `log list` filters, search, show and export;
- the per-runbook lock, and resume after a failure.

The tests about the journal itself run on both backends (the `backend` fixture): a SQLite
file, and a database of its own on the tests' PostgreSQL server (conftest `postgres_server`).
Tampering with the SQLite file byte by byte is here; the same cases and the chain over runs on
both backends are in test_journal_backends.py.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import new_database, write_runbook

RUNBOOK = Path(sys.executable).parent / "runbook"
OPERATOR = "ops-tester"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


# -- helpers ----------------------------------------------------------------------------------


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: plain output, a throw-away HOME (so no personal git config), a
    fixed operator name, and the journal inside the test's directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FORCE_COLOR", "NO_COLOR", "COLUMNS", "LINES", "EDITOR", "VISUAL"}
        and not k.startswith("GIT_")
    }
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    scratch = tmp_path / "tmp"  # the engine's temporary files, left behind when it is killed
    scratch.mkdir(exist_ok=True)
    env.update(
        NO_COLOR="1",
        TERM="xterm-256color",
        HOME=str(home),
        TMPDIR=str(scratch),
        XDG_RUNTIME_DIR=str(scratch),  # where the shell session keeps its step scripts
        USER=OPERATOR,
        LOGNAME=OPERATOR,
        GIT_CONFIG_NOSYSTEM="1",
        RUNBOOK_JOURNAL=str(journal_file(tmp_path)),
    )
    env.update(extra)
    return env


_POSTGRES: dict[Path, str] = {}  # a test's tmp_path -> its PostgreSQL journal, when it has one


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The journal's backend for a test: its own file, or its own database."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        _POSTGRES[tmp_path] = new_database(server, "t_" + os.urandom(6).hex())
    yield request.param
    _POSTGRES.pop(tmp_path, None)


def journal_file(tmp_path: Path) -> Any:
    """The test's journal: a file (a Path), or a PostgreSQL URL (a str)."""
    return _POSTGRES.get(tmp_path) or tmp_path / "journal" / "journal.db"


def settled(tmp_path: Path) -> None:
    """After a kill: PostgreSQL has ended the dead engine's session (its locks are free)."""
    url = _POSTGRES.get(tmp_path)
    if url is None:
        return  # SQLite: the lock's pid tells at once
    sql = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    wait_until(lambda: rows(url, sql) == [(0,)], "the killed engine's session to end")


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *args],
        cwd=tmp_path,
        env=env or environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_all(tmp_path: Path, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several read-only commands at once (they only read the journal): a faster file."""
    env = environment(tmp_path)
    procs = [
        subprocess.Popen(
            [str(RUNBOOK), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def cli_json(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    done = cli(tmp_path, *args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """The engine in the background, in its own session (its pid is the python process);
    its terminal output goes to engine.log (a file: a pipe nobody reads could block it)."""
    with open(tmp_path / "engine.log", "ab") as log:
        return subprocess.Popen(
            [str(RUNBOOK), *args],
            cwd=tmp_path,
            env=environment(tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def rows(journal: Path | str, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
    """Read the journal directly (never creating it); nothing before its tables exist."""
    if isinstance(journal, str):
        import psycopg

        try:
            with psycopg.connect(journal, autocommit=True) as conn:
                return conn.execute(sql.replace("?", "%s"), args).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
    if not journal.exists():
        return []
    db = sqlite3.connect(journal, timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def write(journal: Path | str, sql: str, args: tuple[object, ...] = ()) -> None:
    """Change the journal directly (as a test's setup, not the engine)."""
    if isinstance(journal, str):
        import psycopg

        with psycopg.connect(journal, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), args)
        return
    with contextlib.closing(sqlite3.connect(journal, isolation_level=None)) as db:
        db.execute(sql, args)


def events(journal: Path | str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(kind, step, data) of each recorded event, in order."""
    found = rows(journal, "SELECT kind, step, data FROM events ORDER BY run_id, seq")
    return [(kind, step, json.loads(data)) for kind, step, data in found]


def wait_until(
    check: Callable[[], object], what: str, proc: subprocess.Popen[bytes] | None = None
) -> object:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the engine ended (exit {proc.returncode}) before {what}")
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (the shell session is in its own session)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children[ppid].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_engine(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the engine (the python process), reap it, then end what it left behind: the
    shell session and the step's process group, each in a process group of its own."""
    tree = descendants(proc.pid)
    groups = set()
    for pid in tree:
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for group in groups - {os.getpgrp()}:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def trace(tmp_path: Path) -> list[str]:
    path = tmp_path / "trace.txt"
    return path.read_text().split() if path.exists() else []


def only_run(tmp_path: Path) -> dict[str, Any]:
    runs = cli_json(tmp_path, "log", "list")
    assert isinstance(runs, list) and len(runs) == 1, runs
    return runs[0]


# -- 1. fault injection -----------------------------------------------------------------------

FAULT_RUNBOOK = """
---
title: Fault injection
---
# Fault injection

```bash {id: s1}
echo s1 >> trace.txt
echo "first step"
sleep 0.1
```

```bash {id: s2}
echo s2 >> trace.txt
for i in 1 2 3; do echo "tick $i"; sleep 0.1; done
```

```bash {id: s3}
echo s3 >> trace.txt
echo "third step"
sleep 0.1
```

```bash {id: s4}
echo s4 >> trace.txt
echo "begin long"
sleep 0.8
echo "end long"
```

```bash {id: s5}
echo s5 >> trace.txt
seq 1 300
sleep 0.1
```

```bash {id: s6}
echo s6 >> trace.txt
echo "last step"
sleep 0.3
```
"""
STEPS = ["s1", "s2", "s3", "s4", "s5", "s6"]


def _lines(n: int) -> Callable[[Path, list], bool]:
    return lambda tmp_path, recorded: len(trace(tmp_path)) >= n


def _finished(step: str) -> Callable[[Path, list], bool]:
    return lambda tmp_path, recorded: ("step-finished", step) in [(k, s) for k, s, _ in recorded]


def _output(step: str, text: str = "") -> Callable[[Path, list], bool]:
    return lambda tmp_path, recorded: any(
        k == "output" and s == step and text in d.get("text", "") for k, s, d in recorded
    )


KILL_POINTS: dict[str, Callable[[Path, list], bool]] = {
    "run-started, before the first step": lambda tmp_path, recorded: bool(recorded),
    "after 1 line in the trace": _lines(1),
    "during s2's output": _output("s2", "tick"),
    "just after s2 finished": _finished("s2"),
    "after 3 lines in the trace": _lines(3),
    "during s4's sleep": _output("s4", "begin long"),
    "after 5 lines in the trace": _lines(5),
    "just after s5 finished": _finished("s5"),
    "after 6 lines in the trace": _lines(6),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_then_verify_and_resume(tmp_path: Path, point: str, backend: str) -> None:
    write_runbook(tmp_path, FAULT_RUNBOOK)
    journal = journal_file(tmp_path)
    reached = KILL_POINTS[point]
    proc = start(tmp_path, "run", "rb.md", "--yes")
    try:
        wait_until(lambda: reached(tmp_path, events(journal)), point, proc)
    finally:
        kill_engine(proc)
    settled(tmp_path)

    recorded = events(journal)
    started = {s for k, s, _ in recorded if k == "step-started"}
    finished = {s for k, s, _ in recorded if k == "step-finished"}
    assert "run-finished" not in [k for k, _, _ in recorded]
    assert len(started - finished) <= 1
    before = collections.Counter(trace(tmp_path))
    assert all(before[s] == 1 for s in finished), before

    verified, listed, show = cli_all(
        tmp_path,
        ["log", "verify", "--all"],
        ["log", "list", "--format", "json"],
        ["log", "show", "last", "--format", "json"],
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the chains are intact" in verified.stderr
    [run] = json.loads(listed.stdout)
    assert run["status"] == "interrupted"
    assert run["ended"] is None
    shown = {s["id"]: s for s in json.loads(show.stdout)["steps"]}
    assert {s for s, step in shown.items() if step["status"]} == finished
    for step in started - finished:  # shown as started, with no result
        assert shown[step]["status"] is None
        [attempt] = shown[step]["attempts"]
        assert attempt["exit_code"] is None and attempt["status"] is None

    if started - finished:  # it may have run: never again without a word (issue 18, item 8)
        refused = cli(tmp_path, "resume", "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "may have run" in refused.stderr and "--rerun-unfinished" in refused.stderr
        assert collections.Counter(trace(tmp_path)) == before  # nothing ran
    resumed = cli(tmp_path, "resume", "--yes", "--rerun-unfinished")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "its process is gone" in resumed.stderr  # the killed engine's lock: stale
    after = collections.Counter(trace(tmp_path))
    for step in STEPS:
        assert after[step] >= 1, (step, after)
        # finished before the kill: not again; every other step: exactly one more time
        assert after[step] == before[step] + (0 if step in finished else 1), (step, before, after)
    assert set(after) == set(STEPS)

    verified = cli(tmp_path, "log", "verify", run["id"][:15])  # the chain goes on over resume
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert rows(journal, "SELECT status FROM runs") == [("succeeded",)]
    recorded = events(journal)
    last = {s: d["status"] for k, s, d in recorded if k == "step-finished"}
    assert last == dict.fromkeys(STEPS, "succeeded")
    # the step left without a result was put to the (unattended) operator: run it again
    decisions = [(s, d["answer"]) for k, s, d in recorded if d.get("question") == "unfinished"]
    assert decisions == [(step, "run") for step in started - finished]


# -- 2. tampering -----------------------------------------------------------------------------

TAMPER_RUNBOOK = """
---
title: Tamper target
---
# Tamper target

```bash {id: greet}
echo "hello from greet"
```

- [ ] look at the dashboard

```bash {id: count}
seq 1 3
exit 0
```
"""


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One ordinary successful run, recorded once; each tampering test works on a copy."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    write_runbook(tmp_path, TAMPER_RUNBOOK)
    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    return journal_file(tmp_path), only_run(tmp_path)["id"]


def seq_of(db: sqlite3.Connection, run_id: str, kind: str, step: str | None) -> int:
    return int(
        db.execute(
            "SELECT min(seq) FROM events WHERE run_id = ? AND kind = ? AND step IS ?",
            (run_id, kind, step),
        ).fetchone()[0]
    )


def change_data(db: sqlite3.Connection, run_id: str, seq: int, old: str, new: str) -> None:
    (data,) = db.execute(
        "SELECT data FROM events WHERE run_id = ? AND seq = ?", (run_id, seq)
    ).fetchone()
    assert old in data, data
    changed = data.replace(old, new, 1)
    assert (
        len(changed) == len(data) and sum(a != b for a, b in zip(data, changed, strict=True)) == 1
    )
    db.execute("UPDATE events SET data = ? WHERE run_id = ? AND seq = ?", (changed, run_id, seq))


def _output_byte(db: sqlite3.Connection, run_id: str) -> str:
    seq = seq_of(db, run_id, "output", "greet")
    change_data(db, run_id, seq, "hello", "hellO")
    return f"event {seq} (output, step greet) was changed"


def _command(db: sqlite3.Connection, run_id: str) -> str:
    seq = seq_of(db, run_id, "step-started", "count")
    change_data(db, run_id, seq, "seq 1 3", "seq 1 4")
    return f"event {seq} (step-started, step count) was changed"


def _exit_code(db: sqlite3.Connection, run_id: str) -> str:
    seq = seq_of(db, run_id, "step-finished", "greet")
    change_data(db, run_id, seq, '"exit_code":0', '"exit_code":1')
    return f"event {seq} (step-finished, step greet) was changed"


def _answer(db: sqlite3.Connection, run_id: str) -> str:
    seq = seq_of(db, run_id, "answer", "tamper-target-2")
    change_data(db, run_id, seq, '"question":"manual"', '"question":"manuaL"')
    return f"event {seq} (answer, step tamper-target-2) was changed"


def _delete_event(db: sqlite3.Connection, run_id: str) -> str:
    seq = seq_of(db, run_id, "step-finished", "greet")
    db.execute("DELETE FROM events WHERE run_id = ? AND seq = ?", (run_id, seq))
    return f"event {seq} is missing"


def _delete_last(db: sqlite3.Connection, run_id: str) -> str:
    (last,) = db.execute("SELECT max(seq) FROM events WHERE run_id = ?", (run_id,)).fetchone()
    db.execute("DELETE FROM events WHERE run_id = ? AND seq = ?", (run_id, last))
    return f"the run records {last} events but {last - 1} remain"


def _rehashed(db: sqlite3.Connection, run_id: str) -> str:
    """A forger who changes an output and recomputes that event's own hash."""
    from engine.journal.store import event_hash

    seq = seq_of(db, run_id, "output", "greet")
    change_data(db, run_id, seq, "hello", "jello")
    row = db.execute(
        "SELECT prev, kind, step, attempt, time, data FROM events WHERE run_id = ? AND seq = ?",
        (run_id, seq),
    ).fetchone()
    prev, kind, step, attempt, at, data = row
    digest = event_hash(prev, run_id, seq, kind, step, attempt, at, data)
    db.execute("UPDATE events SET hash = ? WHERE run_id = ? AND seq = ?", (digest, run_id, seq))
    (next_kind,) = db.execute(
        "SELECT kind FROM events WHERE run_id = ? AND seq = ?", (run_id, seq + 1)
    ).fetchone()
    return f"event {seq + 1} ({next_kind}) does not follow event {seq}"


def _runbook_text(db: sqlite3.Connection, run_id: str) -> str:
    db.execute(
        "UPDATE runbook_texts SET text = replace(text, 'seq 1 3', 'seq 1 4')"
        " WHERE digest = (SELECT digest FROM runs WHERE id = ?)",
        (run_id,),
    )
    return "the stored runbook text does not match its sha256"


TAMPERINGS: dict[str, Callable[[sqlite3.Connection, str], str]] = {
    "one byte of an output": _output_byte,
    "a command in step-started": _command,
    "an exit code in step-finished": _exit_code,
    "an operator's answer": _answer,
    "an event deleted": _delete_event,
    "the last event deleted": _delete_last,
    "an output changed and its hash recomputed": _rehashed,
    "the stored runbook text": _runbook_text,
}


def tampered_copy(tmp_path: Path, recorded_run: tuple[Path, str]) -> Path:
    journal, _ = recorded_run
    copy = journal_file(tmp_path)
    copy.parent.mkdir()
    with (
        contextlib.closing(sqlite3.connect(journal)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    return copy


def test_untampered_journal_verifies(tmp_path: Path, recorded_run: tuple[Path, str]) -> None:
    tampered_copy(tmp_path, recorded_run)
    _, run_id = recorded_run
    for args in (["--all"], [run_id[:17]]):
        done = cli(tmp_path, "log", "verify", *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"ok    {run_id}  "), done.stdout
        assert "1 run(s)" in done.stderr and "the chains are intact" in done.stderr


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_tampering_is_named(tmp_path: Path, recorded_run: tuple[Path, str], tampering: str) -> None:
    journal = tampered_copy(tmp_path, recorded_run)
    _, run_id = recorded_run
    with contextlib.closing(sqlite3.connect(journal, isolation_level=None)) as db:
        problem = TAMPERINGS[tampering](db, run_id)
    done = cli(tmp_path, "log", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL  {run_id}  {problem}" in done.stdout, done.stdout
    assert "1 failed" in done.stderr


@pytest.mark.parametrize(
    ("column", "value"),
    [("operator", "mallory"), ("status", "failed"), ("params", '{"env":"production"}')],
)
def test_tampered_run_summary_is_detected(
    tmp_path: Path, recorded_run: tuple[Path, str], column: str, value: str
) -> None:
    journal = tampered_copy(tmp_path, recorded_run)
    _, run_id = recorded_run
    with contextlib.closing(sqlite3.connect(journal, isolation_level=None)) as db:
        db.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, run_id))
    shown = cli_json(tmp_path, "log", "show", run_id)
    assert shown[column] == (json.loads(value) if column == "params" else value)
    done = cli(tmp_path, "log", "verify", run_id)
    assert done.returncode == 1, done.stdout  # passes today: "ok ... the chains are intact"


# -- 3. secrets -------------------------------------------------------------------------------

SECRET = "S3cr3t/Valu+e!x"
SECRET_RUNBOOK = """
---
title: Secret handling
params:
  token: {secret: true}
---
# Secret handling

```bash {id: raw}
echo "raw: $TOKEN"
echo "templated:" {{ token }}
```

```bash {id: encoded}
printf %s "$TOKEN" | base64
echo "$TOKEN" | base64
python3 -c 'import urllib.parse,os;print(urllib.parse.quote(os.environ["TOKEN"], safe=""))'
python3 -c 'import urllib.parse,os;print(urllib.parse.quote_plus(os.environ["TOKEN"]))'
```

```bash {id: split}
printf '%s' "${TOKEN:0:7}"; sleep 0.3; printf '%s\\n' "${TOKEN:7}"
```

```bash {id: login, expect: [{prompt: 'Password: ', send: '{{ token }}'}]}
read -r -p 'Password: ' pw
test "$pw" = "$TOKEN" && echo "login accepted"
```
"""


def secret_forms(value: str) -> dict[str, bytes]:
    raw = value.encode()
    return {
        "raw": raw,
        "base64": base64.b64encode(raw),
        "base64 unpadded": base64.b64encode(raw).rstrip(b"="),
        "url-encoded": urllib.parse.quote(value, safe="").encode(),
        "url-encoded (plus)": urllib.parse.quote_plus(value).encode(),
    }


def leaks(data: bytes, value: str = SECRET) -> list[str]:
    plain = ANSI.sub(b"", data).replace(b"\r", b"")
    return [name for name, form in secret_forms(value).items() if form in data or form in plain]


def run_in_pty(tmp_path: Path, *args: str) -> tuple[int, bytes]:
    child = pexpect.spawn(
        str(RUNBOOK),
        list(args),
        cwd=str(tmp_path),
        env=environment(tmp_path),
        dimensions=(40, 160),
        timeout=30,
    )
    output = child.read()  # to EOF
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1), output


def test_secret_value_and_its_encodings_never_recorded_or_shown(tmp_path: Path) -> None:
    write_runbook(tmp_path, SECRET_RUNBOOK)
    journal = journal_file(tmp_path)
    journal.parent.mkdir()
    # Hold a connection open through the run, so the WAL file is still there to inspect.
    with contextlib.closing(sqlite3.connect(journal)) as holder:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
        status, terminal = run_in_pty(tmp_path, "run", "rb.md", "-p", f"token={SECRET}", "--yes")
        files = {p.name: p.read_bytes() for p in journal.parent.rglob("*") if p.is_file()}
    assert status == 0, terminal.decode(errors="replace")
    assert files.get("journal.db-wal"), sorted(files)  # the WAL was there, and read

    # What the operator saw: the secret's placeholder, and the steps really got the value.
    assert leaks(terminal) == [], terminal.decode(errors="replace")
    text = ANSI.sub(b"", terminal).decode().replace("\r", "")
    assert "raw: [secret:token]" in text
    assert "templated: '[secret:token]'" in text or "templated: [secret:token]" in text
    assert text.count("[secret:token]") >= 8
    assert "login accepted" in text

    for name, data in files.items():
        assert leaks(data) == [], name
    assert any(b"[secret:token]" in data for data in files.values())

    run_id = only_run(tmp_path)["id"]
    outputs = {
        "log show": cli(tmp_path, "log", "show", run_id),
        "log show json": cli(tmp_path, "log", "show", run_id, "--format", "json"),
        "log export markdown": cli(tmp_path, "log", "export", run_id, "--format", "markdown"),
        "log export json": cli(tmp_path, "log", "export", run_id, "--format", "json"),
    }
    for name, done in outputs.items():
        assert done.returncode == 0, name
        assert leaks((done.stdout + done.stderr).encode()) == [], name
        assert "[secret:token]" in done.stdout, name
    record = json.loads(outputs["log show json"].stdout)
    assert record["params"] == {"token": "<secret>"}
    by_step = {s["id"]: s for s in record["steps"]}
    assert by_step["split"]["attempts"][0]["output"] == "[secret:token]\n"  # split across reads
    [expect] = by_step["login"]["answers"]
    assert expect["question"] == "expect" and expect["answer"] == "[secret:token]"
    assert cli(tmp_path, "log", "search", "S3cr3t").stdout == ""


def test_secret_url_encoded_with_default_safe_chars_is_masked(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          token: {secret: true}
        ---
        ```bash {id: url}
        python3 -c 'import urllib.parse,os;print(urllib.parse.quote(os.environ["TOKEN"]))'
        ```
        """,
    )
    done = cli(tmp_path, "run", "rb.md", "-p", f"token={SECRET}", "--yes")
    assert done.returncode == 0, done.stderr
    leaked = urllib.parse.quote(SECRET).encode()
    assert leaked not in done.stdout.encode()
    assert leaked not in journal_file(tmp_path).read_bytes()


def test_secret_expect_answer_is_masked_in_output(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ```bash {id: ask, expect: [{prompt: 'Passphrase: ', send: Hunter2Lit, secret: true}]}
        read -r -p 'Passphrase: ' pw
        echo "you typed $pw"
        ```
        """,
    )
    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 0, done.stderr
    record = cli_json(tmp_path, "log", "show", "last")
    [step] = record["steps"]
    assert step["answers"][0]["answer"] == "[secret]"
    assert "Hunter2Lit" not in step["attempts"][0]["output"]
    assert "Hunter2Lit" not in done.stdout


def test_killed_engine_leaves_no_secret_on_disk(tmp_path: Path) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        params:
          token: {secret: true}
        ---
        ```bash {id: slow}
        curl_token={{ token }}
        echo "waiting"; sleep 5
        ```
        """,
    )
    journal = journal_file(tmp_path)
    proc = start(tmp_path, "run", "rb.md", "--yes", "-p", f"token={SECRET}")
    try:
        wait_until(lambda: _output("slow", "waiting")(tmp_path, events(journal)), "output", proc)
    finally:
        kill_engine(proc)
    # The session's own clean-up may be removing files while they are read: gone is fine.
    time.sleep(0.5)
    left = {}
    for path in (tmp_path / "tmp").rglob("*"):
        # Files only: the session's command FIFO keeps nothing, and opening it would block
        # when the session was killed before its EXIT trap removed it (a busy machine).
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            if stat.S_ISREG(path.lstat().st_mode):
                left[path] = path.read_bytes()
    assert [str(p) for p, data in left.items() if leaks(data)] == []


# -- 4. what a run records --------------------------------------------------------------------

FIELDS_RUNBOOK = """
---
title: Deploy check
params:
  env_name: {default: staging}
---
# Deploy check

```bash {id: hello}
echo "deploying to $ENV_NAME"
echo {{ env_name }}
```

- [ ] Tell the on-call channel

```bash {id: ask, expect: [{prompt: 'Continue\\? ', send: 'yes'}]}
read -r -p 'Continue? ' reply
echo "reply was $reply"
```

```bash {id: nap}
sleep 0.3
```

```bash {id: flaky, on_failure: continue}
echo "about to fail"
exit 3
```
"""


def test_run_records_who_what_when_and_every_step(tmp_path: Path, backend: str) -> None:
    path = write_runbook(tmp_path, FIELDS_RUNBOOK)
    before = time.time()
    done = cli(tmp_path, "run", "rb.md", "-p", "env_name=production", "--yes")
    after = time.time()
    assert done.returncode == 1, done.stdout + done.stderr  # `flaky` failed (and went on)
    record = cli_json(tmp_path, "log", "show", "last")
    assert isinstance(record, dict)

    assert record["runbook"] == "rb.md" and record["title"] == "Deploy check"
    assert record["operator"] == OPERATOR and record["email"] is None
    assert record["host"] == socket.gethostname()
    assert record["status"] == "failed" and record["message"] == "some steps failed"
    assert record["params"] == {"env_name": "production"}
    assert record["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["git_commit"] is None and record["git_dirty"] is None
    for key in ("started", "ended"):
        assert WHEN.fullmatch(record[key]), record[key]
        stamp = time.mktime(time.strptime(record[key], "%Y-%m-%d %H:%M:%S UTC")) - time.timezone
        assert int(before) - 1 <= stamp <= after + 1
    assert 0.3 <= record["duration"] <= after - before

    steps = {s["id"]: s for s in record["steps"]}
    assert list(steps) == ["hello", "deploy-check-2", "ask", "nap", "flaky"]
    hello = steps["hello"]["attempts"][0]
    assert hello["command"] == 'echo "deploying to $ENV_NAME"\necho production\n'
    assert hello["output"] == "deploying to production\nproduction\n"
    assert hello["exit_code"] == 0 and hello["status"] == "succeeded"
    assert steps["nap"]["attempts"][0]["duration"] >= 0.3
    assert steps["flaky"]["attempts"][0]["exit_code"] == 3
    assert steps["flaky"]["status"] == "failed"
    assert "about to fail" in steps["flaky"]["attempts"][0]["output"]
    for step in ("hello", "ask", "nap", "flaky"):
        attempt = steps[step]["attempts"][0]
        assert isinstance(attempt["duration"], float) and attempt["duration"] >= 0
        assert WHEN.fullmatch(attempt["started"])

    # Nobody confirmed the manual step: the unattended answer and why are on record.
    manual = steps["deploy-check-2"]
    assert manual["kind"] == "manual" and manual["text"] == "Tell the on-call channel"
    [answer] = manual["answers"]
    assert answer["question"] == "manual" and "--yes" in answer["note"]
    assert (answer["answer"], manual["status"]) in {("done", "done"), ("skip", "skipped")}
    assert manual["reason"] == answer["note"]
    assert WHEN.fullmatch(answer["time"])

    [expect] = steps["ask"]["answers"]
    assert (expect["question"], expect["answer"], expect["pattern"]) == (
        "expect",
        "yes",
        r"Continue\? ",
    )
    assert "reply was yes" in steps["ask"]["attempts"][0]["output"]


def git(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(tmp_path), *args],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_run_in_git_work_tree_records_commit_and_dirty_flag(tmp_path: Path, backend: str) -> None:
    path = write_runbook(tmp_path, "```bash {id: one}\necho one\n```\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "ops@example.com")
    git(tmp_path, "config", "user.name", "Ops")
    git(tmp_path, "add", "rb.md")
    git(tmp_path, "commit", "-q", "-m", "runbook")
    head = git(tmp_path, "rev-parse", "HEAD")

    assert cli(tmp_path, "run", "rb.md", "--yes").returncode == 0
    clean = cli_json(tmp_path, "log", "show", "last")
    assert clean["git_commit"] == head and clean["git_dirty"] is False
    assert clean["email"] == "ops@example.com"

    path.write_text(path.read_text() + "\nAn uncommitted line.\n")
    assert cli(tmp_path, "run", "rb.md", "--yes").returncode == 0
    dirty = cli_json(tmp_path, "log", "show", "last")
    assert dirty["git_commit"] == head and dirty["git_dirty"] is True
    assert dirty["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert dirty["digest"] != clean["digest"]
    markdown = cli(tmp_path, "log", "export", "last", "--format", "markdown").stdout
    assert f"git `{head[:12]}` (uncommitted changes)" in markdown


# -- 5. log list, search, show, export --------------------------------------------------------

RECORDED = re.compile(r"Recorded as run (\S+):")


def run_as(tmp_path: Path, operator: str, runbook: str, status: int) -> str:
    env = environment(tmp_path, USER=operator, LOGNAME=operator)
    done = cli(tmp_path, "run", runbook, "--yes", env=env)
    assert done.returncode == status, done.stdout + done.stderr
    match = RECORDED.search(done.stdout)
    assert match, done.stdout
    return match.group(1)


def test_log_list_filters_search_show_and_export(tmp_path: Path, backend: str) -> None:
    write_runbook(
        tmp_path,
        """
        ---
        title: Zoo inventory
        ---
        # Zoo

        ```bash {id: zoo}
        echo "counting animals"
        echo "found one quokka""zebra in the north pen"
        ```

        ```bash {id: tidy}
        echo "tidy up"
        ```
        """,
        "a.md",
    )
    b = write_runbook(tmp_path, "```bash {id: broken}\necho no luck\nexit 4\n```\n", "b.md")
    first = run_as(tmp_path, "alice", "a.md", 0)
    second = run_as(tmp_path, "bob", "b.md", 1)
    third = run_as(tmp_path, "bob", "a.md", 0)
    # The oldest run started three days ago (the journal's own start time, moved back).
    write(
        journal_file(tmp_path),
        "UPDATE runs SET started = started - 3 * 86400 WHERE id = ?",
        (first,),
    )

    filters = {
        (): [third, second, first],  # newest first
        ("--status", "failed"): [second],
        ("--since", "1d"): [third, second],
        ("--runbook", "a.md"): [third, first],
        ("--runbook", str(b.resolve())): [second],
        ("--operator", "alice"): [first],
        ("--operator", "bob", "--runbook", "a.md"): [third],
    }
    others = {
        "bad since": ["log", "list", "--since", "lately"],
        "table": ["log", "list"],
        "search": ["log", "search", "quokkazebra", "--format", "json"],
        "search text": ["log", "search", "quokkazebra"],
        "search command": ["log", "search", "echo no luck", "--format", "json"],
        "step": ["log", "show", "last", "--step", "tidy", "--format", "json"],
        "step text": ["log", "show", "last", "--step", "tidy"],
        "no such step": ["log", "show", "last", "--step", "tidyy"],
        "markdown": ["log", "export", second, "--format", "markdown"],
        "json": ["log", "export", second, "--format", "json"],
    }
    done = cli_all(
        tmp_path,
        *(["log", "list", "--format", "json", *args] for args in filters),
        *others.values(),
    )
    for (args, expected), listed in zip(filters.items(), done[: len(filters)], strict=True):
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == expected, args
    out = dict(zip(others, done[len(filters) :], strict=True))

    assert out["bad since"].returncode == 2 and "--since lately" in out["bad since"].stderr
    table = out["table"].stdout.splitlines()
    assert [line.split()[0] for line in table[1:]] == [third, second, first]
    assert table[2].split()[4:7] == ["b.md", "bob", "failed"]

    line = "found one quokkazebra in the north pen"  # the word is in no command
    assert json.loads(out["search"].stdout) == [  # newest run first
        {"run": run, "runbook": "a.md", "step": "zoo", "field": "output", "line": line}
        for run in (third, first)
    ]
    text = out["search text"].stdout
    assert first in text and " zoo " in text and line in text
    [hit] = json.loads(out["search command"].stdout)
    assert (hit["run"], hit["step"], hit["field"]) == (second, "broken", "command")

    one = json.loads(out["step"].stdout)
    assert one["id"] == third
    assert [s["id"] for s in one["steps"]] == ["tidy"]
    assert one["steps"][0]["attempts"][0]["output"] == "tidy up\n"
    shown = out["step text"].stdout
    assert "tidy" in shown and '$ echo "tidy up"' in shown and "zoo" not in shown
    missing = out["no such step"]
    assert missing.returncode == 2 and "did you mean" in missing.stderr.lower()

    assert out["markdown"].returncode == 0
    lines = out["markdown"].stdout.splitlines()
    assert lines[0] == f"# Run {second}: b"
    assert "## Steps" in lines and "### broken: failed" in lines
    assert f"| Operator | bob on {socket.gethostname()} |" in lines
    assert "```bash" in lines and "echo no luck" in lines and "exit 4" in lines
    assert any(line.startswith("Attempt 1,") and line.endswith("exit 4:") for line in lines)
    exported = json.loads(out["json"].stdout)
    assert exported["id"] == second and exported["status"] == "failed"
    assert exported["steps"][0]["attempts"][0]["exit_code"] == 4


def test_unknown_run_prefix_is_a_one_line_error(tmp_path: Path, backend: str) -> None:
    write_runbook(tmp_path, "```bash\necho hi\n```\n")
    assert cli(tmp_path, "run", "rb.md", "--yes").returncode == 0
    commands = [
        ["log", "show", "1999"],
        ["log", "export", "1999", "--format", "json"],
        ["log", "verify", "1999"],
        ["resume", "1999", "--yes"],
    ]
    for args, done in zip(commands, cli_all(tmp_path, *commands), strict=True):
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert done.stdout == "", args
        assert done.stderr == "runbook: error: no run has an id starting with '1999'\n", args


# -- 6. one active run per runbook and journal ------------------------------------------------

LONG_RUNBOOK = """
---
title: Long job
params:
  nap: {default: "0"}
---
```bash {id: long}
echo "begin"
sleep {{ nap }}
echo "end"
```
"""


def start_long(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A run of the long runbook, waited for until its step is running; and its run id."""
    proc = start(tmp_path, "run", "rb.md", "--yes", "-p", "nap=60")  # killed by each test
    journal = journal_file(tmp_path)

    def running() -> str | None:
        found = rows(
            journal,
            "SELECT run_id FROM events WHERE kind = 'step-started' AND step = 'long'"
            " AND run_id IN (SELECT id FROM runs WHERE pid = ?)",
            (proc.pid,),
        )
        return found[0][0] if found else None

    run_id = wait_until(running, "the long step to start", proc)
    assert isinstance(run_id, str)
    return proc, run_id


def test_second_run_is_refused_naming_the_holder_and_force_overrides(
    tmp_path: Path, backend: str
) -> None:
    write_runbook(tmp_path, LONG_RUNBOOK)
    proc, run_id = start_long(tmp_path)
    try:
        refused = cli(tmp_path, "run", "rb.md", "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        [message] = refused.stderr.splitlines()
        assert message.startswith("runbook: error: rb.md is already running: ")
        assert f"run {run_id} by {OPERATOR} on {socket.gethostname()} (pid {proc.pid})" in message
        assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", message)
        assert "--force" in message
        assert refused.stdout == ""

        still = cli(tmp_path, "resume", run_id, "--yes")
        assert still.returncode == 2 and "is still running" in still.stderr

        forced = cli(tmp_path, "run", "rb.md", "--yes", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert f"running beside run {run_id}" in forced.stderr
        assert proc.poll() is None  # the first run goes on
    finally:
        kill_engine(proc)
    settled(tmp_path)
    runs = cli_json(tmp_path, "log", "list")
    assert [r["status"] for r in runs] == ["succeeded", "interrupted"]
    assert len(runs) == 2  # the refused run left no record


def test_lock_of_a_killed_run_is_stale_and_does_not_block(tmp_path: Path, backend: str) -> None:
    write_runbook(tmp_path, LONG_RUNBOOK)
    proc, run_id = start_long(tmp_path)
    pid = proc.pid
    kill_engine(proc)
    settled(tmp_path)
    assert rows(journal_file(tmp_path), "SELECT run_id, pid FROM active") == [(run_id, pid)]

    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    [warning] = done.stderr.splitlines()
    assert warning.startswith(f"runbook: warning: replaced the stale lock of run {run_id} by ")
    assert f"(pid {pid})" in warning and warning.endswith("its process is gone")
    assert rows(journal_file(tmp_path), "SELECT count(*) FROM active") == [(0,)]
    statuses = [r["status"] for r in cli_json(tmp_path, "log", "list")]
    assert statuses == ["succeeded", "interrupted"]


def test_forced_run_leaves_the_first_runs_lock_in_place(tmp_path: Path, backend: str) -> None:
    write_runbook(tmp_path, LONG_RUNBOOK)
    proc, run_id = start_long(tmp_path)
    try:
        assert cli(tmp_path, "run", "rb.md", "--yes", "--force").returncode == 0
        assert proc.poll() is None
        third = cli(tmp_path, "run", "rb.md", "--yes")
        assert third.returncode == 2, third.stdout + third.stderr
        assert run_id in third.stderr
    finally:
        kill_engine(proc)


# -- 7. resume after a failure ----------------------------------------------------------------

RESUME_RUNBOOK = """
---
title: Needs a flag
---
```bash {id: prepare}
echo prepare >> trace.txt
```

```bash {id: check}
echo check >> trace.txt
test -f flag || exit 1
```

```bash {id: apply}
echo apply >> trace.txt
```

```bash {id: report}
echo report >> trace.txt
```
"""


def failed_run(tmp_path: Path) -> str:
    write_runbook(tmp_path, RESUME_RUNBOOK)
    done = cli(tmp_path, "run", "rb.md", "--yes")
    assert done.returncode == 1, done.stdout + done.stderr
    run = only_run(tmp_path)
    assert run["status"] == "failed"
    assert trace(tmp_path) == ["prepare", "check"]
    return str(run["id"])


def test_resume_runs_only_the_failed_and_remaining_steps(tmp_path: Path, backend: str) -> None:
    run_id = failed_run(tmp_path)
    (tmp_path / "flag").touch()
    done = cli(tmp_path, "resume", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert trace(tmp_path) == ["prepare", "check", "check", "apply", "report"]

    record = cli_json(tmp_path, "log", "show", run_id)
    assert record["status"] == "succeeded"
    steps = {s["id"]: s for s in record["steps"]}
    assert [a["exit_code"] for a in steps["check"]["attempts"]] == [1, 0]
    assert [len(steps[s]["attempts"]) for s in ("prepare", "apply", "report")] == [1, 1, 1]
    assert cli(tmp_path, "log", "verify", run_id).returncode == 0
    again = cli(tmp_path, "resume", "--yes")
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_resume_refuses_a_changed_runbook_unless_forced(tmp_path: Path, backend: str) -> None:
    run_id = failed_run(tmp_path)
    (tmp_path / "flag").touch()
    path = tmp_path / "rb.md"
    path.write_text(path.read_text().replace("echo apply >>", "echo apply-v2 >>"))

    refused = cli(tmp_path, "resume", run_id, "--yes")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    [message] = refused.stderr.splitlines()
    assert f"rb.md changed since run {run_id} started (apply: changed)" in message
    assert "--force" in message
    assert trace(tmp_path) == ["prepare", "check"]  # nothing ran

    forced = cli(tmp_path, "resume", run_id, "--yes", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert trace(tmp_path) == ["prepare", "check", "check", "apply-v2", "report"]
    assert cli_json(tmp_path, "log", "show", run_id)["status"] == "succeeded"
