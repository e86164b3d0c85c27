"""The project's own runbooks, and the examples in the format reference, pass `runbook check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from markdown_it import MarkdownIt

from engine.cli import cli

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "runbooks"
FORMAT = RUNBOOKS / "format.md"
RUNBOOK = Path(sys.executable).parent / "runbook"


def run_cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
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


def format_examples() -> list[tuple[int, str]]:
    """Every ````markdown fence of the format reference: (its line in format.md, its text)."""
    tokens = MarkdownIt("commonmark").parse(FORMAT.read_text(encoding="utf-8"))
    return [
        (token.map[0] + 1, token.content)
        for token in tokens
        if token.type == "fence" and token.info == "markdown" and token.map
    ]


EXAMPLES = format_examples()


def test_project_runbooks_check_clean() -> None:
    result = run_cli("check", "--format", "json", "runbooks")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    checked = {Path(f["path"]).name for f in report["files"]}
    assert checked == {p.name for p in RUNBOOKS.rglob("*.md")}
    assert {"format.md", "getting-started.md"} <= checked
    problems = [d for f in report["files"] for d in f["diagnostics"]]
    assert problems == [], problems
    assert (report["errors"], report["warnings"]) == (0, 0)


def test_getting_started_plan() -> None:
    result = run_cli("show", "runbooks/getting-started.md", "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["title"] == "Getting started"
    assert plan["errors"] == 0
    flow = [s["id"] for s in plan["steps"] if s["role"] == "flow"]
    handlers = [s["id"] for s in plan["steps"] if s["role"] == "handler"]
    chain = [
        "workspace",
        "write-page",
        "approve",
        "start-server",
        "find-port",
        "health-check",
        "clean-up",
    ]
    assert set(chain) <= set(flow), flow
    # Each step of the chain needs the one before it, so the flow keeps their order.
    assert sorted(chain, key=flow.index) == chain
    assert handlers == ["rollback-stop-server", "rollback-remove-workspace"]
    assert not set(handlers) & set(flow), "the rollback section must not run in the normal flow"
    kinds = {s["kind"] for s in plan["steps"]}
    assert kinds == {"command", "manual"}
    params = {p["name"]: p for p in plan["params"]}
    assert any(p["choices"] and p["default"] in p["choices"] for p in params.values())
    assert all(p["default"] is not None for p in params.values())
    failure_edges = {(e["from"], e["to"]) for e in plan["edges"] if e["kind"] != "needs"}
    assert ("start-server", "rollback") in failure_edges
    flags = {s["id"]: s["flags"] for s in plan["steps"]}
    assert "danger" in flags["clean-up"]
    assert any(f.startswith("capture=") for f in flags["workspace"])
    assert any(f.startswith("expect=") for f in flags["approve"])


def test_format_reference_has_markdown_examples() -> None:
    assert EXAMPLES, "no ````markdown examples found in runbooks/format.md"
    assert all(text.strip() for _, text in EXAMPLES)


def test_every_format_example_checks_without_errors(tmp_path: Path) -> None:
    files = []
    for line, text in EXAMPLES:
        path = tmp_path / f"format-example-line-{line}.md"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    result = run_cli("check", "--format", "json", *files)
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert len(report["files"]) == len(EXAMPLES)
    for entry in report["files"]:
        errors = [d for d in entry["diagnostics"] if d["severity"] == "error"]
        assert errors == [], f"{Path(entry['path']).name} of runbooks/format.md: {errors}"
    assert result.returncode == 0, result.stdout


def test_format_examples_plan_steps(tmp_path: Path) -> None:
    """The examples are real runbooks: each one plans at least one step."""
    for line, text in EXAMPLES:
        path = tmp_path / f"example-{line}.md"
        path.write_text(text, encoding="utf-8")
        result = run_cli("show", "--format", "json", path)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert json.loads(result.stdout)["steps"], f"the example at format.md:{line} has no steps"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_a_one_line_help(name: str) -> None:
    command = cli.commands[name]
    assert isinstance(command, click.Command)
    assert command.help, f"`runbook {name}` has no help"
    first = command.help.strip().splitlines()[0]
    assert first.strip()
    assert command.get_short_help_str(limit=200) == first.strip()


def test_the_group_itself_has_a_one_line_help() -> None:
    assert cli.help and cli.help.strip().splitlines()[0].strip()
    assert {"check", "show"} <= set(cli.commands)


# -- the project's runbooks run for real ----------------------------------------------------------


def project_copy(tmp_path: Path) -> Path:
    """The runbooks and mkdocs.yml in a fresh project (a git work tree of its own)."""
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "mkdocs.yml").write_text((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    for source in RUNBOOKS.rglob("*.md"):
        target = project / "runbooks" / source.relative_to(RUNBOOKS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return project


@pytest.mark.parametrize(
    "name", sorted(str(p.relative_to(RUNBOOKS)) for p in RUNBOOKS.rglob("*.md"))
)
def test_every_project_runbook_renders_in_a_dry_run(name: str, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    result = run_cli("run", f"runbooks/{name}", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing is executed" in result.stdout


def test_getting_started_runs_and_cleans_up(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    result = run_cli("run", "runbooks/getting-started.md", "--yes", "--allow-danger", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "200 <h1>Hello, operators!</h1>" in result.stdout
    assert "workspace removed" in result.stdout
    assert "rollback-stop-server" not in result.stdout


def test_getting_started_rolls_back_when_the_health_check_fails(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    result = run_cli(
        "run",
        "runbooks/getting-started.md",
        "--yes",
        "--allow-danger",
        "-p",
        "page=missing.html",
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "health check failed: HTTP Error 404" in result.stdout
    assert "✓ rollback-stop-server succeeded" in result.stdout
    assert "✓ rollback-remove-workspace succeeded" in result.stdout
    assert "clean-up" not in result.stdout.split("health-check failed")[1]


def test_operations_runbooks_back_up_the_journal_and_rebuild_the_site(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    backup = run_cli("run", "runbooks/operations/journal-backup.md", "--yes", cwd=project)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    [copy] = (project / ".runbook" / "backups").glob("journal-*.db")
    assert copy.stat().st_size > 0
    assert "the chains are intact" in backup.stdout

    site = run_cli(
        "run", "runbooks/operations/rebuild-site.md", "--yes", "-p", "site_dir=out", cwd=project
    )
    assert site.returncode == 0, site.stdout + site.stderr
    assert (project / "out" / "getting-started" / "index.html").is_file()
    # The site shows the two runs just made, from the project's journal.
    assert len(list((project / "out" / "runs").glob("*/index.html"))) == 2


def test_make_run_walks_an_operator_through_getting_started(tmp_path: Path) -> None:
    import pexpect

    project = project_copy(tmp_path)
    env = {**os.environ, "NO_COLOR": "1", "RUNBOOK_JOURNAL": str(tmp_path / "journal.db")}
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", "runbooks/getting-started.md"],
        cwd=project,
        env=env,
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=30,
    )
    step, manual = r"Run it\? .*\[\?\] ", r"Done\? \[D\]one / \[s\]kip / \[a\]bort "
    for answer in ("d", "d"):  # the checklist before starting
        child.expect(manual)
        child.send(answer)
    for _ in ("write-page", "approve", "start-server", "find-port", "health-check"):
        child.expect(step)
        child.send("r")
    child.expect(manual)  # the page greets the right people
    child.send("d")
    child.expect(step)  # clean-up, a dangerous step: the operator types its id
    child.send("r")
    child.expect(r"Type the step id \(clean-up\) to run it: ")
    child.sendline("clean-up")
    child.expect("Run succeeded")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
