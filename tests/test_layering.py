"""The import rules that keep the pipeline's layers apart, checked on the source (AST):
publish never reaches the terminal module, SQL lives in the journal, and only the console
(and the CLI) use click and rich."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|PRAGMA|BEGIN|ALTER)\b")


def module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text("utf-8")) for name, path in MODULES.items()}


def imports(name: str) -> set[str]:
    """Every module `name` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def reachable(start: str) -> set[str]:
    """The engine modules `start` loads, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in imports(name):
            parts = imported.split(".")
            for size in range(1, len(parts) + 1):  # a package runs its __init__ too
                prefix = ".".join(parts[:size])
                if prefix in MODULES:
                    todo.append(prefix)
    return seen


def test_the_rules_see_the_modules() -> None:
    assert {"engine.cli", "engine.publish.plugin", "engine.console.run"} <= set(MODULES)
    assert "engine.console.terminal" in reachable("engine.cli")


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("engine.publish")))
def test_publish_does_not_load_the_console(name: str) -> None:
    console = sorted(m for m in reachable(name) if m.startswith("engine.console"))
    assert console == [], f"{name} loads {console}"


def test_sql_lives_in_the_journal() -> None:
    holders = {
        name
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value)
    }
    assert holders, "the check finds the journal's SQL"
    assert sorted(n for n in holders if not n.startswith("engine.journal")) == []


def test_only_the_console_and_the_cli_use_click_and_rich() -> None:
    users = {
        name
        for name in MODULES
        for imported in imports(name)
        if imported.split(".")[0] in {"click", "rich"}
    }
    outside = sorted(n for n in users if not n.startswith("engine.console") and n != "engine.cli")
    assert outside == []
    assert "engine.cli" in users
    clicks = sorted(n for n in users if any(i.split(".")[0] == "click" for i in imports(n)))
    assert clicks == ["engine.cli"]


def test_the_readme_layout_names_every_module() -> None:
    readme = (ENGINE.parent / "README.md").read_text("utf-8")
    layout = readme[readme.index("## Layout") :]
    layout = layout[: layout.index("\n## ", 1)]
    missing = [
        str(path.relative_to(ENGINE.parent))
        for path in sorted(ENGINE.rglob("*.py"))
        if path.name != "__init__.py" and path.name not in layout
    ]
    assert missing == []


def test_the_site_loads_neither_the_console_nor_rich() -> None:
    code = (
        "import sys, engine.publish.plugin, engine.publish.runs, engine.publish.export\n"
        "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('engine.console')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_help_loads_neither_rich_nor_the_pipeline() -> None:
    """Start-up (issue 17): `runbook --help` needs click and the CLI module, nothing more."""
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        "sys.argv = ['runbook', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'markdown_it')\n"
        "    or (m.startswith('engine.') and m != 'engine.cli'))\n"
        "print(loaded, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage: runbook" in done.stdout
    assert done.stderr.strip() == "[]"


def test_a_run_loads_no_journal_reader_and_no_yaml(tmp_path: Path) -> None:
    """Start-up (issue 17): a run of a runbook met before (its plan cached) only writes the
    journal; the queries, the verifier and the run record load with the `log` commands,
    PyYAML with a file that needs it."""
    runbook = tmp_path / "one.md"
    runbook.write_text("# One\n\n```bash\necho one\n```\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from engine.cli import main\n"
        f"sys.argv = ['runbook', 'run', '--yes', {str(runbook)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "readers = ('engine.journal.query', 'engine.journal.verify', 'engine.record',\n"
        "    'engine.yamlsafe', 'yaml', 'difflib')\n"
        "print(sorted(m for m in sys.modules if m in readers), file=sys.stderr)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RUNBOOK_JOURNAL": str(tmp_path / "journal.db"),
        "RUNBOOK_PLAN_CACHE": str(tmp_path / "plans"),
    }
    for _ in range(2):  # the first run parses the file and caches its plan
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        assert "Run succeeded" in done.stdout, done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
