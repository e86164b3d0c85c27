"""Runbook text from bytes: UTF-8 decoding, and finding and repairing mojibake.

Mojibake is UTF-8 text that was once decoded as cp1252, Latin-1 or MacRoman and saved again
("FÃ¶rsta" for "Första"). ftfy does most of the repair; on top of it we restore the emoji
variation selector whose last byte (0x8F, undefined in cp1252) such round trips drop.
Pure: bytes or text in, text and line numbers out.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from engine.diagnostics import DiagnosticSink


@functools.cache
def _ftfy() -> tuple[Callable[[str], str], Callable[[str], bool]]:
    """ftfy's fixer (mojibake repairs only) and its badness test, imported on first use:
    most runbooks are plain ASCII and never need them."""
    import ftfy
    from ftfy.badness import is_bad

    config = ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        fix_surrogates=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )
    return functools.partial(ftfy.fix_text, config=config), is_bad


def is_bad(text: str) -> bool:
    return _ftfy()[1](text)


def _fix(text: str) -> str:
    return _ftfy()[0](text)


# cp1252 renderings of UTF-8 continuation bytes 0x80-0xBF.
_CP1252_CONTINUATION = (
    "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
# "\u00ef\u00b8" is EF B8 read as cp1252; U+FE0F (EF B8 8F) lost its last byte, undefined in cp1252.
_DROPPED_VS16 = re.compile(f"\u00ef\u00b8(?![{_CP1252_CONTINUATION}])")


@dataclass(frozen=True, slots=True)
class Repair:
    """The result of repairing mojibake: the new text and which lines changed or stayed bad."""

    text: str
    repaired: tuple[int, ...]
    unrestored: tuple[int, ...]


def decode_source(data: bytes, sink: DiagnosticSink) -> str:
    """Decode a runbook file as UTF-8; bad bytes become U+FFFD and one error names the first."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        sink.error(
            line,
            "encoding",
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02X} cannot be decoded",
            "save it as UTF-8; `runbook check --fix` converts a cp1252 or Latin-1 file",
            column=column,
        )
        return data.decode("utf-8-sig", errors="replace")


def decode_legacy(data: bytes) -> str:
    """Text of a file that is not UTF-8, read as cp1252 (Latin-1 for the bytes cp1252 lacks)."""
    return "".join(
        chunk.decode("cp1252", errors="strict") if _is_cp1252(chunk) else chunk.decode("latin-1")
        for chunk in data.splitlines(keepends=True)
    )


def _is_cp1252(chunk: bytes) -> bool:
    try:
        chunk.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


_CODECS = ("cp1252", "mac_roman", "latin-1")


def mojibake_lines(text: str) -> list[int]:
    """1-based numbers of the lines that look like mis-decoded UTF-8."""
    return sorted(_mojibake(text.splitlines()))


def _mojibake(lines: list[str]) -> dict[int, str]:
    """Mis-decoded lines and their repair. ftfy's judgement first; then, with that evidence
    that the file went through a wrong codec, any line that the same codec turns back into
    valid UTF-8 (short ones such as "PÃ¥" that ftfy alone leaves alone)."""
    found: dict[int, str] = {}
    evidence: Counter[str] = Counter()
    for number, line in enumerate(lines, 1):
        if line.isascii():
            continue
        fixed = _repair_line(line)
        if is_bad(line) or fixed != line:
            found[number] = fixed
            evidence.update(c for c in _CODECS if _round_trip(line, c) == fixed)
    codecs = [codec for codec, _ in evidence.most_common()]
    for number, line in enumerate(lines, 1):
        if number in found or line.isascii():
            continue
        for codec in codecs:
            trip = _round_trip(line, codec)
            if trip is not None:
                found[number] = trip
                break
    return found


def _round_trip(line: str, codec: str) -> str | None:
    try:
        fixed = line.encode(codec).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if fixed != line else None


def report_mojibake(text: str, sink: DiagnosticSink) -> None:
    """One warning at the first mis-decoded line, listing every such line."""
    found = mojibake_lines(text)
    if found:
        sink.warning(
            found[0],
            "mojibake",
            f"{_lines_look(len(found))} mis-decoded (UTF-8 read as cp1252, Latin-1 or MacRoman): "
            f"{'line' if len(found) == 1 else 'lines'} {format_line_ranges(found)}",
            "run `runbook check --fix FILE` to repair them",
        )


def _lines_look(count: int) -> str:
    return "1 line looks" if count == 1 else f"{count} lines look"


def repair_mojibake(text: str) -> Repair:
    """Repair every mis-decoded line; lines still looking wrong afterwards are `unrestored`."""
    lines = text.splitlines(keepends=True)
    found = _mojibake([line.rstrip("\r\n") for line in lines])
    repaired, unrestored, out = [], [], []
    for number, line in enumerate(lines, 1):
        fixed = found.get(number)
        if fixed is None:
            out.append(line)
            continue
        ending = line[len(line.rstrip("\r\n")) :]
        if fixed != line.rstrip("\r\n"):
            repaired.append(number)
        if is_bad(fixed):
            unrestored.append(number)
        out.append(fixed + ending)
    return Repair("".join(out), tuple(repaired), tuple(unrestored))


def _repair_line(line: str) -> str:
    with_selector = _DROPPED_VS16.sub("\u00ef\u00b8\u008f", line)
    if with_selector != line:
        fixed = _fix(with_selector)
        if "\u008f" not in fixed:
            return fixed
    return _fix(line)


def format_line_ranges(numbers: list[int]) -> str:
    """`3, 5-7, 10` for [3, 5, 6, 7, 10]."""
    ranges: list[str] = []
    start = prev = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == prev + 1:
            prev = number
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if number is not None:
            start = prev = number
    return ", ".join(ranges)
