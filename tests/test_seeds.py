"""The real-world runbooks in ../shared/seeds: read from there, never copied, never modified."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from engine.loader import read_runbook
from engine.model import Runbook, StepKind
from engine.plan import plan_runbook

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
RUNBOOK = Path(sys.executable).parent / "runbook"

pytestmark = pytest.mark.skipif(
    not SEEDS.is_dir(), reason=f"the seed runbooks are not here: {SEEDS} (clone shared/ beside)"
)

MOJIBAKE = {1, 2, 4}
CLEAN = {0, 3}
# seed number -> (command steps, manual steps)
STEP_COUNTS = {0: (0, 0), 1: (0, 69), 2: (22, 6), 3: (0, 0), 4: (15, 28)}


def seed(number: int) -> Path:
    (path,) = SEEDS.glob(f"{number:03d}_*.txt")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


def copy_of(number: int, tmp_path: Path) -> tuple[Path, str]:
    """A copy of a seed to work on, as a .md file, and the original's digest."""
    original = seed(number)
    copy = tmp_path / f"seed-{number:03d}.md"
    shutil.copyfile(original, copy)
    return copy, digest(original)


@pytest.fixture(scope="module")
def runbooks() -> dict[int, Runbook]:
    return {number: read_runbook(seed(number)) for number in STEP_COUNTS}


def test_every_seed_is_there() -> None:
    assert sorted(STEP_COUNTS) == sorted(int(p.name[:3]) for p in SEEDS.glob("[0-9]*_*.txt"))


@pytest.mark.parametrize("number", sorted(STEP_COUNTS))
def test_seed_parses_and_plans_without_raising(number: int) -> None:
    runbook = read_runbook(seed(number))
    plan = plan_runbook(runbook)
    assert runbook.path == str(seed(number))
    assert runbook.title
    assert {s.id for s in plan.steps()} <= {s.id for s in runbook.steps}
    for step in runbook.steps:
        assert step.line >= 1
        assert step.kind in {StepKind.COMMAND, StepKind.MANUAL}


@pytest.mark.parametrize("number", sorted(STEP_COUNTS))
def test_seed_step_counts(runbooks: dict[int, Runbook], number: int) -> None:
    kinds = Counter(step.kind for step in runbooks[number].steps)
    assert (kinds[StepKind.COMMAND], kinds[StepKind.MANUAL]) == STEP_COUNTS[number]
    assert len({step.id for step in runbooks[number].steps}) == len(runbooks[number].steps)


@pytest.mark.parametrize("number", sorted(CLEAN))
def test_prose_seeds_have_sections_but_no_steps(runbooks: dict[int, Runbook], number: int) -> None:
    runbook = runbooks[number]
    assert runbook.steps == ()
    assert len(runbook.sections) > 1
    assert all(section.slug and section.line >= 1 for section in runbook.sections)


@pytest.mark.parametrize("number", sorted(MOJIBAKE))
def test_mojibake_is_reported_with_line_numbers(runbooks: dict[int, Runbook], number: int) -> None:
    warnings = [d for d in runbooks[number].diagnostics if d.code == "mojibake"]
    assert warnings, f"seed {number:03d}: no mojibake warning"
    assert all(not d.is_error for d in warnings)
    assert all(d.location.line >= 1 for d in warnings)
    assert any("line" in d.message for d in warnings)


@pytest.mark.parametrize("number", sorted(CLEAN))
def test_no_mojibake_reported_for_clean_seeds(runbooks: dict[int, Runbook], number: int) -> None:
    assert not [d for d in runbooks[number].diagnostics if d.code == "mojibake"]


def test_check_runs_on_every_seed_without_crashing(tmp_path: Path) -> None:
    copies = [copy_of(number, tmp_path)[0] for number in sorted(STEP_COUNTS)]
    result = run_cli("check", "--format", "json", *copies)
    assert result.returncode in {0, 1}, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    report = json.loads(result.stdout)
    assert [f["path"] for f in report["files"]] == [str(p) for p in copies]
    flagged = {
        int(Path(f["path"]).stem[-3:])
        for f in report["files"]
        if any(d["code"] == "mojibake" for d in f["diagnostics"])
    }
    assert flagged == MOJIBAKE


def test_fix_makes_seed_001_read_properly(tmp_path: Path) -> None:
    copy, original = copy_of(1, tmp_path)
    assert "DevOps-ingenjör" not in copy.read_text(encoding="utf-8")
    result = run_cli("check", "--fix", copy)
    assert result.returncode in {0, 1}, result.stderr
    assert f"{copy}: repaired" in result.stderr
    assert "DevOps-ingenjör" in copy.read_text(encoding="utf-8")
    assert "[mojibake]" not in result.stdout
    assert digest(seed(1)) == original, "the seed itself was modified"


def test_fix_leaves_no_mojibake_in_seed_002(tmp_path: Path) -> None:
    copy, original = copy_of(2, tmp_path)
    before = read_runbook(copy)
    result = run_cli("check", "--fix", copy)
    assert result.returncode in {0, 1}, result.stderr
    assert f"{copy}: repaired" in result.stderr
    after = read_runbook(copy)
    assert not [d for d in after.diagnostics if d.code == "mojibake"]
    # Repairing the text moves no step (ids derived from repaired headings may change).
    assert [(s.kind, s.line) for s in after.steps] == [(s.kind, s.line) for s in before.steps]
    assert digest(seed(2)) == original, "the seed itself was modified"


def test_fix_lists_the_lines_of_seed_004_it_could_not_restore(tmp_path: Path) -> None:
    copy, original = copy_of(4, tmp_path)
    lines_before = copy.read_text(encoding="utf-8").count("\n")
    result = run_cli("check", "--fix", copy)
    assert result.returncode in {0, 1}, result.stderr
    assert f"{copy}: repaired" in result.stderr
    (unrestored,) = [
        line for line in result.stderr.splitlines() if "could not fully restore" in line
    ]
    assert unrestored.startswith(f"{copy}: could not fully restore line(s) ")
    numbers = unrestored.split("line(s) ", 1)[1].split(";", 1)[0]
    assert numbers and all(part.strip()[0].isdigit() for part in numbers.split(","))
    assert copy.read_text(encoding="utf-8").count("\n") == lines_before
    assert digest(seed(4)) == original, "the seed itself was modified"
