"""The run record as plain data: replay of typed events (attempts numbered across a resume,
answers kept with their question), the formatters, and the parameters resume takes back."""

from __future__ import annotations

import json

from engine.duration import elapsed_text, when
from engine.events import (
    Answer,
    Event,
    Output,
    Provenance,
    Question,
    RunFinished,
    RunResumed,
    RunStarted,
    RunStatus,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
)
from engine.parameters import Parameters
from engine.publish.export import to_json, to_markdown
from engine.publish.runs import RunLinks, run_page
from engine.publish.stash import Stash
from engine.record import (
    RunDetail,
    RunSummary,
    replay,
    run_detail,
)
from engine.resume import recorded_params
from tests.conftest import parse, plan

FACTS = Provenance("r1", "j.db", "0" * 64, "ops", "host", 42)


def test_a_resumed_run_numbers_attempts_on() -> None:
    events = [
        RunStarted("rb.md", "RB", {}, ("a",), FACTS, time=1.0),
        StepStarted("a", 1, "command", command="false\n", time=2.0),
        Output("a", 1, "no\n", time=2.5),
        StepFinished("a", 1, StepStatus.FAILED, result=StepResult(1, None, 0.5), time=3.0),
        Answer("a", 1, Question.FAILURE, "abort", time=3.5),
        RunFinished(RunStatus.ABORTED, ("a",), "aborted after step 'a' failed", time=4.0),
        RunResumed("rb.md", "RB", {}, ("a",), FACTS, time=10.0),
        StepStarted("a", 1, "command", command="true\n", edited=True, time=11.0),
        StepFinished("a", 1, StepStatus.SUCCEEDED, result=StepResult(0, None, 0.25), time=12.0),
        RunFinished(RunStatus.SUCCEEDED, time=13.0),
    ]
    [step], message = replay(events)
    assert message == ""
    assert step.status == "succeeded"
    assert [(a.number, a.command, a.edited, a.exit_code) for a in step.attempts] == [
        (1, "false\n", False, 1),
        (2, "true\n", True, 0),
    ]
    assert step.output == "no\n"
    assert step.answers == (Answer("a", 1, Question.FAILURE, "abort", time=3.5),)


def test_a_skip_after_a_failure_clears_the_attempts_exit_code_as_it_always_has() -> None:
    events = [
        StepStarted("a", 1, "command", command="false\n", time=2.0),
        StepFinished("a", 1, StepStatus.FAILED, result=StepResult(1, None, 0.5), time=3.0),
        StepFinished("a", 1, StepStatus.SKIPPED, reason="skipped by the operator", time=4.0),
    ]
    [step], _ = replay(events)
    assert (step.status, step.reason) == ("skipped", "skipped by the operator")
    assert step.attempts[0].exit_code is None and step.attempts[0].ended == 4.0


def test_the_formatters() -> None:
    assert when(0) == "1970-01-01 00:00:00 UTC"
    assert when(None) == "-"
    shown = [elapsed_text(s) for s in (None, 0.04, 2.5, 200, 3725.4)]
    assert shown == ["-", "40ms", "2.5s", "3m20s", "1h2m5s"]


RUNBOOK = """
---
params:
  host: {default: db1}
  password: {secret: true}
---
# Restore

```bash
psql -h {{ host }} -c 'select 1'
```
"""


def test_resume_asks_again_for_secret_parameters_whatever_was_recorded() -> None:
    runbook = parse(RUNBOOK)
    # A journal of an earlier release recorded a secret as "<secret>"; a later one may not.
    for shown in ("<secret>", "[secret:password]", ""):
        assert recorded_params(runbook, {"host": "db2", "password": shown}) == {"host": "db2"}


def test_parameters_hide_secrets_when_shown_and_mask_them_everywhere() -> None:
    params = Parameters.of(plan(RUNBOOK), {"host": "db1", "password": "hunter2-x"})
    assert params.shown(["host", "password"]) == {"host": "db1", "password": "<secret>"}
    assert params.masker.mask("pw=hunter2-x") == "pw=[secret:password]"
    assert params.secret == frozenset({"password"})


def detail_of(events: list[Event]) -> RunDetail:
    summary = RunSummary(
        id="20260101-000000-abcdef",
        path="rb.md",
        title="Restore <db>",
        operator="ops",
        email="ops@example.com",
        host="bastion",
        pid=7,
        started=0.0,
        ended=90.0,
        status="failed",
        params={"host": "db1", "password": "<secret>"},
        digest="ab" * 32,
        git_commit=None,
        git_dirty=None,
    )
    return run_detail(summary, events)


EVENTS: list[Event] = [
    RunStarted("rb.md", "Restore <db>", {"host": "db1"}, ("stop", "tell"), FACTS, time=0.0),
    Answer("stop", 0, Question.CONFIRM, "run", time=1.0),
    StepStarted("stop", 1, "command", command="systemctl stop app\n", time=1.0),
    Output("stop", 1, "<b>stopped</b>\n", time=1.5),
    StepFinished("stop", 1, StepStatus.FAILED, result=StepResult(5, None, 61.0), time=62.0),
    StepStarted("tell", 1, "manual", text="Tell #ops", time=63.0),
    Answer("tell", 0, Question.MANUAL, "skip", note="nobody there", time=64.0),
    StepFinished("tell", 1, StepStatus.SKIPPED, note="nobody there", time=64.0),
    RunFinished(RunStatus.FAILED, ("stop",), "some steps failed", time=90.0),
]


def test_the_export_from_plain_data() -> None:
    detail = detail_of(EVENTS)
    markdown = to_markdown(detail)
    assert "| Operator | ops <ops@example.com> on bastion |" in markdown
    assert "| Status | **failed**: some steps failed |" in markdown
    assert "- 1970-01-01 00:01:04 UTC: manual → skip (nobody there)" in markdown
    assert "Attempt 1, 1970-01-01 00:00:01 UTC, exit 5:" in markdown
    data = json.loads(to_json(detail))
    tell = data["steps"][1]
    assert list(tell["answers"][0]) == ["time", "attempt", "answer", "note", "question"]
    assert (tell["status"], tell["reason"], tell["text"]) == (
        "skipped",
        "nobody there",
        "Tell #ops",
    )
    assert data["steps"][0]["attempts"][0]["duration"] == 61.0


def test_the_run_page_from_plain_data_escapes_what_was_recorded() -> None:
    stash = Stash()
    page = stash.restore(run_page(detail_of(EVENTS), RunLinks(None, "../"), stash))
    assert "&lt;b&gt;stopped&lt;/b&gt;" in page and "<b>stopped" not in page
    assert "Restore &lt;db&gt;" in page
    assert "exit code 5" in page and "1m1s" in page
    assert "<li>1970-01-01 00:01:04 UTC: manual → <strong>skip</strong> (nobody there)</li>" in page
