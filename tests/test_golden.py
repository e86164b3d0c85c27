"""A journal written by an earlier release (tests/data/golden, made by its make_golden.py) still
verifies, and its exports and run pages come out byte for byte as that release wrote them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.journal import connect, query
from engine.journal.verify import verify_all
from engine.publish.runs import RunLinks, run_page, runs_index
from engine.publish.stash import Stash

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    copy = tmp_path / "journal.db"
    shutil.copy(GOLDEN / "journal.db", copy)
    return copy


def run_ids(journal: Path) -> list[str]:
    db = connect(journal)
    try:
        return [run.id for run in reversed(query.list_runs(db))]
    finally:
        db.close()


def test_the_golden_journal_verifies(journal: Path) -> None:
    db = connect(journal)
    try:
        results = verify_all(db)
    finally:
        db.close()
    assert [r.ok for r in results] == [True, True], [r.problem for r in results]
    assert sum(r.events for r in results) > 40


@pytest.mark.parametrize("fmt, ext", [("markdown", "md"), ("json", "json")])
def test_exports_are_unchanged(journal: Path, fmt: str, ext: str) -> None:
    for number, run_id in enumerate(run_ids(journal), 1):
        result = CliRunner().invoke(
            cli, ["log", "export", run_id, "--format", fmt, "--journal", str(journal)]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes == (GOLDEN / f"run{number}.export.{ext}").read_bytes()


def test_run_pages_and_the_index_are_unchanged(journal: Path) -> None:
    db = connect(journal)
    try:
        for number, run_id in enumerate(run_ids(journal), 1):
            detail = query.run_detail(db, query.find_run(db, run_id))
            stash = Stash()
            page = stash.restore(run_page(detail, RunLinks("../../rotate/", "../"), stash))
            assert page == (GOLDEN / f"run{number}.page.html").read_text("utf-8")
        runs = query.list_runs(db)
        stash = Stash()
        index = stash.restore(runs_index(runs, {runs[0].id}, stash))
        assert index == (GOLDEN / "runs.index.html").read_text("utf-8")
    finally:
        db.close()


def test_log_show_is_unchanged(journal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLUMNS", "LINES", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    for number, run_id in enumerate(run_ids(journal), 1):
        result = CliRunner().invoke(cli, ["log", "show", run_id, "--journal", str(journal)])
        assert result.exit_code == 0, result.output
        assert result.stdout == (GOLDEN / f"run{number}.show.txt").read_text("utf-8")


def test_copied_to_postgresql_it_verifies_and_exports_the_same(
    journal: Path, postgres_server: str
) -> None:
    """The same journal in PostgreSQL (`runbook journal copy`): the same chains, exports and
    run pages byte for byte, read through the PostgreSQL store."""
    import uuid

    from engine.journal.copy import copy_journal
    from engine.journal.storage import open_store
    from tests.conftest import new_database

    url = new_database(postgres_server, "golden_" + uuid.uuid4().hex[:8])
    report = copy_journal(journal, url)
    assert report.ok and report.copied == 2
    older = [r.note for r in report.target_check.runs]
    assert all(note.startswith("older chain format") for note in older), older
    for number, run_id in enumerate(run_ids(journal), 1):
        for fmt, ext in (("markdown", "md"), ("json", "json")):
            result = CliRunner().invoke(
                cli, ["log", "export", run_id, "--format", fmt, "--journal", url]
            )
            assert result.exit_code == 0, result.output
            assert result.stdout_bytes == (GOLDEN / f"run{number}.export.{ext}").read_bytes()
    store = open_store(url)
    try:
        for number, run_id in enumerate(run_ids(journal), 1):
            detail = store.read_run(store.find_run(run_id))
            stash = Stash()
            page = stash.restore(run_page(detail, RunLinks("../../rotate/", "../"), stash))
            assert page == (GOLDEN / f"run{number}.page.html").read_text("utf-8")
    finally:
        store.close()
