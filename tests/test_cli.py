"""The real `runbook` command, run as a subprocess (and once through a pty), as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from engine.cli import cli

RUNBOOK = Path(sys.executable).parent / "runbook"

# `PATH:LINE:COL: error|warning: message [code]`
DIAGNOSTIC = re.compile(
    r"^(?P<path>.+?):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): "
    r"(?P<message>.+) \[(?P<code>[a-z0-9-]+)\]$"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "NO_COLOR"}}
    env.update(COLUMNS="200", **extra)
    return env


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert RUNBOOK.exists(), f"the console script is not installed next to Python: {RUNBOOK}"
    return subprocess.run(
        [str(RUNBOOK), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(NO_COLOR="1"),
        check=False,
    )


def diagnostics_of(stdout: str) -> list[dict[str, str]]:
    """Every diagnostic line of `check`'s text output, parsed, with the hint that follows it."""
    found: list[dict[str, str]] = []
    for line in stdout.splitlines():
        match = DIAGNOSTIC.match(line)
        if match:
            found.append({**match.groupdict(), "hint": ""})
        elif line.startswith("  hint: "):
            assert found, f"a hint line before any diagnostic: {line!r}"
            found[-1]["hint"] = line.removeprefix("  hint: ")
        else:
            pytest.fail(f"check printed a line that is neither a diagnostic nor a hint: {line!r}")
    return found


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the only line of `text` containing `needle`."""
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(numbers) == 1, f"{needle!r} is on lines {numbers}"
    return numbers[0]


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr


GOOD = """\
---
title: Rotate the logs
owner: ops@example.com
params:
  service: {description: The service whose logs rotate, default: api}
  environment: {choices: [staging, production], default: staging}
---

# Rotate the logs

- [ ] Tell the on-call channel

## Rotate

```bash {id: rotate, timeout: 2m}
logrotate /etc/logrotate.d/{{ service }}
```

```bash {id: verify, needs: [rotate]}
ls -l /var/log/{{ service }}
```
"""

BAD = """\
---
title: Broken on purpose
ownr: ops@example.com
---

# Broken

```bash {id: alpha, needs: [beta]}
echo alpha
```

```bash {id: beta, needs: [alpha]}
echo beta
```

```bash {id: twice, timout: 5m}
echo first
```

```bash {id: twice}
echo second
```

```bash {id: lonely, needs: [betta]}
echo lonely
```
"""


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.md"
    path.write_text(GOOD, encoding="utf-8")
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.md"
    path.write_text(BAD, encoding="utf-8")
    return path


# -- help ---------------------------------------------------------------------------------------


def test_top_level_help_lists_every_command_with_a_one_line_description() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: runbook ")
    commands = result.stdout.split("\nCommands:\n", 1)[1].splitlines()
    listed = {}
    for line in filter(str.strip, commands):
        name, _, description = line.strip().partition(" ")
        listed[name] = description.strip()
    assert {"check", "show"} <= set(cli.commands)
    assert set(cli.commands) <= set(listed), listed
    for name in cli.commands:
        assert listed[name], f"`{name}` has no description in `runbook --help`"
        assert not listed[name].endswith("..."), f"`{name}`'s description is cut short"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_each_subcommand_help_says_what_it_does_in_one_line(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Usage: runbook {command} ")
    # Usage, a blank line, the one-line description, a blank line, then the options.
    assert lines[1] == ""
    assert lines[2].strip(), "the description is missing"
    assert lines[3] == "", f"the description takes more than one line: {lines[2:4]}"
    assert "Options:" in lines
    assert any(line.strip().startswith("-h, --help") for line in lines)


# -- check: text --------------------------------------------------------------------------------


def test_check_good_file_exits_zero_with_a_clean_summary(good: Path) -> None:
    result = run_cli("check", good)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "1 file checked: 0 errors, 0 warnings" in result.stderr


def test_check_reports_every_problem_at_once_with_exact_locations_and_hints(bad: Path) -> None:
    result = run_cli("check", bad)
    assert result.returncode == 1
    assert_no_traceback(result)
    found = diagnostics_of(result.stdout)
    assert all(d["path"] == str(bad) for d in found)
    assert all(d["severity"] == "error" for d in found)
    by_code: dict[str, list[dict[str, str]]] = {}
    for d in found:
        by_code.setdefault(d["code"], []).append(d)

    # Unknown front matter key, at its own line, with a did-you-mean hint.
    (front,) = [d for d in by_code["unknown-key"] if "ownr" in d["message"]]
    assert int(front["line"]) == line_of(BAD, "ownr:")
    assert "front matter" in front["message"]
    assert front["hint"] == "did you mean 'owner'?"

    # Unknown annotation key: at the fence line, the column of the key itself.
    (typo,) = [d for d in by_code["unknown-key"] if "timout" in d["message"]]
    fence = BAD.splitlines()[line_of(BAD, "timout") - 1]
    assert int(typo["line"]) == line_of(BAD, "timout")
    assert int(typo["column"]) == fence.index("timout") + 1
    assert typo["hint"] == "did you mean 'timeout'?"

    # Duplicate id: at the second fence, naming the first one's line.
    (duplicate,) = by_code["duplicate-id"]
    first, second = [n for n, line in enumerate(BAD.splitlines(), 1) if "{id: twice" in line]
    assert int(duplicate["line"]) == second
    assert "'twice'" in duplicate["message"]
    assert f"line {first}" in duplicate["message"]
    assert duplicate["hint"]

    # `needs` on an unknown id, with the closest id suggested.
    (unknown,) = by_code["unknown-step"]
    assert int(unknown["line"]) == line_of(BAD, "needs: [betta]")
    assert "'betta'" in unknown["message"]
    assert "beta" in unknown["hint"]

    # The cycle names every step in it.
    (cycle,) = by_code["cycle"]
    assert int(cycle["line"]) in {line_of(BAD, "{id: alpha"), line_of(BAD, "{id: beta")}
    assert "alpha -> beta -> alpha" in cycle["message"] or (
        "beta -> alpha -> beta" in cycle["message"]
    )
    assert cycle["hint"]

    # Diagnostics come sorted by position, and the summary counts them.
    assert [int(d["line"]) for d in found] == sorted(int(d["line"]) for d in found)
    assert f"1 file checked: {len(found)} errors, 0 warnings" in result.stderr


def test_check_json_has_files_and_diagnostics_with_every_field(bad: Path, good: Path) -> None:
    result = run_cli("check", "--format", "json", bad, good)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [f["path"] for f in report["files"]] == [str(bad), str(good)]
    bad_file, good_file = report["files"]
    assert good_file["diagnostics"] == [] and good_file["errors"] == 0
    assert bad_file["errors"] == len(bad_file["diagnostics"]) >= 5
    assert report["errors"] == bad_file["errors"]
    assert report["warnings"] == 0
    keys = {"path", "line", "column", "severity", "code", "message", "hint"}
    for item in bad_file["diagnostics"]:
        assert set(item) == keys
        assert item["path"] == str(bad)
        assert isinstance(item["line"], int) and item["line"] >= 1
        assert isinstance(item["column"], int) and item["column"] >= 1
        assert item["severity"] == "error"
        assert item["message"]
    codes = {d["code"] for d in bad_file["diagnostics"]}
    assert codes == {"unknown-key", "duplicate-id", "unknown-step", "cycle"}
    typo = next(d for d in bad_file["diagnostics"] if "timout" in d["message"])
    assert (typo["line"], typo["hint"]) == (line_of(BAD, "timout"), "did you mean 'timeout'?")


def test_check_directory_finds_markdown_recursively(tmp_path: Path) -> None:
    deep = tmp_path / "ops" / "db" / "postgres"
    deep.mkdir(parents=True)
    (tmp_path / "top.md").write_text(GOOD, encoding="utf-8")
    (deep / "restore.md").write_text(BAD, encoding="utf-8")
    (deep / "notes.txt").write_text("```bash {timout: 1}\n```\n", encoding="utf-8")
    result = run_cli("check", "--format", "json", tmp_path)
    assert result.returncode == 1
    paths = sorted(Path(f["path"]) for f in json.loads(result.stdout)["files"])
    assert paths == sorted([tmp_path / "top.md", deep / "restore.md"])
    assert "2 files checked" in run_cli("check", tmp_path).stderr


def test_check_missing_path_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.md"
    result = run_cli("check", missing)
    assert result.returncode == 2
    assert_no_traceback(result)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("runbook: error: ")
    assert str(missing) in lines[0]


# -- check: encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "bad_line"),
    [(b"# Caf\xe9\n\nSome text.\n", 1), (b"# Title\n\nAll fine.\nCaf\xe9 au lait\n", 4)],
)
def test_check_file_that_is_not_utf8_names_the_first_bad_line(
    tmp_path: Path, data: bytes, bad_line: int
) -> None:
    path = tmp_path / "legacy.md"
    path.write_bytes(data)
    result = run_cli("check", path)
    assert result.returncode == 1
    assert_no_traceback(result)
    (diagnostic,) = diagnostics_of(result.stdout)
    assert diagnostic["code"] == "encoding"
    assert diagnostic["severity"] == "error"
    assert int(diagnostic["line"]) == bad_line
    assert "UTF-8" in diagnostic["message"]
    assert "--fix" in diagnostic["hint"]
    assert path.read_bytes() == data, "check without --fix must not touch the file"


def test_check_fix_converts_cp1252_to_utf8(tmp_path: Path) -> None:
    path = tmp_path / "legacy.md"
    path.write_bytes("# Café\n\nPrix: 5 €\n".encode("cp1252"))
    result = run_cli("check", "--fix", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converted" in result.stderr
    assert path.read_text(encoding="utf-8") == "# Café\n\nPrix: 5 €\n"
    again = run_cli("check", path)
    assert again.returncode == 0
    assert again.stdout == ""


def test_check_reports_and_fix_repairs_mojibake(tmp_path: Path) -> None:
    path = tmp_path / "swedish.md"
    path.write_bytes("# FÃ¶rsta deployment\n".encode())
    before = run_cli("check", path)
    assert before.returncode == 0
    (warning,) = diagnostics_of(before.stdout)
    assert (warning["severity"], warning["code"], warning["line"]) == ("warning", "mojibake", "1")
    assert "--fix" in warning["hint"]

    fixed = run_cli("check", "--fix", path)
    assert fixed.returncode == 0
    assert "repaired 1 line(s): 1" in fixed.stderr
    assert path.read_text(encoding="utf-8") == "# Första deployment\n"
    assert "mojibake" not in fixed.stdout
    assert run_cli("check", path).stdout == ""


def test_check_fix_with_json_output_keeps_stdout_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "swedish.md"
    path.write_bytes("# FÃ¶rsta deployment\n".encode())
    result = run_cli("check", "--fix", "--format", "json", path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["warnings"] == 0
    assert "repaired" in result.stderr


def test_param_default_must_be_a_plain_value(tmp_path: Path) -> None:
    path = tmp_path / "params.md"
    path.write_text("---\nparams:\n  x: [1, 2]\n  z: {default: {a: 1}}\n---\n# H\n")
    result = run_cli("check", path)
    assert result.returncode == 1
    assert [(d["code"], d["line"]) for d in diagnostics_of(result.stdout)] == [
        ("param-value", "3"),
        ("param-value", "4"),
    ]


# -- check: front matter ------------------------------------------------------------------------


def test_front_matter_yaml_tag_is_an_error_and_never_executed(tmp_path: Path) -> None:
    text = (
        "---\n"
        "title: Harmless\n"
        'owner: !!python/object/apply:os.system ["touch X"]\n'
        "---\n\n# Harmless\n"
    )
    path = tmp_path / "evil.md"
    path.write_text(text, encoding="utf-8")
    for args in (["check", path], ["check", "--format", "json", path], ["show", path]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 1
        assert_no_traceback(result)
    result = run_cli("check", path, cwd=tmp_path)
    (diagnostic,) = diagnostics_of(result.stdout)
    assert diagnostic["code"] == "front-matter-yaml"
    assert int(diagnostic["line"]) == line_of(text, "!!python")
    assert diagnostic["hint"]
    assert not (tmp_path / "X").exists(), "the YAML tag was executed"


def test_unclosed_front_matter_is_an_error_at_line_one(tmp_path: Path) -> None:
    path = tmp_path / "open.md"
    path.write_text("---\ntitle: Never closed\n\n# Heading\n\n- [ ] A task\n", encoding="utf-8")
    result = run_cli("check", path)
    assert result.returncode == 1
    assert_no_traceback(result)
    (diagnostic,) = diagnostics_of(result.stdout)
    assert (diagnostic["code"], diagnostic["line"]) == ("front-matter-unclosed", "1")
    assert "---" in diagnostic["hint"]


# -- check: warnings ----------------------------------------------------------------------------

WARNINGS = """\
# Clean up

```bash {id: wipe}
rm -rf /tmp/x
```

```bash {id: broken}
if true; then
  echo "never closed"
```

```bash {id: careful-wipe, confirm: danger}
rm -rf /tmp/y
```
"""


def test_check_warns_about_destructive_commands_and_shell_syntax(tmp_path: Path) -> None:
    path = tmp_path / "warnings.md"
    path.write_text(WARNINGS, encoding="utf-8")
    result = run_cli("check", path)
    assert result.returncode == 0, "warnings alone must not fail the check"
    found = diagnostics_of(result.stdout)
    assert {d["severity"] for d in found} == {"warning"}
    assert sorted(d["code"] for d in found) == ["destructive", "shell-syntax"]

    destructive = next(d for d in found if d["code"] == "destructive")
    assert "'wipe'" in destructive["message"]
    assert "rm -rf" in destructive["message"]
    assert int(destructive["line"]) in {line_of(WARNINGS, "{id: wipe}"), line_of(WARNINGS, "/x")}
    assert "confirm: danger" in destructive["hint"]
    assert "careful-wipe" not in result.stdout, "a step with confirm: danger is not warned about"

    syntax = next(d for d in found if d["code"] == "shell-syntax")
    assert "'broken'" in syntax["message"]
    start = line_of(WARNINGS, "{id: broken}")
    assert start <= int(syntax["line"]) <= start + 3
    assert "run: false" in syntax["hint"]
    assert "0 errors, 2 warnings" in result.stderr


def test_confirm_danger_silences_the_destructive_warning(tmp_path: Path) -> None:
    path = tmp_path / "careful.md"
    path.write_text(
        "# Careful\n\n```bash {id: wipe, confirm: danger}\nrm -rf /tmp/x\n```\n", encoding="utf-8"
    )
    result = run_cli("check", path)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "0 errors, 0 warnings" in result.stderr


# -- show ---------------------------------------------------------------------------------------


def test_show_text_lists_numbered_steps_with_ids_and_the_parameters(good: Path) -> None:
    result = run_cli("show", good)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "Rotate the logs"
    assert "Parameters" in out
    for name, default in (("service", "api"), ("environment", "staging")):
        row = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert default in row
    assert "production" in out
    steps = [line.strip() for line in out.splitlines() if re.match(r"^\s+\d+\. ", line)]
    assert len(steps) == 3
    assert re.match(r"1\. \[manual ?\] rotate-the-logs-1\b", steps[0]), steps[0]
    assert re.match(r"2\. \[command\] rotate\b", steps[1]), steps[1]
    assert re.match(r"3\. \[command\] verify\b", steps[2]), steps[2]
    assert f"line {line_of(GOOD, '{id: rotate')}" in steps[1]
    assert "needs=rotate" in steps[2]
    assert "rotate -> verify" in out


def test_show_json_has_title_params_and_steps(good: Path) -> None:
    result = run_cli("show", "--format", "json", good)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert {"title", "params", "steps"} <= set(plan)
    assert plan["title"] == "Rotate the logs"
    assert [p["name"] for p in plan["params"]] == ["service", "environment"]
    assert plan["params"][1]["choices"] == ["staging", "production"]
    assert plan["params"][0]["default"] == "api"
    for step in plan["steps"]:
        assert {"id", "kind", "section", "line", "needs", "run"} <= set(step)
        assert step["kind"] in {"command", "manual"}
        assert isinstance(step["run"], bool) and isinstance(step["needs"], list)
    by_id = {s["id"]: s for s in plan["steps"]}
    assert list(by_id) == ["rotate-the-logs-1", "rotate", "verify"]
    assert by_id["rotate-the-logs-1"]["kind"] == "manual"
    assert by_id["rotate-the-logs-1"]["line"] == line_of(GOOD, "- [ ]")
    assert by_id["verify"] == {
        **by_id["verify"],
        "kind": "command",
        "section": "rotate",
        "line": line_of(GOOD, "{id: verify"),
        "needs": ["rotate"],
        "run": True,
    }


def test_show_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    for args in (["show", tmp_path / "gone.md"], ["show", "--format", "json", tmp_path]):
        result = run_cli(*args)
        assert result.returncode == 2
        assert_no_traceback(result)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("runbook: error: "), lines


def test_show_of_a_broken_runbook_exits_one_and_lists_the_errors(bad: Path) -> None:
    result = run_cli("show", bad)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert "[duplicate-id]" in result.stdout
    assert "[cycle]" in result.stdout


# -- a real terminal ----------------------------------------------------------------------------


def _spawn(*args: str | Path) -> tuple[str, int]:
    env = _env(TERM="xterm-256color")
    child = pexpect.spawn(
        str(RUNBOOK),
        [str(a) for a in args],
        encoding="utf-8",
        dimensions=(40, 200),
        env=env,
        timeout=30,
    )
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    assert child.exitstatus is not None, f"ended by signal {child.signalstatus}"
    return output, child.exitstatus


def test_check_in_a_terminal_is_colourised(bad: Path) -> None:
    output, status = _spawn("check", bad)
    assert status == 1
    assert ANSI.search(output), "no colours in a terminal"
    assert re.search(r"\x1b\[[0-9;]*31m(\x1b\[[0-9;]*m)*error: ", output), "errors not in red"
    plain = ANSI.sub("", output).replace("\r\n", "\n")
    assert f"{bad}:{line_of(BAD, 'timout')}:" in plain
    assert "error: unknown annotation key 'timout' [unknown-key]" in plain
    assert "  hint: did you mean 'timeout'?" in plain
    assert "1 file checked: 5 errors, 0 warnings" in plain
    assert "Traceback" not in plain


def test_show_in_a_terminal_is_colourised_and_exits_zero(good: Path) -> None:
    output, status = _spawn("show", good)
    assert status == 0
    assert ANSI.search(output)
    plain = ANSI.sub("", output).replace("\r\n", "\n")
    assert "Rotate the logs" in plain
    assert re.search(r"2\. \[command\] rotate\b", plain)
