"""Regular expressions from runbooks: checked for exponential backtracking, run with a limit."""

from __future__ import annotations

import time

import pytest

from engine.plan import resolve_params
from engine.regexes import PatternError, fullmatch, pattern_problem, search
from tests.conftest import found, parse, plan

SLOW = "(a|aa)+$"


def test_an_exponential_pattern_is_reported_by_check_at_its_line() -> None:
    result = plan(
        "---\nparams:\n  name: {pattern: '" + SLOW + "', default: aaa}\n---\n# A\n\n"
        "```bash {expect: [{prompt: '(x|xx)+y', send: 'n'}]}\necho {{ name }}\n```\n"
    )
    assert found(result.diagnostics) == [("slow-pattern", 3), ("slow-pattern", 7)]
    assert "exponential" in result.diagnostics[0].message


def test_ordinary_patterns_pass() -> None:
    for pattern in ("[0-9]+", "[a-z][a-z0-9-]*", r"v\d+\.\d+\.\d+", "(yes|no)", "Password: ?$"):
        assert pattern_problem(pattern) is None


def test_a_parameter_pattern_runs_with_a_time_limit() -> None:
    runbook = parse("---\nparams:\n  name: {pattern: '" + SLOW + "'}\n---\n")
    started = time.monotonic()
    _, _, problems = resolve_params(runbook, {"name": "a" * 60 + "!"})
    assert time.monotonic() - started < 10
    assert problems == [f"'name' must match {SLOW!r}, got {'a' * 60 + '!'!r}"]


def test_the_safe_functions_time_out_instead_of_hanging() -> None:
    with pytest.raises(PatternError, match="took longer"):
        fullmatch(SLOW, "a" * 60 + "!", timeout=0.2)
    with pytest.raises(PatternError, match="took longer"):
        search(SLOW, "a" * 60 + "!", timeout=0.2)
    with pytest.raises(PatternError, match="not a valid"):
        fullmatch("(", "x")
    assert fullmatch("[0-9]+", "123")
    assert search("Password: ?$", "Enter Password: ") is not None
