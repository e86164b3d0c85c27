"""Writes the golden journal: three runs of `rotate.md` by the engine as it is, and what
`log export` and the run pages made of them. Run once with the release being frozen
(`python tests/data/golden/make_golden.py`); the files are committed as they came out, and
tests/test_golden.py checks that later code still verifies and renders them byte for byte.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pexpect

HERE = Path(__file__).resolve().parent
RUNBOOK = Path(sys.executable).parent / "runbook"
SECRET = "hunter2-golden-token"


def env(home: Path, journal: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"EDITOR", "VISUAL", "NO_COLOR"}}
    clean.update(HOME=str(home), NO_COLOR="1", TERM="xterm-256color", RUNBOOK_JOURNAL=str(journal))
    return clean


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="golden-"))
    shutil.copy(HERE / "rotate.md", work / "rotate.md")
    journal = work / "journal.db"
    environment = env(work, journal)

    # 1. An operator at the keyboard: confirms each step, marks the manual step done, and
    #    aborts when the gate fails.
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", "rotate.md", "-p", f"token={SECRET}"],
        cwd=str(work),
        env=environment,
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=20,
    )
    for _ in range(2):  # check, version
        child.expect_exact("[a]bort / [?] ")
        child.send("r")
    child.expect_exact("Done? [D]one / [s]kip / [a]bort ")
    child.send("d")
    for _ in range(2):  # ask, gate (`optional` is skipped by its condition)
        child.expect_exact("[a]bort / [?] ")
        child.send("r")
    child.expect_exact("[c]ontinue / [a]bort ")
    child.send("a")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1, child.before

    # 2. The cause fixed, the run resumed unattended.
    (work / "ready.flag").write_text("yes\n")
    resumed = subprocess.run(
        [str(RUNBOOK), "resume", "--yes", "-p", f"token={SECRET}"],
        cwd=work,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    # 3. An unattended run from the start: the manual step is recorded as skipped.
    again = subprocess.run(
        [str(RUNBOOK), "run", "rotate.md", "--yes", "-p", f"token={SECRET}", "-p", "node=b"],
        cwd=work,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr

    db = sqlite3.connect(journal)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode=DELETE")
    ids = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY started")]
    db.close()
    shutil.copy(journal, HERE / "journal.db")
    for number, run_id in enumerate(ids, 1):
        for fmt, ext in (("markdown", "md"), ("json", "json")):
            out = subprocess.run(
                [str(RUNBOOK), "log", "export", run_id, "--format", fmt],
                cwd=work,
                env=environment,
                capture_output=True,
                check=True,
            ).stdout
            (HERE / f"run{number}.export.{ext}").write_bytes(out)
        (HERE / f"run{number}.page.html").write_text(render_page(journal, run_id), "utf-8")
    (HERE / "runs.index.html").write_text(render_index(journal), "utf-8")
    assert SECRET not in (HERE / "journal.db").read_bytes().decode("utf-8", "replace")
    shutil.rmtree(work)


def render_page(journal: Path, run_id: str) -> str:
    """The run page as the plugin hands it to mkdocs, its placeholders filled in."""
    from engine.journal import connect, query
    from engine.publish.runs import RunLinks, run_page
    from engine.publish.stash import Stash

    db = connect(journal)
    detail = query.run_detail(db, query.find_run(db, run_id))
    stash = Stash()
    return stash.restore(run_page(detail, RunLinks("../../rotate/", "../"), stash))


def render_index(journal: Path) -> str:
    from engine.journal import connect, query
    from engine.publish.runs import runs_index
    from engine.publish.stash import Stash

    db = connect(journal)
    runs = query.list_runs(db)
    stash = Stash()
    return stash.restore(runs_index(runs, {runs[0].id}, stash))


if __name__ == "__main__":
    main()
