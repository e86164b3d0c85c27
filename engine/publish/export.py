"""A run as data (JSON) or as a readable incident record (Markdown): `runbook log export`.
Pure: a run's record in, text out."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from engine.duration import when
from engine.events import Answer
from engine.record import RunDetail, RunSummary


def summary_dict(run: RunSummary) -> dict[str, object]:
    return {
        "id": run.id,
        "runbook": run.path,
        "title": run.title,
        "operator": run.operator,
        "email": run.email,
        "host": run.host,
        "started": when(run.started),
        "ended": when(run.ended) if run.ended else None,
        "duration": None if run.duration is None else round(run.duration, 3),
        "status": run.status,
        "params": run.params,
        "digest": run.digest,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
    }


def detail_dict(detail: RunDetail, step_id: str | None = None) -> dict[str, object]:
    steps = [s for s in detail.steps if step_id is None or s.id == step_id]
    return {
        **summary_dict(detail.summary),
        "message": detail.message,
        "steps": [
            {
                "id": step.id,
                "kind": step.kind,
                "status": step.status,
                "text": step.text or None,
                "reason": step.reason or None,
                "captured": dict(step.captured),
                "answers": [answer_dict(answer) for answer in step.answers],
                "attempts": [
                    {
                        "attempt": a.number,
                        "command": a.command,
                        "edited": a.edited,
                        "started": when(a.started),
                        "status": a.status,
                        "exit_code": a.exit_code,
                        "signal": a.signal,
                        "duration": a.duration,
                        "output": a.output,
                    }
                    | ({"host": a.host} if a.host else {})
                    for a in step.attempts
                ],
            }
            for step in steps
        ],
    }


def answer_dict(answer: Answer) -> dict[str, object]:
    """An answer as the journal has always exported it: when, which attempt, its fields."""
    fields = answer.fields()
    return {
        "time": when(answer.time),
        "attempt": answer.attempt,
        **{key: fields[key] for key in sorted(fields)},
    }


def to_json(detail: RunDetail) -> str:
    return json.dumps(detail_dict(detail), indent=2, ensure_ascii=False)


def json_parts(detail: RunDetail) -> Iterator[str]:
    """The JSON export piece by piece as it is encoded: no second copy of every output."""
    return json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(detail_dict(detail))


def to_markdown(detail: RunDetail) -> str:
    return "".join(markdown_parts(detail))


def markdown_parts(detail: RunDetail) -> Iterator[str]:
    """The Markdown incident record, piece by piece: a step's output is one piece, as
    recorded, so writing the parts out never holds the whole record twice."""
    run = detail.summary
    lines = [
        f"# Run {run.id}: {run.title}",
        "",
        "| | |",
        "|---|---|",
        f"| Runbook | `{run.path}` |",
        f"| Status | **{run.status}**{': ' + detail.message if detail.message else ''} |",
        f"| Operator | {run.who} |",
        f"| Started | {when(run.started)} |",
        f"| Ended | {when(run.ended)} |",
        f"| Version | sha256 `{run.digest[:16]}`"
        + (f", git `{run.git_commit[:12]}`" if run.git_commit else "")
        + (" (uncommitted changes)" if run.git_dirty else "")
        + " |",
        "",
    ]
    if run.params:
        lines += ["## Parameters", "", "| name | value |", "|---|---|"]
        lines += [f"| `{k}` | `{v}` |" for k, v in run.params.items()]
        lines.append("")
    lines += ["## Steps", ""]
    for step in detail.steps:
        lines.append(f"### {step.id}: {step.status or 'not finished'}")
        lines.append("")
        if step.text:
            lines += [f"- [{'x' if step.status == 'done' else ' '}] {step.text}", ""]
        for attempt in step.attempts:
            if not attempt.command:
                continue
            head = f"Attempt {attempt.number}" + (f" on {attempt.host}" if attempt.host else "")
            head += " (edited command)" if attempt.edited else ""
            result = f"exit {attempt.exit_code}" if attempt.exit_code is not None else "no result"
            fence = _fence(attempt.command)
            lines += [f"{head}, {when(attempt.started)}, {result}:", "", f"{fence}bash"]
            lines += [attempt.command.rstrip("\n"), fence, ""]
            output = attempt.output
            if output.strip("\n"):
                fence = _fence(output)
                yield "\n".join([*lines, f"{fence}text", ""])
                lines = []
                end = len(output.rstrip("\n"))
                yield output if end == len(output) else output[:end]
                lines += ["", fence, ""]
        for answer in step.answers:
            lines.append(
                f"- {when(answer.time)}: {answer.question} → {answer.answer}"
                + (f" ({answer.note})" if answer.note else "")
            )
        if step.answers:
            lines.append("")
    yield "\n".join(lines) + "\n"


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks in the text it encloses."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)
