"""The plan cache: a hit is the plan parsing would give; an edit, a foreign directory or a
broken entry means parsing again, never an error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine import plan_cache
from engine.loader import read_runbook
from engine.plan import plan_runbook

TEXT = "# Demo\n\n```bash {id: hello}\necho hello {{ who }}\n```\n\n- [ ] check the logs\n"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(plan_cache.ENV_VAR, str(directory))
    return directory


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pickle")) if directory.exists() else []


def test_a_second_load_comes_from_the_cache_and_equals_parsing(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rb.md"
    path.write_text(TEXT, encoding="utf-8")
    expected = plan_runbook(read_runbook(path))
    runbook, plan = plan_cache.load_plan(path)
    assert len(entries(cache)) == 1
    assert cache.stat().st_mode & 0o777 == 0o700

    def no_parsing(*_: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr("engine.loader.runbook_of", no_parsing)
    cached_runbook, cached_plan = plan_cache.load_plan(path)
    assert cached_plan == plan == expected
    assert cached_runbook == runbook == expected.runbook


def test_an_edited_runbook_is_parsed_again(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "rb.md"
    path.write_text(TEXT, encoding="utf-8")
    plan_cache.load_plan(path)
    path.write_text(TEXT.replace("hello", "bye"), encoding="utf-8")
    runbook, _ = plan_cache.load_plan(path)
    assert runbook.steps[0].id == "bye"
    assert len(entries(cache)) == 2


def test_off_never_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plan_cache.ENV_VAR, "off")
    assert plan_cache.cache_dir() is None
    path = tmp_path / "rb.md"
    path.write_text(TEXT, encoding="utf-8")
    runbook, plan = plan_cache.load_plan(path)
    assert plan.ok and runbook.steps[0].id == "hello"


def test_a_broken_entry_or_a_shared_directory_means_parsing(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "rb.md"
    path.write_text(TEXT, encoding="utf-8")
    plan_cache.load_plan(path)
    (entry,) = entries(cache)
    entry.write_bytes(b"not a pickle")
    runbook, _ = plan_cache.load_plan(path)
    assert runbook.steps[0].id == "hello"
    cache.chmod(0o777)  # anyone could have written it: its entries are not loaded
    entry.write_bytes(b"not a pickle")
    runbook, _ = plan_cache.load_plan(path)
    assert runbook.steps[0].id == "hello"


def test_a_missing_file_is_reported_as_before(tmp_path: Path, cache: Path) -> None:
    from engine.loader import RunbookNotFound

    with pytest.raises(RunbookNotFound, match="no such file"):
        plan_cache.load_plan(tmp_path / "missing.md")


def test_a_planned_run_loads_no_parser(tmp_path: Path, cache: Path) -> None:
    """Start-up (issue 17): a cached plan is read without markdown-it or the parser."""
    path = tmp_path / "rb.md"
    path.write_text(TEXT, encoding="utf-8")
    plan_cache.load_plan(path)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from engine.plan_cache import load_plan\n"
        f"runbook, plan = load_plan(Path({str(path)!r}))\n"
        "assert runbook.steps[0].id == 'hello'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'markdown_it'\n"
        "    or m == 'engine.parse'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_a_pipe_is_read_once(tmp_path: Path, cache: Path) -> None:
    """`runbook run <(...)`: the bytes read for the key are the bytes parsed."""
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as handle:
            handle.write(TEXT)

    for _ in range(2):  # parsed, then from the cache
        writer = threading.Thread(target=write)
        writer.start()
        runbook, plan = plan_cache.load_plan(fifo)
        writer.join(timeout=10)
        assert plan.ok and runbook.steps[0].id == "hello"
