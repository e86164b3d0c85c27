"""Terminal output as HTML: what the operator saw, styled, with nothing a terminal would not
print and nothing a browser would run."""

from __future__ import annotations

import html
import re

import pytest

from engine.publish.terminal_html import hex_colour, terminal_html


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_plain_text_is_escaped_and_kept_line_by_line() -> None:
    out = terminal_html(b'total 8\n<script>alert(1)</script> & "q"\n')
    assert out == 'total 8\n&lt;script&gt;alert(1)&lt;/script&gt; &amp; "q"\n'


def test_the_sixteen_colours_are_classes() -> None:
    out = terminal_html(b"\x1b[31merror\x1b[0m \x1b[1;92mok\x1b[0m \x1b[44mblue\x1b[49m")
    assert '<span class="rb-fg-1">error</span>' in out
    assert '<span class="rb-fg-10 rb-bold">ok</span>' in out
    assert '<span class="rb-bg-4">blue</span>' in out


def test_256_and_truecolour_foreground_and_background() -> None:
    out = terminal_html(b"\x1b[38;5;208mamber\x1b[0m \x1b[48;5;236mgrey\x1b[0m \x1b[38;5;9mnine")
    assert '<span style="color:#ff8700">amber</span>' in out
    assert '<span style="background-color:#303030">grey</span>' in out
    assert '<span class="rb-fg-9">nine</span>' in out
    out = terminal_html(b"\x1b[38;2;255;100;0mtrue\x1b[0m\x1b[48;2;1;2;3mback\x1b[m")
    assert '<span style="color:#ff6400">true</span>' in out
    assert '<span style="background-color:#010203">back</span>' in out


def test_colon_separated_colours() -> None:
    out = terminal_html(b"\x1b[38:5:196mred\x1b[0m \x1b[38:2::0:128:255mazure\x1b[0m")
    assert '<span style="color:#ff0000">red</span>' in out
    assert '<span style="color:#0080ff">azure</span>' in out


@pytest.mark.parametrize(
    ("index", "colour"), [(16, "#000000"), (21, "#0000ff"), (231, "#ffffff"), (232, "#080808")]
)
def test_the_xterm_palette(index: int, colour: str) -> None:
    assert hex_colour(index) == colour


def test_reverse_video_swaps_colours() -> None:
    out = terminal_html(b"\x1b[7mselected\x1b[27m \x1b[31;7mred-rev\x1b[0m")
    assert '<span class="rb-fg-rev rb-bg-rev">selected</span>' in out
    assert '<span class="rb-fg-rev rb-bg-1">red-rev</span>' in out


def test_attributes() -> None:
    out = terminal_html(b"\x1b[2mdim\x1b[22m\x1b[3mit\x1b[23m\x1b[4mun\x1b[24m\x1b[9mst\x1b[0m")
    for name, word in (("dim", "dim"), ("italic", "it"), ("underline", "un"), ("strike", "st")):
        assert f'<span class="rb-{name}">{word}</span>' in out


def test_carriage_return_redraws_show_their_final_state() -> None:
    progress = b"".join(f"\rDownloading {n:3d}%".encode() for n in range(0, 101, 10))
    out = terminal_html(progress + b"\ndone\n")
    assert out == "Downloading 100%\ndone\n"
    # A shorter redraw after an erase-line leaves no tail of the longer one.
    assert terminal_html(b"working........\r\x1b[Kdone\n") == "done\n"


def test_cursor_up_redraws_a_block_of_lines() -> None:
    data = b"layer1: waiting\nlayer2: waiting\n\x1b[2A\x1b[2Klayer1: done\n\x1b[2Klayer2: done\n"
    assert terminal_html(data) == "layer1: done\nlayer2: done\n"


def test_backspaces_are_applied() -> None:
    assert terminal_html(b"cat\b\bow\n") == "cow\n"
    assert terminal_html(b"_\bb_\bo_\bl_\bd") == "bold"  # man-page overstrike


def test_other_control_sequences_leave_no_trace() -> None:
    data = (
        b"\x1b[?25l"  # hide the cursor
        b"\x1b]0;deploying web1\x07"  # window title, BEL-terminated
        b"\x1b]2;title\x1b\\"  # window title, ST-terminated
        b"\x1b]8;;https://example.com/run/42\x1b\\see the log\x1b]8;;\x1b\\"  # OSC 8 link
        b"\x07\x1b(B\x1b=\x1bPqdata\x1b\\"  # bell, charset, keypad, DCS
        b" end\x1b[?25h\x1b[?2004h"
    )
    out = terminal_html(data)
    assert out == "see the log end"
    assert "\x1b" not in out


def test_the_alternate_screen_is_gone_when_the_program_ends() -> None:
    data = b"before\n\x1b[?1049h\x1b[2J\x1b[Hless screen\x1b[?1049lafter\n"
    assert terminal_html(data) == "before\nafter\n"


def test_tabs_and_invalid_utf8() -> None:
    assert terminal_html(b"a\tb\n") == "a       b\n"
    assert text(terminal_html(b"bad \xff byte")) == "bad \ufffd byte"


def test_an_escape_cut_off_at_the_end_leaves_nothing() -> None:
    assert terminal_html(b"tail\x1b[3") == "tail"
    assert terminal_html(b"tail\x1b") == "tail"


def test_style_carries_across_lines_and_resets() -> None:
    out = terminal_html(b"\x1b[32mone\ntwo\x1b[0m three")
    assert out == '<span class="rb-fg-2">one</span>\n<span class="rb-fg-2">two</span> three'


def test_no_markup_can_come_from_the_output() -> None:
    hostile = b'\x1b[38;2;1;2;3m"><img src=x onerror=alert(1)>\x1b]8;;javascript:alert(1)\x07x'
    out = terminal_html(hostile)
    assert "<img" not in out and "javascript" not in out
    assert re.fullmatch(r'(<span style="color:#010203">|</span>|[^<>])*', out), out


@pytest.mark.parametrize(
    "data",
    [
        b"plain\nlines\n",
        b"\x1b[31mred\nstill red\x1b[0m\nplain \x1b[1;4mbold\x1b[22m under\x1b[0m\n\n",
        b"\x1b[38;5;208ma\x1b[48;2;1;2;3mb\x1b[7mc\x1b[m\x1b[m\x1b[32m\x1b[0m end",
        b"<&>\x1b[34m<b>\n\n\x1b[0m",
    ],
)
def test_the_quick_way_for_colour_only_logs_gives_the_same_html(data: bytes) -> None:
    from engine.publish.terminal_html import _emulated

    assert terminal_html(data) == _emulated(data.decode())
