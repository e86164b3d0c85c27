"""Run pages for auditors, built by `mkdocs build` from a journal the engine wrote: a failed
run's banner and open output, a large output capped with the whole of it beside the page, the
replay's recorded timing, and a tampered journal: a WARNING (so `--strict` fails), a red
banner naming the changed event, and the runs index saying the journal does not verify."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.events import StepFinished, StepStarted, StepStatus
from engine.publish.runs import timeline_svg
from engine.record import RunSummary, run_detail

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# A wiki page: numbered steps, a console block with its prompt and sample output.
RELEASE = """\
---
title: Release the billing service
owner: billing@example.com
---

# Release the billing service

Ship a release of billing to production. Page the on-call if a check fails.

## Palette

```bash
printf '\\033[38;5;208morange\\033[0m \\033[48;2;0;95;135mteal\\033[0m \\033[7mreversed\\033[0m\\n'
```

## Canary

Wait for the canary:

```bash
for i in 1 2 3; do echo "canary tick $i"; sleep 0.8; done
```

## Budget

Check the error budget:

```console
$ echo "budget exhausted: 3 errors" >&2; exit 3
budget exhausted: 3 errors
```
"""

# A page with Hugo front matter and a step that prints a long log.
LOGS = """\
+++
title = "Collect the audit logs"
+++

# Collect the audit logs

1. Dump the log (about 900 KB):

   ```sh
   yes 'audit 0123456789 abcdefghij' | head -n 32000; echo "last line of the log"
   ```
"""


@dataclass(frozen=True)
class Built:
    root: Path
    site: Path
    runs: dict[str, str]  # label -> run id
    journal: Path


def _env(journal: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FORCE_COLOR", "MKDOCS_CONFIG", "EDITOR", "VISUAL", "RUNBOOK_JOURNAL"}
    }
    env.update(NO_MKDOCS_2_WARNING="1", NO_COLOR="1", RUNBOOK_JOURNAL=str(journal))
    return env


def run_id(output: str) -> str:
    match = re.search(r"Recorded as run (\S+):", output)
    assert match, output
    return match.group(1)


def build(root: Path, journal: Path, site: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict" if strict else "--no-strict", "-d", str(site)],
        cwd=root,
        env=_env(journal),
        capture_output=True,
        text=True,
        timeout=180,
    )


def make_site(root: Path) -> Built:
    """Two runbooks, a failed run of one and a run with a large output of the other."""
    docs = root / "docs"
    docs.mkdir()
    (docs / "release.md").write_text(RELEASE, encoding="utf-8")
    (docs / "logs.md").write_text(LOGS, encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    (root / "mkdocs.yml").write_text(
        re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config), encoding="utf-8"
    )
    journal = root / "j.db"
    runs = {}
    for label, page, code in (("failed", "release.md", 1), ("logs", "logs.md", 0)):
        result = subprocess.run(
            [str(BIN / "runbook"), "run", f"docs/{page}", "--yes"],
            cwd=root,
            env=_env(journal),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == code, result.stdout + result.stderr
        runs[label] = run_id(result.stdout + result.stderr)
    result = build(root, journal, root / "site", strict=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return Built(root, root / "site", runs, journal)


def tamper(journal: Path, copy: Path, old: str, new: str) -> int:
    """A copy of the journal with one output changed in place, as an intruder would; the
    changed event's number."""
    source = sqlite3.connect(journal)
    target = sqlite3.connect(copy)
    with target:
        source.backup(target)
    source.close()
    with target:
        rows = target.execute(
            "UPDATE events SET data = replace(data, ?, ?) WHERE kind = 'output' AND data LIKE ?"
            " RETURNING seq",
            (old, new, f"%{old}%"),
        ).fetchall()
    target.close()
    assert len(rows) == 1
    return int(rows[0][0])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return make_site(tmp_path_factory.mktemp("run-pages"))


def article(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    match = re.search(r"<article[^>]*>(.*)</article>", page, flags=re.S)
    assert match, path
    return match.group(1)


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_a_failed_run_names_its_step_and_shows_its_output(built: Built) -> None:
    page = article(built.site / "runs" / built.runs["failed"] / "index.html")
    banner = re.search(r'<div class="rb-banner rb-banner-failed"[^>]*>(.*?)</div>', page, re.S)
    assert banner, page[:2000]
    assert 'href="#step-budget-1"' in banner.group(1)
    assert "budget-1 failed, exit code 3" in text_of(banner.group(1))
    assert '<span class="rb-anchor" id="step-budget-1">' in page
    # Who ran it and where, before anything else.
    who = re.search(r'<p class="rb-who">(.*?)</p>', page, re.S)
    assert who and page.index(who.group(0)) < page.index("rb-banner")
    assert " on " in text_of(who.group(1)) and "release.md" in text_of(who.group(1))
    # Status in the headings, so in the table of contents too.
    toc = (built.site / "runs" / built.runs["failed"] / "index.html").read_text("utf-8")
    assert re.search(r'class="md-nav__link"[^>]*>\s*<span[^>]*>\s*✗ budget-1: failed', toc)
    assert re.search(r"<h3[^>]*>✓ canary-1: succeeded", page)
    # The short failed output is shown as is; terminal styling is kept, nothing raw.
    section = page[page.index('id="step-budget-1"') :]
    assert "budget exhausted: 3 errors" in text_of(section)
    palette = page[page.index('id="step-palette-1"') : page.index('id="step-canary-1"')]
    assert "color:#ff8700" in palette.replace(" ", "") and "rb-fg-rev" in palette
    assert "\x1b" not in page and "[38;5" not in page


def test_each_output_carries_its_recorded_timing(built: Built) -> None:
    folder = built.site / "runs" / built.runs["failed"]
    page = article(folder / "index.html")
    canary = page[page.index('id="step-canary-1"') : page.index('id="step-budget-1"')]
    player = re.search(r'data-rb-replay="([^"]*)" data-rb-src="([^"]*)"', canary)
    assert player and player.groups() == ("canary-1/1", "replay.json")
    chunks = json.loads((folder / "replay.json").read_text("utf-8"))["canary-1/1"]
    # Chunks as the terminal gave them (a busy machine may join two), with their times.
    assert "".join(text for _, text in chunks) == "".join(f"canary tick {i}\n" for i in (1, 2, 3))
    assert len(chunks) >= 2
    times = [at for at, _ in chunks]
    assert times == sorted(times) and times[-1] - times[0] >= 0.7


def test_a_large_output_is_capped_and_written_whole_beside_the_page(built: Built) -> None:
    folder = built.site / "runs" / built.runs["logs"]
    page = (folder / "index.html").read_text("utf-8")
    assert len(page.encode()) < 700_000
    cut = re.search(r'<p class="rb-output-cut">(.*?)</p>', page, re.S)
    assert cut, "no note where the output is cut"
    link = re.search(r'href="([^"]+)"', cut.group(1))
    assert link
    whole = (folder / html.unescape(link.group(1))).read_text("utf-8")
    assert whole.count("audit 0123456789 abcdefghij\n") == 32000
    assert whole.endswith("last line of the log\n") or "last line of the log" in whole[-40:]
    assert "last line of the log" in page  # the end is shown, and the start
    assert page.count("audit 0123456789 abcdefghij") < 32000
    assert "data-rb-replay" not in page  # too large to replay


def test_a_tampered_journal_fails_a_strict_build_and_is_shown_red(
    built: Built, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.db"
    seq = tamper(built.journal, forged, "canary tick 2", "canary tick 9")
    strict = build(built.root, forged, tmp_path / "strict", strict=True)
    assert strict.returncode != 0
    assert f"run {built.runs['failed']} does not verify" in strict.stderr
    assert f"event {seq} (output, step canary-1) was changed" in strict.stderr
    result = build(built.root, forged, tmp_path / "site", strict=False)
    assert result.returncode == 0, result.stderr
    page = article(tmp_path / "site" / "runs" / built.runs["failed"] / "index.html")
    banner = re.search(r'<div class="rb-banner rb-banner-tampered"[^>]*>(.*?)</div>', page, re.S)
    assert banner and f"event {seq} (output, step canary-1) was changed" in text_of(banner.group(1))
    index = article(tmp_path / "site" / "runs" / "index.html")
    assert "The journal does not verify" in text_of(index)
    assert "1 of 2 run(s)" in text_of(index)
    # The untouched build says the journal verified.
    intact = article(built.site / "runs" / "index.html")
    assert "Journal verified when this site was built: all 2 run(s)" in text_of(intact)
    # Every page's footer says so too, linking to the runs index.
    for site, state in ((built.site, "Journal verified: 2 run(s)"), (tmp_path / "site", None)):
        footer = (site / "release" / "index.html").read_text("utf-8")
        found = re.search(r'<div class="rb-footer-verify[^"]*"><a href="([^"]*)">(.*?)</a>', footer)
        assert found and found.group(1) == "../runs/"
        assert found.group(2) == (state or "Journal: 1 of 2 run(s) do not verify")


def test_the_timeline_cuts_long_step_ids_with_an_ellipsis_and_keeps_them_whole() -> None:
    long_id = "drain-the-primary-database-and-wait-for-replicas"
    summary = RunSummary(
        "20260101-000000-abcdef", "rb.md", "Drain", "ops", None, "bastion", 7, 0.0, 10.0,
        "succeeded", {}, "ab" * 32, None, None,
    )  # fmt: skip
    events = [
        StepStarted(long_id, 1, "command", "true", time=1.0),
        StepFinished(long_id, 1, StepStatus.SUCCEEDED, time=4.0),
    ]
    svg = timeline_svg(run_detail(summary, events))
    label = re.search(r'<text x="0"[^>]*>([^<]*)<title>([^<]*)</title>', svg)
    assert label, svg
    assert label.group(1).endswith("…") and len(label.group(1)) <= 26
    assert long_id.startswith(label.group(1)[:-1])
    assert label.group(2) == long_id
