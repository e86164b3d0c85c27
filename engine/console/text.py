"""Styled text that needs rich only when it is shown on a terminal.

Into a pipe or a file the console prints plain text (`PlainConsole`), exactly as rich would
(control characters dropped, tabs expanded), without loading rich: a third of an unattended
run's start-up. On a terminal, `Text` becomes rich's own Text (`__rich__`), with its styles.
"""

from __future__ import annotations

import os
import re
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text as RichText

# What rich's Text drops from its text: BEL, BS, VT, FF and CR.
_DROPPED = {code: None for code in (7, 8, 11, 12, 13)}
TAB_SIZE = 8
_NARROW = re.compile(r"[\t\n\x20-\x7e]*")  # one column each (but tabs and line breaks)
# Variables that make rich treat a pipe as a terminal: with any of them set, rich prints.
_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")


class Text:
    """A line (or lines) of text in styled pieces: the part of rich's Text the console uses."""

    __slots__ = ("_pieces",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self._pieces: list[tuple[str, str]] = [(text, style)] if text else []

    @classmethod
    def assemble(cls, *parts: str | tuple[str, str] | Text) -> Text:
        text = cls()
        for part in parts:
            if isinstance(part, Text):
                text.append_text(part)
            elif isinstance(part, tuple):
                text.append(part[0], style=part[1])
            else:
                text.append(part)
        return text

    def append(self, text: str | Text, style: str | None = None) -> Text:
        if isinstance(text, Text):
            return self.append_text(text)
        if text:
            self._pieces.append((text, style or ""))
        return self

    def append_text(self, text: Text) -> Text:
        self._pieces.extend(text._pieces)
        return self

    @property
    def plain(self) -> str:
        return "".join(piece for piece, _ in self._pieces)

    def __str__(self) -> str:
        return self.plain

    def __len__(self) -> int:
        return len(self.plain)

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and self._pieces == other._pieces

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Text({self.plain!r})"

    def __rich__(self) -> RichText:
        from rich.text import Text as RichText

        return RichText.assemble(*self._pieces)


def plain_line(text: Text) -> str | None:
    """What rich writes for `text` into a pipe (no wrapping): control characters dropped,
    tabs expanded to the next multiple of eight columns. None for a tab after a character
    whose width on screen is not one column (wide, zero-width): that is rich's to measure."""
    shown = text.plain.translate(_DROPPED)
    if "\t" not in shown:
        return shown
    if not _NARROW.fullmatch(shown):
        return None
    return "\n".join(line.expandtabs(TAB_SIZE) for line in shown.split("\n"))


def prints_plainly(stream: IO[str]) -> bool:
    """Whether rich would print plain text to `stream`: not a terminal, and not told to."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return False
    return not any(os.environ.get(name) for name in _TERMINAL_VARIABLES)


class PlainConsole:
    """A console for a pipe or a file: our `Text` written as is; anything else (a table, a
    Markdown block, a plain string with rich markup) handed to a rich Console made then."""

    is_terminal = False

    def __init__(self, stderr: bool = False, width: int = 160) -> None:
        self._stderr = stderr
        self._width = width
        self._rich: Console | None = None

    @property
    def file(self) -> IO[str]:
        return sys.stderr if self._stderr else sys.stdout

    def print(self, *objects: Any, end: str = "\n", sep: str = " ") -> None:
        lines = [plain_line(o) if isinstance(o, Text) else None for o in objects]
        stream = self.file
        if None in lines and all(isinstance(o, Text | str) for o in objects):
            self.rich.print(*objects, end=end, sep=sep)
            return
        if None in lines:
            # A block rich lays out (Markdown, a table), without the padding it adds to fill
            # the width (a code block in a step's prose): a pipe gets text, not rows of spaces.
            with self.rich.capture() as captured:
                self.rich.print(*objects, end=end, sep=sep)
            stream.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
            stream.flush()
            return
        stream.write(sep.join(lines) + end)  # type: ignore[arg-type]
        stream.flush()

    @property
    def rich(self) -> Console:
        """The rich Console this one stands for, made on first need."""
        if self._rich is None:
            from rich.console import Console

            self._rich = Console(
                stderr=self._stderr, highlight=False, soft_wrap=True, width=self._width
            )
        return self._rich
