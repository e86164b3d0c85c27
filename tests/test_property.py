"""Property: parsing and planning any text, with any fence info string, never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.parse import parse_runbook
from engine.plan import plan_runbook

PIECES = st.sampled_from(
    [
        "---\n",
        "# ",
        "## ",
        "- [ ] ",
        "- [x] ",
        "```",
        "```bash ",
        "~~~sh ",
        "{",
        "}",
        "[",
        "]",
        ": ",
        ", ",
        "id",
        "needs",
        "on_failure",
        "expect",
        "when",
        "{{ ",
        " }}",
        "{% ",
        " %}",
        "!!python/object ",
        "\n",
        "  ",
        "\t",
        "Ã¶",
        "\ufffd",
        "rollback",
    ]
)
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=60).map("".join)
INFO = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=12).map(
        lambda parts: "bash {" + "".join(parts)
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_any_text_parses_into_a_model_or_diagnostics(text: str) -> None:
    result = plan_runbook(parse_runbook(text, "fuzz.md"))
    assert all(d.location.line >= 1 for d in result.diagnostics)
    assert len({s.id for s in result.runbook.steps}) == len(result.runbook.steps) or any(
        d.code == "duplicate-id" for d in result.diagnostics
    )


@settings(max_examples=300, deadline=None)
@given(INFO, st.text(max_size=60))
def test_any_fence_info_string_parses(info: str, body: str) -> None:
    info = info.replace("\n", " ").replace("`", "'")
    text = f"# Section\n```{info}\n{body.replace('```', '')}\n```\n"
    result = plan_runbook(parse_runbook(text, "fuzz.md"))
    for diagnostic in result.diagnostics:
        assert diagnostic.location.line >= 1
        assert diagnostic.message
