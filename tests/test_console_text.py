"""Plain writes into a pipe are byte for byte what rich writes there, and a pipe's console
does not load rich."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from engine.console.text import PlainConsole, Text

PIECES = st.lists(
    st.sampled_from(["a", " ", "\t", "\n", "中", "é", "\r", "\x1b", "[b]", "\x07", "xy", "\u200b"]),
    max_size=30,
).map("".join)


def rich_print(*objects: object, end: str = "\n") -> str:
    out = io.StringIO()
    Console(file=out, highlight=False, soft_wrap=True, width=160).print(*objects, end=end)
    return out.getvalue()


def plain_print(*objects: object, end: str = "\n") -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        PlainConsole().print(*objects, end=end)
    return out.getvalue()


@given(st.lists(st.tuples(PIECES, st.sampled_from(["", "bold", "dim red"])), max_size=4))
def test_text_reads_as_rich_writes_it(parts: list[tuple[str, str]]) -> None:
    text = Text.assemble(*parts)
    assert plain_print(text) == rich_print(text)
    assert plain_print(text, end="") == rich_print(text, end="")


def test_what_is_not_our_text_goes_to_rich() -> None:
    from rich.table import Table

    table = Table("a", "b")
    table.add_row("1", "2")
    assert plain_print(table) == rich_print(table)
    assert plain_print("[bold]markup[/bold]") == rich_print("[bold]markup[/bold]")
    assert plain_print() == "\n"


def test_on_a_terminal_text_is_rich_text_with_its_styles() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=80)
    console.print(Text.assemble(("ok", "bold green"), " plain"))
    assert out.getvalue() == "\x1b[1;32mok\x1b[0m plain\n"


def test_an_unattended_run_into_a_pipe_loads_no_rich() -> None:
    code = (
        "import sys\n"
        "from engine.console.terminal import Terminal\n"
        "from engine.console.run import RunConsole\n"
        "t = Terminal()\n"
        "t.warning('careful')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "[]"
    assert done.stderr == "runbook: warning: careful\n"


def test_recorded_output_is_written_indented_in_pieces_as_plain_text() -> None:
    from engine.console.log import _PIECE, _write_indented

    line = "x" * 99
    output = "\x1b[31mred\x1b[0m\n50%\rdone\n" + "\n".join([line] * (3 * _PIECE // 100)) + "\n\n"
    written = io.StringIO()
    with contextlib.redirect_stdout(written):
        _write_indented(PlainConsole(), output, plain=True)
    lines = written.getvalue().split("\n")
    assert lines[:2] == ["    red", "    done"]
    assert lines[-1] == "" and set(lines[2:-1]) == {"    " + line}  # every piece's lines
    assert len(lines) - 3 == 3 * _PIECE // 100


def test_a_markdown_block_into_a_pipe_has_no_padding() -> None:
    from rich.markdown import Markdown

    shown = plain_print(Markdown("Expected output:\n\n```\nnotAfter=Dec 31 2026\n```\n"))
    assert "notAfter=Dec 31 2026" in shown
    assert all(line == line.rstrip() for line in shown.split("\n"))
