"""Shared helpers: parse and plan plain strings, and summarise diagnostics as (code, line)."""

from __future__ import annotations

import textwrap

import pytest

from engine.diagnostics import Diagnostic
from engine.model import Runbook
from engine.parse import parse_runbook
from engine.plan import Plan, plan_runbook


def parse(text: str) -> Runbook:
    return parse_runbook(textwrap.dedent(text).lstrip("\n"), "t.md")


def plan(text: str) -> Plan:
    return plan_runbook(parse(text))


def found(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> list[tuple[str, int]]:
    """(code, line) of each diagnostic, in order: what most tests compare."""
    return [(d.code, d.location.line) for d in diagnostics]


@pytest.fixture
def fence() -> str:
    return "```"
