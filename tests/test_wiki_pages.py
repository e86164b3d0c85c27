"""Pages written the way teams write them for wikis and static sites, not in our dialect:
each gives the plan an engineer would run. The pages live in tests/data/wiki."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.labels import step_flags
from engine.parse import parse_runbook

PAGES = Path(__file__).parent / "data" / "wiki"

# Per page: (id, kind, line, flags) of each step, in order.
EXPECTED = {
    # A Confluence export: an indented command in a numbered list, a block after "Expected
    # output:", a bullet procedure with an inline command holding placeholders.
    "confluence-export.md": [
        ("pre-checks-1", "command", 12, ["guessed"]),
        ("pre-checks-2", "command", 16, ["guessed"]),
        ("rotation-1", "manual", 28, ["offers=1"]),
        ("rotation-2", "command", 30, []),
        ("rotation-3", "command", 34, ["danger"]),
    ],
    # Hugo: TOML front matter, shortcodes around the steps, a fallback in <details>.
    "hugo-shortcodes.md": [
        ("check-urps-1", "command", 18, []),
        ("stop-the-broker-1", "command", 24, ["danger"]),
        ("stop-the-broker-2", "command", 33, ["option=If the broker won't stop"]),
    ],
    # Jekyll: Liquid tags, sessions with their output, a SQL block that is shown only.
    "jekyll-db.md": [
        ("check-the-cluster-1", "command", 19, ["session=1"]),
        ("fail-over-1", "command", 32, ["danger", "session=1"]),
    ],
    # A root shell copied from a terminal, a commented script, a console transcript.
    "root-prompt.md": [
        ("fix-nginx-as-root-1", "command", 5, ["session=2"]),
        ("fix-nginx-as-root-2", "command", 12, []),
        ("fix-nginx-as-root-3", "command", 17, ["session=1"]),
    ],
    # A "Rollback" section runs only if a step before it fails; troubleshooting is offered.
    "upgrade-with-rollback.md": [
        ("upgrade-1", "command", 7, ["on_failure=rollback"]),
        ("verify-1", "command", 13, ["on_failure=rollback"]),
        ("rollback-1", "command", 21, ["danger"]),
        ("troubleshooting-1", "command", 27, ["option=Troubleshooting"]),
    ],
    # A numbered procedure of inline commands: its rollback is an option, taken when asked.
    "numbered-upgrade.md": [
        ("upgrade-the-app-1", "manual", 3, ["offers=1"]),
        ("upgrade-the-app-2", "manual", 4, ["offers=1"]),
        ("how-to-roll-back-1", "command", 8, ["danger", "option=How to roll back"]),
        ("troubleshooting-1", "command", 14, ["option=Troubleshooting"]),
    ],
    # Fences in comments, quotes, Markdown examples and tables; tildes; a console to open.
    "tricky.md": [
        ("tricky-page-1", "command", 11, []),
        ("step-2-console-1", "command", 32, ["interactive", "guessed"]),
        ("step-2-console-2", "command", 40, []),
        ("step-2-console-3", "command", 44, []),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_wiki_page_gives_the_plan_an_engineer_would_run(name: str) -> None:
    runbook = parse_runbook((PAGES / name).read_text(encoding="utf-8"), name)
    steps = [(s.id, str(s.kind), s.line, step_flags(s)) for s in runbook.steps]
    assert steps == EXPECTED[name]
    assert [d for d in runbook.diagnostics if d.is_error] == []


def test_every_page_in_the_folder_has_its_expectation() -> None:
    assert sorted(p.name for p in PAGES.glob("*.md")) == sorted(EXPECTED)


def test_what_the_pages_ask_and_what_they_never_run() -> None:
    confluence = parse_runbook((PAGES / "confluence-export.md").read_text(), "c.md")
    assert [p.name for p in confluence.params] == ["path_to_cert", "path_to_key"]
    assert not any("notAfter" in s.command for s in confluence.steps)  # expected output
    hugo = parse_runbook((PAGES / "hugo-shortcodes.md").read_text(), "h.md")
    assert hugo.title == "Drain a Kafka broker"
    tricky = parse_runbook((PAGES / "tricky.md").read_text(), "t.md")
    commands = "".join(s.command for s in tricky.steps)
    assert "rm -rf" not in commands and "not-a-step" not in commands


def test_a_rollback_section_leaves_the_normal_flow() -> None:
    from engine.plan import plan_runbook

    text = (PAGES / "upgrade-with-rollback.md").read_text(encoding="utf-8")
    plan = plan_runbook(parse_runbook(text, "upgrade.md"))
    assert plan.order == ("upgrade-1", "verify-1", "troubleshooting-1")
    assert plan.handler("rollback") == ("rollback-1",)
    # Said by the author, it is left alone: a named handler, or another on_failure.
    named = text.replace("```bash\nhelm upgrade", "```bash {on_failure: continue}\nhelm upgrade")
    upgrade = parse_runbook(named, "upgrade.md").steps[0]
    assert upgrade.on_failure == "continue" and upgrade.inference("on_failure") is None


def test_check_says_which_section_became_the_rollback() -> None:
    from engine.lint import lint_runbook

    text = (PAGES / "upgrade-with-rollback.md").read_text(encoding="utf-8")
    notes = [d for d in lint_runbook(parse_runbook(text, "u.md")) if d.code == "rollback-section"]
    assert [(d.location.line, d.severity.value) for d in notes] == [(17, "info")]
    assert "2 command steps before it" in notes[0].message


def test_a_page_that_is_itself_a_rollback_runs_as_written() -> None:
    text = "# Roll back a release\n\n## Find it\n\n```bash\nhelm history app\n```\n\n"
    text += "## Undo it\n\n```bash\nhelm rollback app 3\n```\n"
    steps = parse_runbook(text, "rollback.md").steps
    assert [(s.on_failure, s.branch) for s in steps] == [("abort", None), ("abort", None)]


def test_a_clean_up_step_named_revert_stays_in_the_procedure() -> None:
    text = "# Maintenance\n\n## Enable maintenance mode\n\n```bash\necho on\n```\n\n"
    text += "## Revert the DNS change\n\n```bash\necho dns back\n```\n"
    steps = parse_runbook(text, "m.md").steps
    assert [(s.on_failure, s.branch) for s in steps] == [("abort", None), ("abort", None)]
