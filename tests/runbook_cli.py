"""The real `runbook` command for tests of runbooks as teams write them: show, check, and a run
in a pty, each with an environment cleared of what the engine reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pexpect

from engine.sessions import _PROMPT

RUNBOOK = Path(sys.executable).parent / "runbook"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def environment(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FORCE_COLOR", "COLUMNS", "LINES", "EDITOR", "VISUAL", "RUNBOOK_JOURNAL"}
    }
    env.update(NO_COLOR="1", TERM="xterm-256color", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
    return env


def cli(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(tmp_path),
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def show_json(tmp_path: Path, path: Path) -> dict:  # type: ignore[type-arg]
    result = cli(tmp_path, "show", "--format", "json", path)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def check_json(tmp_path: Path, path: Path) -> list[dict]:  # type: ignore[type-arg]
    """Every diagnostic of `check --format json` (the exit status must agree with the errors)."""
    result = cli(tmp_path, "check", "--format", "json", path)
    report = json.loads(result.stdout)
    assert result.returncode == (1 if report["errors"] else 0), result.stderr
    severities = [d["severity"] for d in report["files"][0]["diagnostics"]]
    assert report["notes"] == severities.count("info")
    assert report["warnings"] == severities.count("warning")
    return report["files"][0]["diagnostics"]


def codes(diagnostics: list[dict]) -> list[tuple[str, str, int]]:  # type: ignore[type-arg]
    return [(d["severity"], d["code"], d["line"]) for d in diagnostics]


@dataclass
class Ran:
    output: str
    status: int


def run_in_pty(tmp_path: Path, path: Path, *args: str) -> Ran:
    """`runbook run PATH ARGS...` in a real terminal, to its end."""
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", str(path), *args],
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=60,
        env=environment(tmp_path),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"ended by signal {child.signalstatus}"
    return Ran(ANSI.sub("", child.before or "").replace("\r\n", "\n"), child.exitstatus)


def assert_no_prompt_runs(plan: dict) -> None:  # type: ignore[type-arg]
    """No command that runs begins with a shell prompt."""
    for step in plan["steps"]:
        for line in (step["command"] or "").splitlines():
            assert not _PROMPT.match(line), f"step {step['id']} runs a prompt: {line!r}"
