"""Regular expressions written in runbooks (a parameter's `pattern`, an `expect` prompt), run
with a time limit and checked for exponential backtracking before a run starts.

Python's `re` cannot be interrupted; the `regex` package (same syntax) takes a timeout. Pure.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import regex

TIMEOUT = 1.0  # seconds a runbook's pattern may take on one value or one screen of output
PROBE_TIMEOUT = 0.1  # seconds a probe may take before the pattern is called exponential


class PatternError(ValueError):
    """A runbook pattern that is invalid, or that ran past its time limit."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """The compiled pattern; raises PatternError when it is not a valid expression."""
    import regex  # imported on first use: ~50 ms, and most runbooks have no pattern

    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise PatternError(f"{pattern!r} is not a valid regular expression: {exc}") from None


def fullmatch(pattern: str, value: str, timeout: float = TIMEOUT) -> bool:
    """Whether the whole of `value` matches; raises PatternError past `timeout` seconds."""
    try:
        return compile_pattern(pattern).fullmatch(value, timeout=timeout) is not None
    except TimeoutError:
        raise PatternError(f"pattern {pattern!r} took longer than {timeout:g} s") from None


def matches(pattern: str, value: str) -> bool:
    """Whether the whole of `value` matches; a pattern too slow to answer counts as no match
    (a parameter's value is checked with it: in front matter, on the command line, at a prompt)."""
    try:
        return fullmatch(pattern, value)
    except PatternError:
        return False


def search(pattern: str, text: str, timeout: float = TIMEOUT) -> Any:
    """The first match in `text` (for an expect prompt); raises PatternError past `timeout`."""
    try:
        return compile_pattern(pattern).search(text, timeout=timeout)
    except TimeoutError:
        raise PatternError(f"pattern {pattern!r} took longer than {timeout:g} s") from None


def pattern_problem(pattern: str) -> str | None:
    """Why a runbook pattern is unsafe to run (invalid, or exponential on a short input built
    from its own characters, as `(a+)+$` is on "aaaa…!"), or None."""
    try:
        compiled = compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    letters = {c for c in pattern if c.isalnum() or c in " -_.:/@"} | {"a", "0", " ", "-", "."}
    for letter in sorted(letters):
        for tail in ("!", "\n", ""):
            probe = letter * 28 + tail
            try:
                compiled.fullmatch(probe, timeout=PROBE_TIMEOUT)
                compiled.search(probe, timeout=PROBE_TIMEOUT)
            except TimeoutError:
                return (
                    f"pattern {pattern!r} takes exponential time on input like {probe[:8]!r}…;"
                    " rewrite nested repetition such as (a+)+"
                )
    return None
