"""A step's terminal output as safe HTML: what a person saw on the screen.

Colours and attributes (16, 256 and 24-bit colours, backgrounds, bold, dim, italic,
underline, strike-through, reverse video) become spans: classes for the 16 named colours and
the attributes (styled by runbook.css, in the light and dark palettes), an inline `color` or
`background-color` computed here for the others. Everything else a terminal obeys and does
not print is obeyed or dropped: carriage returns and backspaces overwrite (a progress bar shows
its last state), cursor moves and line erases are applied, OSC 8 hyperlinks keep their text,
window titles, cursor visibility, modes and the alternate screen leave nothing.

Pure: bytes in, HTML out. The text is kept line by line, not on a fixed-size screen, so a
long log stays whole; absolute cursor positions count from the last 24 lines.
"""

from __future__ import annotations

import codecs
import functools
import html
import re
from dataclasses import dataclass, replace

SCREEN_ROWS = 24
TAB = 8

_TOKEN = re.compile(
    r"\x1b\[([0-?]*)[ -/]*([@-~])"  # CSI: parameters and final byte
    r"|\x1b\[[0-?]*[ -/]*\Z"  # a CSI cut off at the end
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: titles, hyperlinks, colours
    r"|\x1b[P_^X][^\x1b]*(?:\x1b\\)?"  # DCS, APC, PM, SOS strings
    r"|\x1b[ -/]*[0-~]?"  # other escapes (charset, keypad, save/restore)
    r"|[\x00-\x1f\x7f]"  # C0 controls and DEL
)
_ALTERNATE = {"?1049", "?1047", "?47"}
# xterm's 16 colours are named classes; 16-231 a 6x6x6 cube, 232-255 a grey ramp.
_CUBE = (0, 95, 135, 175, 215, 255)

Colour = int | str | None  # 0-255, "#rrggbb", or the terminal's default


@dataclass(frozen=True, slots=True)
class Style:
    """The graphic rendition of a character (SGR)."""

    fg: Colour = None
    bg: Colour = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False
    strike: bool = False
    hidden: bool = False


PLAIN = Style()


class _Screen:
    """Lines as runs of (text, style), a cursor, and the style being written with. Text
    written at the end of a line is appended as a run; only an overwrite (after a carriage
    return, a backspace, a cursor move) splits a line into characters and back."""

    def __init__(self) -> None:
        self.lines: list[list[tuple[str, Style]]] = [[]]
        self.widths: list[int] = [0]
        self.row = 0
        self.col = 0
        self.style = PLAIN

    def write(self, text: str) -> None:
        row, width = self.row, self.widths[self.row]
        if self.col >= width:
            runs = self.lines[row]
            if self.col > width:  # the cursor was moved past the end: fill with spaces
                runs.append((" " * (self.col - width), PLAIN))
            if runs and runs[-1][1] is self.style:
                runs[-1] = (runs[-1][0] + text, self.style)
            else:
                runs.append((text, self.style))
        elif self.col == 0 and len(text) >= width:  # a redraw of the whole line
            self.lines[row] = [(text, self.style)]
        else:
            chars, styles = self._cells(row)
            chars[self.col : self.col + len(text)] = text
            styles[self.col : self.col + len(text)] = [self.style] * len(text)
            self._set(row, chars, styles)
        self.col += len(text)
        self.widths[row] = max(width, self.col)

    def _cells(self, row: int) -> tuple[list[str], list[Style]]:
        chars: list[str] = []
        styles: list[Style] = []
        for text, style in self.lines[row]:
            chars.extend(text)
            styles.extend([style] * len(text))
        return chars, styles

    def _set(self, row: int, chars: list[str], styles: list[Style]) -> None:
        runs: list[tuple[str, Style]] = []
        start = 0
        for index in range(1, len(chars) + 1):
            if index == len(chars) or styles[index] != styles[start]:
                runs.append(("".join(chars[start:index]), styles[start]))
                start = index
        self.lines[row] = runs
        self.widths[row] = len(chars)

    def move_to_row(self, row: int) -> None:
        while len(self.lines) <= row:
            self.lines.append([])
            self.widths.append(0)
        self.row = max(0, row)

    def erase_line(self, mode: int) -> None:
        chars, styles = self._cells(self.row)
        if mode == 0:
            del chars[self.col :], styles[self.col :]
        elif mode == 1:
            count = min(self.col + 1, len(chars))
            chars[:count] = " " * count
            styles[:count] = [PLAIN] * count
        else:
            chars, styles = [], []
        self._set(self.row, chars, styles)

    def erase_below(self) -> None:
        self.erase_line(0)
        del self.lines[self.row + 1 :], self.widths[self.row + 1 :]


def terminal_html(data: bytes) -> str:
    """The output's final state as HTML for a `<pre>`: escaped text in styled spans."""
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=True)
    if _SLOW.search(text) is None:  # only colours and newlines: no line is ever redrawn
        return _colours_only(text)
    return _emulated(text)


# Anything but newlines and colour changes: carriage returns, backspaces, tabs, cursor moves,
# other escapes. Most logs have none of them and take the quick way.
_SLOW = re.compile(r"[\x00-\x09\x0b-\x1a\x1c-\x1f\x7f]|\x1b(?!\[[0-9;:]*m)")
_SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def _emulated(text: str) -> str:
    return "\n".join(
        "".join(_span(run, style) for run, style in runs) for runs in _screen_lines(text)
    )


def _colours_only(text: str) -> str:
    """The same HTML as `_emulated` for text whose only controls are newlines and SGR."""
    parts: list[str] = []
    style = PLAIN
    position = 0
    for match in _SGR.finditer(text):
        if match.start() > position:
            parts.append(_lines_span(text[position : match.start()], style))
        style = sgr(match.group(1), style)
        position = match.end()
    if position < len(text):
        parts.append(_lines_span(text[position:], style))
    return "".join(parts)


def _lines_span(text: str, style: Style) -> str:
    if style is PLAIN or style == PLAIN or "\n" not in text:
        return _span(text, style)
    return "\n".join(_span(line, style) if line else "" for line in text.split("\n"))


def _screen_lines(text: str) -> list[list[tuple[str, Style]]]:
    main = screen = _Screen()
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            screen.write(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token == "\n":
            screen.move_to_row(screen.row + 1)
            screen.col = 0
        elif token == "\r":
            screen.col = 0
        elif token == "\b":
            screen.col = max(0, screen.col - 1)
        elif token == "\t":
            screen.write(" " * (TAB - screen.col % TAB))
        elif match.group(2) is not None:
            params, final = match.group(1), match.group(2)
            if final in "hl" and params in _ALTERNATE:
                # The alternate screen (a pager, an editor) is gone when the program ends.
                screen = _Screen() if final == "h" else main
                if final == "h":
                    screen.style = main.style
            else:
                _csi(screen, params, final)
    if position < len(text):
        screen.write(text[position:])
    return main.lines


def _numbers(params: str, default: int) -> list[int]:
    values = []
    for part in params.split(";"):
        digits = part.split(":")[0]
        values.append(int(digits) if digits.isdigit() else default)
    return values


def _csi(screen: _Screen, params: str, final: str) -> None:
    if params.startswith(("?", ">", "<", "=")):
        return  # private modes: cursor visibility, bracketed paste, mouse, ...
    if final == "m":
        screen.style = sgr(params, screen.style)
        return
    first = _numbers(params, 0)[0] if params else 0
    count = max(first, 1)
    if final == "A":
        screen.move_to_row(max(0, screen.row - count))
    elif final in "BE":
        screen.move_to_row(screen.row + count)
        screen.col = 0 if final == "E" else screen.col
    elif final == "F":
        screen.move_to_row(max(0, screen.row - count))
        screen.col = 0
    elif final == "C":
        screen.col += count
    elif final == "D":
        screen.col = max(0, screen.col - count)
    elif final == "G":
        screen.col = count - 1
    elif final in "Hf":
        numbers = [*_numbers(params, 1), 1, 1]
        top = max(0, len(screen.lines) - SCREEN_ROWS)
        screen.move_to_row(top + max(numbers[0], 1) - 1)
        screen.col = max(numbers[1], 1) - 1
    elif final == "K":
        screen.erase_line(first)
    elif final == "J" and first == 0:
        screen.erase_below()
    # Anything else (scroll regions, reports, whole-screen erases) leaves the text as it is.


@functools.lru_cache(maxsize=1024)
def sgr(params: str, style: Style) -> Style:
    """The style after `ESC [ params m`; 38/48 take `5;n` or `2;r;g;b` (`:` forms too)."""
    parts = params.replace(":", ";").split(";") if params else ["0"]
    codes = [int(p) if p.isdigit() else 0 for p in parts]
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if code in (38, 48, 58):
            colour: Colour = None
            if index < len(codes) and codes[index] == 5 and index + 1 < len(codes):
                colour = min(codes[index + 1], 255)
                index += 2
            elif index < len(codes) and codes[index] == 2:
                # `38;2;r;g;b`, or `38:2:colourspace:r:g:b` with an empty colour space
                rgb = codes[index + 1 : index + 4]
                if ":" in params and len(codes) - index > 4 and parts[index + 1] == "":
                    rgb = codes[index + 2 : index + 5]
                    index += 1
                index += 4
                if len(rgb) == 3:
                    colour = "#" + "".join(f"{min(v, 255):02x}" for v in rgb)
            if code == 38:
                style = replace(style, fg=colour)
            elif code == 48:
                style = replace(style, bg=colour)
            continue
        style = _simple(code, style)
    return style


_ATTRIBUTES = {
    1: {"bold": True},
    2: {"dim": True},
    3: {"italic": True},
    4: {"underline": True},
    7: {"reverse": True},
    8: {"hidden": True},
    9: {"strike": True},
    21: {"underline": True},
    22: {"bold": False, "dim": False},
    23: {"italic": False},
    24: {"underline": False},
    27: {"reverse": False},
    28: {"hidden": False},
    29: {"strike": False},
    39: {"fg": None},
    49: {"bg": None},
}


def _simple(code: int, style: Style) -> Style:
    if code == 0:
        return PLAIN
    if code in _ATTRIBUTES:
        return replace(style, **_ATTRIBUTES[code])  # type: ignore[arg-type]
    if 30 <= code <= 37:
        return replace(style, fg=code - 30)
    if 40 <= code <= 47:
        return replace(style, bg=code - 40)
    if 90 <= code <= 97:
        return replace(style, fg=code - 90 + 8)
    if 100 <= code <= 107:
        return replace(style, bg=code - 100 + 8)
    return style  # blink, fonts, overline, ...: not shown


def hex_colour(index: int) -> str:
    """An xterm 256-colour index (16-255) as #rrggbb."""
    if index >= 232:
        grey = 8 + (index - 232) * 10
        return f"#{grey:02x}{grey:02x}{grey:02x}"
    index -= 16
    red, green, blue = _CUBE[index // 36], _CUBE[index // 6 % 6], _CUBE[index % 6]
    return f"#{red:02x}{green:02x}{blue:02x}"


def _span(text: str, style: Style) -> str:
    text = html.escape(text, quote=False)
    if style is PLAIN or style == PLAIN:
        return text
    tag = _open_tag(style)
    return f"{tag}{text}</span>" if tag else text


@functools.lru_cache(maxsize=1024)
def _open_tag(style: Style) -> str:
    """`<span ...>` for a style: classes for named colours and attributes, else inline CSS."""
    classes, css = [], []
    fg, bg = style.fg, style.bg
    if style.reverse:
        fg, bg = (bg if bg is not None else "rev"), (fg if fg is not None else "rev")
    for kind, colour, prop in (("fg", fg, "color"), ("bg", bg, "background-color")):
        if colour == "rev":
            classes.append(f"rb-{kind}-rev")
        elif isinstance(colour, int) and colour < 16:
            classes.append(f"rb-{kind}-{colour}")
        elif isinstance(colour, int):
            css.append(f"{prop}:{hex_colour(colour)}")
        elif isinstance(colour, str):
            css.append(f"{prop}:{colour}")
    for name in ("bold", "dim", "italic", "underline", "strike", "hidden"):
        if getattr(style, name):
            classes.append(f"rb-{name}")
    attributes = f' class="{" ".join(classes)}"' if classes else ""
    attributes += f' style="{";".join(css)}"' if css else ""
    return f"<span{attributes}>" if attributes else ""
