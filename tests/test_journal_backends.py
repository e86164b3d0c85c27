"""The journal on both backends: SQLite and a real PostgreSQL server of the tests' own
(`postgres_server` in conftest). The same tests run on each: recording, list/show/search/
export, the chain over runs and every tamper case it catches (a changed event, events deleted
from a run's end, a deleted run, reordered runs, a rollback given an earlier head, a forgery
without the key), the lock between two hosts, kill -9 and resume, copy and schema versions.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.events import RunSealed, from_data, to_data
from engine.journal.chain import SEAL, event_hash
from engine.journal.store import canonical
from tests.conftest import PG_PASSWORD, new_database, write_runbook
from tests.test_journal import RUNBOOK, kill_engine, wait_until
from tests.test_journal import environment as base_environment

BACKENDS = ["sqlite", "postgresql"]
OPERATOR = "ops-tester"


@pytest.fixture(params=BACKENDS)
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty journal: a file, or a new database on the tests' server."""
    if request.param == "sqlite":
        return str(tmp_path / "journal" / "journal.db")
    server = request.getfixturevalue("postgres_server")
    return new_database(server, "j_" + uuid.uuid4().hex[:12])


def env(tmp_path: Path, journal: str, **extra: str) -> dict[str, str]:
    return base_environment(tmp_path, RUNBOOK_JOURNAL=journal, **extra)


def cli(tmp_path: Path, journal: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNBOOK), *args],
        cwd=tmp_path,
        env=env(tmp_path, journal, **extra),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def cli_json(tmp_path: Path, journal: str, *args: str) -> Any:
    done = cli(tmp_path, journal, *args, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@contextlib.contextmanager
def database(journal: str) -> Iterator[Any]:
    """The journal's tables, straight (as a tamperer sees them): `execute(sql, args)` with
    `?` placeholders on either backend, autocommitted."""
    if journal.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(journal, autocommit=True) as conn:

            class Q:
                def execute(self, sql: str, args: tuple[object, ...] = ()) -> Any:
                    return conn.execute(sql.replace("?", "%s"), args)

            yield Q()
    else:
        with contextlib.closing(sqlite3.connect(journal, isolation_level=None)) as db:
            yield db


def run_ok(tmp_path: Path, journal: str, name: str = "rb.md", **extra: str) -> str:
    done = cli(tmp_path, journal, "run", name, "--yes", **extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return cli_json(tmp_path, journal, "log", "show", "last")["id"]


RUNBOOK_TEXT = """
---
title: Zoo inventory
---
# Zoo

```bash {id: zoo}
echo "found one quokka""zebra in the north pen"
```

- [ ] look at the dashboard
"""


def test_record_list_search_show_export_verify(tmp_path: Path, journal: str) -> None:
    write_runbook(tmp_path, RUNBOOK_TEXT, "a.md")
    write_runbook(tmp_path, "```bash {id: broken}\necho no luck\nexit 4\n```\n", "b.md")
    first = run_ok(tmp_path, journal, "a.md", USER="alice", LOGNAME="alice")
    failed = cli(tmp_path, journal, "run", "b.md", "--yes", USER="bob", LOGNAME="bob")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    second = cli_json(tmp_path, journal, "log", "show", "last")["id"]

    listed = cli_json(tmp_path, journal, "log", "list")
    assert [r["id"] for r in listed] == [second, first]
    assert [r["status"] for r in listed] == ["failed", "succeeded"]
    host = socket.gethostname()
    assert [r["id"] for r in cli_json(tmp_path, journal, "log", "list", "--host", host)] == [
        second,
        first,
    ]
    assert cli_json(tmp_path, journal, "log", "list", "--host", "elsewhere") == []
    assert [r["id"] for r in cli_json(tmp_path, journal, "log", "list", "--operator", "bob")] == [
        second
    ]
    assert [r["id"] for r in cli_json(tmp_path, journal, "log", "list", "--status", "failed")] == [
        second
    ]

    [hit] = cli_json(tmp_path, journal, "log", "search", "quokkazebra")
    assert (hit["run"], hit["step"], hit["field"]) == (first, "zoo", "output")
    assert hit["line"] == "found one quokkazebra in the north pen"
    [command] = cli_json(tmp_path, journal, "log", "search", "echo no luck")
    assert (command["run"], command["field"]) == (second, "command")

    shown = cli_json(tmp_path, journal, "log", "show", first)
    assert shown["operator"] == "alice" and shown["host"] == host
    assert shown["steps"][0]["attempts"][0]["output"] == "found one quokkazebra in the north pen\n"
    markdown = cli(tmp_path, journal, "log", "export", second, "--format", "markdown").stdout
    assert f"# Run {second}: b" in markdown and "exit 4" in markdown

    verified = cli(tmp_path, journal, "log", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "2 seal(s)" in verified.stderr
    head = cli_json(tmp_path, journal, "log", "head")
    assert (head["runs"], head["seals"]) == (2, 2) and len(head["head"]) == 64
    assert cli(tmp_path, journal, "log", "verify", "--since-head", head["head"]).returncode == 0
    assert PG_PASSWORD not in json.dumps(shown) + markdown
    with database(journal) as db:  # nothing recorded holds the password; provenance the URL
        stored = [str(v) for row in db.execute("SELECT * FROM events").fetchall() for v in row]
        stored += [str(v) for row in db.execute("SELECT * FROM runs").fetchall() for v in row]
    assert not [v for v in stored if PG_PASSWORD in v]
    if journal.startswith("postgresql://"):
        assert any('"journal":"postgresql://postgres:***@127.0.0.1:' in v for v in stored)


# -- the chain over runs: every tamper case, on both backends ---------------------------------


def three_runs(tmp_path: Path, journal: str) -> list[str]:
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    return [run_ok(tmp_path, journal) for _ in range(3)]


def rehash(db: Any, run_id: str, key: bytes | None = None) -> None:
    """A forger's rewrite: every event of the run hashed again, the run's row set to match."""
    rows = db.execute(
        "SELECT seq, kind, step, attempt, time, data FROM events WHERE run_id = ? ORDER BY seq",
        (run_id,),
    ).fetchall()
    prev = "0" * 64
    for seq, kind, step, attempt, at, data in rows:
        digest = event_hash(prev, run_id, seq, kind, step, attempt, at, data, key)
        db.execute(
            "UPDATE events SET prev = ?, hash = ? WHERE run_id = ? AND seq = ?",
            (prev, digest, run_id, seq),
        )
        prev = digest
    db.execute(
        "UPDATE runs SET last_hash = ?, events = ?, started = ? WHERE id = ?",
        (prev, len(rows), rows[0][4], run_id),
    )


def changed_event(db: Any, runs: list[str]) -> str:
    db.execute(
        "UPDATE events SET data = replace(data, 'hello', 'jello')"
        " WHERE run_id = ? AND kind = 'output'",
        (runs[1],),
    )
    return f"FAIL  {runs[1]}  event "


def deleted_end(db: Any, runs: list[str]) -> str:
    """The last events of the last run (its end and seal) deleted, its row made to agree."""
    (last,) = db.execute("SELECT max(seq) FROM events WHERE run_id = ?", (runs[2],)).fetchone()
    db.execute("DELETE FROM events WHERE run_id = ? AND seq >= ?", (runs[2], last - 1))
    rehash(db, runs[2])
    db.execute("UPDATE runs SET status = 'running', ended = NULL WHERE id = ?", (runs[2],))
    return "the journal's head records 3 seal(s) but 2 remain"


def deleted_run(db: Any, runs: list[str]) -> str:
    for table, column in (("events", "run_id"), ("search", "run_id"), ("runs", "id")):
        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (runs[0],))
    return "seal 1 is missing"


def reordered(db: Any, runs: list[str]) -> str:
    """The first run moved after the second (its start time) and its chain rehashed."""
    (later,) = db.execute(
        "SELECT time FROM events WHERE run_id = ? AND seq = 1", (runs[1],)
    ).fetchone()
    db.execute("UPDATE events SET time = ? WHERE run_id = ? AND seq = 1", (later + 0.5, runs[0]))
    rehash(db, runs[0])
    return "seal 2 (run " + runs[1] + ") does not follow seal 1"


TAMPERINGS = {
    "a changed event": changed_event,
    "events deleted from a run's end": deleted_end,
    "a deleted run": deleted_run,
    "runs reordered": reordered,
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_tampering_breaks_the_chain(tmp_path: Path, journal: str, tampering: str) -> None:
    runs = three_runs(tmp_path, journal)
    with database(journal) as db:
        expected = TAMPERINGS[tampering](db, runs)
    done = cli(tmp_path, journal, "log", "verify")
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout


def test_each_seal_is_a_typed_event_stored_as_it_reads_back(tmp_path: Path, journal: str) -> None:
    runs = three_runs(tmp_path, journal)
    with database(journal) as db:
        rows = db.execute(
            "SELECT run_id, kind, step, attempt, time, data FROM events WHERE kind = ?"
            " ORDER BY time",
            (SEAL,),
        ).fetchall()
    assert [row[0] for row in rows] == runs
    sealed = [
        from_data(kind, step, attempt, at, json.loads(data))
        for _, kind, step, attempt, at, data in rows
    ]
    assert [type(s) for s in sealed] == [RunSealed] * 3
    assert [s.seal for s in sealed if isinstance(s, RunSealed)] == [1, 2, 3]
    for (_, _, _, _, at, data), seal in zip(rows, sealed, strict=True):
        assert canonical(to_data(seal).data) == data and seal.time == at  # byte for byte
    shown = cli_json(tmp_path, journal, "log", "show", runs[0])  # the seal is not a step
    assert [step["id"] for step in shown["steps"]] == ["one"] and shown["status"] == "succeeded"


def test_a_rollback_is_caught_given_an_earlier_head(tmp_path: Path, journal: str) -> None:
    runs = three_runs(tmp_path, journal)
    head = cli_json(tmp_path, journal, "log", "head")["head"]
    with database(journal) as db:  # put back the journal as it was before the third run
        for table, column in (("events", "run_id"), ("search", "run_id"), ("runs", "id")):
            db.execute(f"DELETE FROM {table} WHERE {column} = ?", (runs[2],))
        (seal,) = db.execute(
            "SELECT hash FROM events WHERE run_id = ? AND kind = ?", (runs[1], SEAL)
        ).fetchone()
        db.execute("UPDATE meta SET value = ? WHERE key = 'head'", (f"2:{seal}",))
    alone = cli(tmp_path, journal, "log", "verify")
    assert alone.returncode == 0, alone.stdout  # a whole-journal rollback looks whole...
    given = cli(tmp_path, journal, "log", "verify", "--since-head", head)
    assert given.returncode == 1, given.stdout + given.stderr  # ...but not to an auditor
    assert f"head {head} is not in this journal" in given.stdout


def test_a_keyed_chain_cannot_be_forged_without_the_key(tmp_path: Path, journal: str) -> None:
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    key = "k3y-for-the-journal"
    run_id = run_ok(tmp_path, journal, RUNBOOK_JOURNAL_KEY=key)
    assert cli(tmp_path, journal, "log", "verify", RUNBOOK_JOURNAL_KEY=key).returncode == 0
    unkeyed = cli(tmp_path, journal, "log", "verify")
    assert unkeyed.returncode == 1 and "set RUNBOOK_JOURNAL_KEY" in unkeyed.stdout
    with database(journal) as db:
        db.execute(
            "UPDATE events SET data = replace(data, 'hello', 'jello') WHERE run_id = ?", (run_id,)
        )
        rehash(db, run_id)  # without the key: plain sha256
    forged = cli(tmp_path, journal, "log", "verify", RUNBOOK_JOURNAL_KEY=key)
    assert forged.returncode == 1, forged.stdout
    assert f"FAIL  {run_id}  event 1 (run-started, step -) was changed" in forged.stdout
    assert key not in json.dumps(cli_json(tmp_path, journal, "log", "show", run_id))


def test_a_run_without_the_key_after_keyed_runs_fails(tmp_path: Path, journal: str) -> None:
    """With the key set, an unkeyed run after the first keyed one is what a writer without
    the key would add: it fails; unkeyed runs from before the key are history, noted."""
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    key = "k3y-for-the-journal"
    before = run_ok(tmp_path, journal)
    keyed = run_ok(tmp_path, journal, RUNBOOK_JOURNAL_KEY=key)
    after = run_ok(tmp_path, journal)  # a teammate, or a forger, without the key
    done = cli(tmp_path, journal, "log", "verify", RUNBOOK_JOURNAL_KEY=key)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"ok    {before}  " in done.stdout and "(not keyed" in done.stdout
    assert f"ok    {keyed}  " in done.stdout
    assert f"FAIL  {after}  not keyed, but written after keyed run {keyed}" in done.stdout
    assert "1 failed" in done.stderr
    unkeyed = cli(tmp_path, journal, "log", "verify")  # without the key the keyed run fails
    assert unkeyed.returncode == 1 and f"FAIL  {keyed}  its chain is keyed" in unkeyed.stdout


# -- one run of a runbook at a time, across machines ------------------------------------------

LONG = "```bash {id: long}\necho begin\ntest -f go || sleep 30\necho end\n```\n"


def start(tmp_path: Path, journal: str, *args: str) -> subprocess.Popen[bytes]:
    with open(tmp_path / "engine.log", "ab") as log:
        return subprocess.Popen(
            [str(RUNBOOK), *args],
            cwd=tmp_path,
            env=env(tmp_path, journal),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def running(tmp_path: Path, journal: str, proc: subprocess.Popen[bytes]) -> str:
    def started() -> str | None:
        if not journal.startswith("postgresql") and not Path(journal).exists():
            return None
        with database(journal) as db:
            try:
                row = db.execute(
                    "SELECT run_id FROM events WHERE kind = 'step-started' AND step = 'long'"
                ).fetchone()
            except Exception:
                return None
        return row[0] if row else None

    run_id = wait_until(started, "the long step to start", proc)
    assert isinstance(run_id, str)
    return run_id


def on_other_host(tmp_path: Path, journal: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The engine on "another machine": a UTS namespace of its own with another host name."""
    script = 'hostname other-machine && exec "$@"'
    return subprocess.run(
        ["unshare", "--uts", "sh", "-c", script, "sh", str(RUNBOOK), *args],
        cwd=tmp_path,
        env=env(tmp_path, journal),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare"
)
def test_a_second_machine_is_refused_naming_the_holder(tmp_path: Path, journal: str) -> None:
    write_runbook(tmp_path, LONG)
    proc = start(tmp_path, journal, "run", "rb.md", "--yes")
    try:
        run_id = running(tmp_path, journal, proc)
        refused = on_other_host(tmp_path, journal, "run", "rb.md", "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        [message] = refused.stderr.splitlines()
        assert f"run {run_id} by {OPERATOR} on {socket.gethostname()} (pid {proc.pid})" in message
        assert "--force" in message
        (tmp_path / "go").touch()  # the forced run does not wait
        forced = on_other_host(tmp_path, journal, "run", "rb.md", "--yes", "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert f"running beside run {run_id}" in forced.stderr
    finally:
        kill_engine(proc)


def test_kill_9_shows_interrupted_frees_the_lock_and_resumes(tmp_path: Path, journal: str) -> None:
    write_runbook(tmp_path, "```bash {id: first}\necho first >> trace.txt\n```\n\n" + LONG)
    proc = start(tmp_path, journal, "run", "rb.md", "--yes")
    run_id = running(tmp_path, journal, proc)
    kill_engine(proc)

    def interrupted() -> bool:
        [run] = cli_json(tmp_path, journal, "log", "list")
        return run["status"] == "interrupted"

    wait_until(interrupted, "the killed run to show as interrupted")
    (tmp_path / "go").touch()
    resumed = cli(tmp_path, journal, "resume", "--yes", "--rerun-unfinished")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # the lock died with it
    shown = cli_json(tmp_path, journal, "log", "show", run_id)
    assert shown["status"] == "succeeded", shown
    assert (tmp_path / "trace.txt").read_text() == "first\n"  # not run again
    assert cli(tmp_path, journal, "log", "verify").returncode == 0


# -- moving between journals, schema versions, errors -----------------------------------------


def test_copy_both_ways_is_idempotent_and_verifies(tmp_path: Path, postgres_server: str) -> None:
    sqlite_journal = str(tmp_path / "journal.db")
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    runs = [run_ok(tmp_path, sqlite_journal) for _ in range(2)]
    url = new_database(postgres_server, "copy_" + uuid.uuid4().hex[:8])
    back = str(tmp_path / "back.db")
    first = cli(tmp_path, sqlite_journal, "journal", "copy", sqlite_journal, url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "2 run(s) copied" in first.stdout and PG_PASSWORD not in first.stdout + first.stderr
    again = cli(tmp_path, sqlite_journal, "journal", "copy", sqlite_journal, url)
    assert "0 run(s) copied" in again.stdout and "2 already there" in again.stdout
    assert cli(tmp_path, url, "journal", "copy", url, back).returncode == 0
    heads = [cli_json(tmp_path, j, "log", "head") for j in (sqlite_journal, url, back)]
    assert heads[0] == heads[1] == heads[2]
    assert [r["id"] for r in cli_json(tmp_path, back, "log", "list")] == runs[::-1]
    run_ok(tmp_path, url)  # the copy goes on as a journal of its own
    assert cli(tmp_path, url, "log", "verify").returncode == 0


def test_a_newer_schema_is_refused(tmp_path: Path, journal: str) -> None:
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    run_ok(tmp_path, journal)
    assert "up to date" in cli(tmp_path, journal, "journal", "migrate").stdout
    with database(journal) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    done = cli(tmp_path, journal, "log", "list")
    assert done.returncode == 2, done.stdout + done.stderr
    [message] = done.stderr.splitlines()
    assert "schema version 99, newer than this engine's (2)" in message


def test_search_statistics_are_set_by_the_schema_and_by_migrate(
    tmp_path: Path, postgres_server: str
) -> None:
    """A rare word is looked up in the GIN index only if the planner knows it is rare."""
    url = new_database(postgres_server, "stats_" + uuid.uuid4().hex[:8])
    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    run_ok(tmp_path, url)
    target = (
        "SELECT attstattarget FROM pg_attribute"
        " WHERE attrelid = 'search'::regclass AND attname = 'words'"
    )
    with database(url) as db:
        assert db.execute(target).fetchone()[0] == 10000
        db.execute("ALTER TABLE search ALTER COLUMN words SET STATISTICS -1")  # an older one
    assert cli(tmp_path, url, "journal", "migrate").returncode == 0
    with database(url) as db:
        assert db.execute(target).fetchone()[0] == 10000


def test_bad_urls_and_wrong_passwords_are_one_line(tmp_path: Path, postgres_server: str) -> None:
    wrong = postgres_server.replace(PG_PASSWORD, "not-the-Password")
    port = int(postgres_server.rsplit(":", 1)[1])
    cases = {
        "wrong password": wrong + "/postgres",
        "unreachable": f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{port + 1}/x",
        "malformed": f"postgresql://u:{PG_PASSWORD}@[nowhere/x",
    }
    for name, url in cases.items():
        done = cli(tmp_path, url, "log", "list")
        assert done.returncode == 2, (name, done.stderr)
        [line] = done.stderr.splitlines()
        assert line.startswith("runbook: error: postgresql://") and "***@" in line, (name, line)
        assert PG_PASSWORD not in line and "not-the-Password" not in line, (name, line)


def test_the_site_is_built_from_postgresql_without_the_password(
    tmp_path: Path, postgres_server: str
) -> None:
    url = new_database(postgres_server, "site_" + uuid.uuid4().hex[:8])
    docs = tmp_path / "docs"
    docs.mkdir()
    write_runbook(docs, RUNBOOK_TEXT, "zoo.md")
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: t\ndocs_dir: docs\ntheme: {name: material}\n"
        "markdown_extensions:\n  - pymdownx.superfences:\n      custom_fences:\n"
        "        - name: mermaid\n          class: mermaid\n"
        "          format: !!python/name:pymdownx.superfences.fence_code_format\n"
        "plugins:\n  - search\n  - runbook\n"
    )
    run_id = run_ok(tmp_path, url, "docs/zoo.md")
    head = cli_json(tmp_path, url, "log", "head")["head"]
    mkdocs = Path(str(RUNBOOK)).parent / "mkdocs"
    built = subprocess.run(
        [str(mkdocs), "build", "--strict", "--quiet"],
        cwd=tmp_path,
        env=env(tmp_path, url, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    page = (tmp_path / "site" / "runs" / run_id / "index.html").read_text()
    assert "quokkazebra" in page and head in page
    for path in (tmp_path / "site").rglob("*"):
        if path.is_file():
            assert PG_PASSWORD.encode() not in path.read_bytes(), path


def test_serve_polls_the_journal_mark_and_stamps_only_a_write(tmp_path: Path, journal: str) -> None:
    """`mkdocs serve` over a shared journal polls its mark (no file to watch): a run written
    changes it and touches the stamp the server watches; reading the journal does not."""
    from engine.journal.storage import open_store
    from engine.publish.watch import JournalPoll

    write_runbook(tmp_path, "```bash {id: one}\necho hello\n```\n")
    run_ok(tmp_path, journal)
    poll = JournalPoll(lambda: open_store(journal, read_only=True), "the journal")
    try:
        assert not poll.poll()  # the first mark read: what the first build saw
        for args in (("log", "list"), ("log", "verify"), ("log", "head")):
            assert cli(tmp_path, journal, *args).returncode == 0
        assert not poll.poll()
        assert not list(poll.stamp_dir.iterdir())
        run_ok(tmp_path, journal)
        assert poll.poll()
        assert [p.name for p in poll.stamp_dir.iterdir()] == ["journal-changed"]
        assert not poll.poll()
    finally:
        poll.stop()
    assert not poll.stamp_dir.exists()


def test_serve_warns_once_while_the_shared_journal_is_away(
    postgres_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    from engine.journal.storage import open_store
    from engine.publish.watch import JournalPoll

    port = int(postgres_server.rsplit(":", 1)[1])
    away = f"postgresql://u:{PG_PASSWORD}@127.0.0.1:{port + 1}/x"
    poll = JournalPoll(lambda: open_store(away), "postgresql://u:***@away/x")
    try:
        with caplog.at_level("WARNING", logger="mkdocs.plugins.runbook"):
            assert not poll.poll() and not poll.poll()
    finally:
        poll.stop()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "cannot watch the journal postgresql://u:***@away/x" in warning
    assert PG_PASSWORD not in warning


def test_eight_runbooks_at_once_lose_and_duplicate_nothing(
    tmp_path: Path, postgres_server: str
) -> None:
    url = new_database(postgres_server, "eight_" + uuid.uuid4().hex[:8])
    steps = "".join(f"```bash {{id: s{n}}}\necho step {n}\n```\n\n" for n in range(100))
    names = [f"rb{i}.md" for i in range(8)]
    for name in names:
        write_runbook(tmp_path, steps, name)
    procs = [
        subprocess.Popen(
            [str(RUNBOOK), "run", name, "--yes", "--quiet"],
            cwd=tmp_path,
            env=env(tmp_path, url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    with database(url) as db:
        counts = db.execute(
            "SELECT r.path, count(*) FILTER (WHERE e.kind = 'step-finished'),"
            " count(DISTINCT e.step) FILTER (WHERE e.kind = 'step-started'),"
            " count(*) FILTER (WHERE e.kind = 'output'), count(*) FILTER (WHERE e.kind = ?)"
            " FROM runs r JOIN events e ON e.run_id = r.id GROUP BY r.path ORDER BY r.path",
            (SEAL,),
        ).fetchall()
    assert [c[0] for c in counts] == names
    assert all(c[1:3] == (100, 100) and c[3] >= 100 and c[4] == 1 for c in counts), counts
    verified = cli(tmp_path, url, "log", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "8 seal(s)" in verified.stderr


def test_the_runs_index_filters_by_operator_and_host_when_a_team_shares_it() -> None:
    from engine.publish.runs import runs_index
    from engine.publish.stash import Stash
    from engine.record import RunSummary

    def run(run_id: str, operator: str, host: str) -> RunSummary:
        return RunSummary(
            run_id,
            "rb.md",
            "t",
            operator,
            None,
            host,
            1,
            0.0,
            1.0,
            "succeeded",
            {},
            "d",
            None,
            None,
        )

    stash = Stash()
    one = stash.restore(runs_index([run("a", "ann", "db1"), run("b", "ann", "db1")], set(), stash))
    assert 'data-rb-filter="host"' not in one and 'data-rb-filter="operator"' not in one
    team = stash.restore(runs_index([run("a", "ann", "db1"), run("b", "bob", "db2")], set(), stash))
    assert 'data-rb-filter="operator"' in team and 'data-rb-filter="host"' in team
    assert 'data-operator="bob" data-host="db2"' in team
