"""The Jinja sandbox the runbook's templates run in, bounded in time and size.

Jinja's own sandbox stops attribute escapes; this one also stops a template from hanging
`check` or the site build: no folding of `7**(10**8)` at compile time, no huge repetition or
padding, no `lipsum`, and a wall-clock limit on rendering. Pure (a timer signal at most).
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

LIMIT = 100_000  # the largest repetition, padding or width a template may ask for
MAX_DIGITS = 4_300  # the largest integer a power may make (Python's own str() limit)
SECONDS = 2.0  # the longest a template may take to render

_WIDE_FORMAT = re.compile(r"%[^a-zA-Z%]*(\*|\d{6,})")
_PADDING = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SIZED_FILTERS = ("center", "indent", "wordwrap", "truncate", "batch", "slice")


class TooLong(SecurityError):
    """A template that ran past the time limit."""


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose operators and padding are checked for size before they run."""

    intercepted_binops = frozenset({"**", "*", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, **options)
        self.globals.pop("lipsum", None)
        for name in _SIZED_FILTERS:
            self.filters[name] = _sized(self.filters[name])

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if (
            operator_ == "**"
            and _is_int(left)
            and _is_int(right)
            and right > 0
            and abs(left) > 1
            and right * math.log10(abs(left)) > MAX_DIGITS
        ):
            raise SecurityError("the power is too large to compute in a template")
        if operator_ == "*":
            for count, other in ((left, right), (right, left)):
                sized = _is_int(count) and isinstance(other, str | list | tuple)
                if sized and count * max(len(other), 1) > LIMIT:
                    raise SecurityError("the repetition is too large for a template")
        if operator_ == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise SecurityError("the format width is too large for a template")
        return super().call_binop(context, operator_, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(__obj, "__name__", "") in _PADDING and isinstance(
            getattr(__obj, "__self__", None), str
        ):
            _check_sizes(args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_sizes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _is_int(value) and value > LIMIT:
            raise SecurityError(f"a size of {value} is too large for a template (at most {LIMIT})")


def _sized(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose numeric arguments are checked before it runs."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_sizes(args[1:], kwargs)
        return function(*args, **kwargs)

    for attribute in ("jinja_pass_arg",):
        if hasattr(function, attribute):
            setattr(checked, attribute, getattr(function, attribute))
    checked.__name__ = getattr(function, "__name__", "filter")
    return checked


@contextlib.contextmanager
def time_limit(seconds: float = SECONDS) -> Iterator[None]:
    """Stop a template that runs longer than `seconds` (only in the main thread, where a timer
    signal can be delivered; elsewhere the size bounds alone apply)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return
    if signal.getitimer(signal.ITIMER_REAL)[0]:
        yield  # someone else's timer is running: leave it alone
        return

    def expire(_signum: int, _frame: object) -> None:
        raise TooLong(f"the template took longer than {seconds:g} s to render")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
