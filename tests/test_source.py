"""Decoding and mojibake: made from known text round-tripped through the wrong codecs."""

from __future__ import annotations

from engine.diagnostics import DiagnosticSink
from engine.duration import format_duration, parse_duration
from engine.source import (
    decode_legacy,
    decode_source,
    format_line_ranges,
    mojibake_lines,
    repair_mojibake,
    report_mojibake,
)

CLEAN = "# Första deployment\n\nKör `make deploy` på servern.\n\nAll ASCII here.\n"


def mis_decode(text: str, codec: str) -> str:
    """UTF-8 bytes read as `codec`: what a careless editor saves."""
    return text.encode("utf-8").decode(codec, errors="replace")


def test_valid_utf8_decodes_without_diagnostics() -> None:
    sink = DiagnosticSink("t.md")
    assert decode_source("\ufeff# Första\n".encode(), sink) == "# Första\n"
    assert sink.items == []


def test_invalid_utf8_names_the_first_bad_line_and_column() -> None:
    sink = DiagnosticSink("t.md")
    text = decode_source(b"# Title\nok\nCaf\xe9 au lait\n\xff\n", sink)
    assert "Caf\ufffd" in text
    [diagnostic] = sink.items
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        "encoding",
        3,
        4,
    )
    assert "0xE9" in diagnostic.message


def test_legacy_text_is_read_as_cp1252() -> None:
    text = "Café \u2013 \u201cok\u201d\n"
    assert decode_legacy(text.encode("cp1252")) == text


def test_clean_text_has_no_mojibake() -> None:
    assert mojibake_lines(CLEAN) == []
    assert mojibake_lines("# Руководство по эксплуатации\n🚀 Deploy ✅\n") == []


def test_cp1252_mojibake_is_found_and_repaired() -> None:
    broken = mis_decode(CLEAN, "cp1252")
    assert mojibake_lines(broken) == [1, 3]
    repair = repair_mojibake(broken)
    assert repair.text == CLEAN
    assert repair.repaired == (1, 3)
    assert repair.unrestored == ()


def test_macroman_mojibake_is_repaired() -> None:
    original = "# 🚀 DevOps-ingenjör\nMiljö och övervakning\n"
    broken = mis_decode(original, "mac_roman")
    assert broken != original
    assert repair_mojibake(broken).text == original


def test_emoji_variation_selector_dropped_by_cp1252_is_restored() -> None:
    original = "## ⚠️ Varning\n## 🛠️ Verktyg\n"
    # 0x8F is undefined in cp1252: a round trip through it drops that byte.
    broken = original.encode("utf-8").replace(b"\x8f", b"").decode("cp1252", errors="replace")
    repair = repair_mojibake(broken)
    assert repair.text == original
    assert repair.unrestored == ()


def test_lines_that_lost_bytes_are_listed_as_unrestored() -> None:
    original = "Руководство\nok\n"
    broken = original.encode("utf-8").replace(b"\x81", b"").decode("cp1252", errors="ignore")
    repair = repair_mojibake(broken)
    assert repair.unrestored == (1,)


def test_report_is_one_warning_listing_line_ranges() -> None:
    sink = DiagnosticSink("t.md")
    report_mojibake(mis_decode("Första\nKör nu\nnärmare\nok\nrésumé\n", "cp1252"), sink)
    [warning] = sink.items
    assert (warning.code, warning.location.line) == ("mojibake", 1)
    assert "lines 1-3, 5" in warning.message


def test_line_ranges() -> None:
    assert format_line_ranges([3, 5, 6, 7, 10]) == "3, 5-7, 10"
    assert format_line_ranges([1]) == "1"


def test_durations() -> None:
    assert parse_duration("30s") == 30
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(45) == 45
    assert parse_duration("2.5") == 2.5
    for bad in ("soon", "10x", "", "-1", True, None, [1], "m10"):
        assert parse_duration(bad) is None
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.5) == "0.5s"


def test_short_mojibake_lines_are_repaired_once_the_file_shows_the_codec() -> None:
    # ftfy alone leaves "PÃ¥" (it can be legitimate text); in a file that is mis-decoded
    # elsewhere, the same codec's round trip repairs it.
    broken = mis_decode("# Första deployment\n# På servern\n", "cp1252")
    assert mojibake_lines(broken) == [1, 2]
    assert repair_mojibake(broken).text == "# Första deployment\n# På servern\n"
    assert mojibake_lines("# PÃ¥ servern\n") == []
