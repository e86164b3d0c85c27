"""The mkdocs plugin, through real builds: runbooks written into a temporary docs_dir, runs made
with the real `runbook run`, the site built with the real `mkdocs build`, the HTML inspected.

Most tests read one site built once for the module (`site`); tests that need another
configuration or other runbooks build their own, always under tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
BIN = Path(sys.executable).parent
RUNBOOK = BIN / "runbook"
MKDOCS = BIN / "mkdocs"

OPERATOR = "alice-oncall"
EMAIL = "alice.oncall@example.com"
# Not changed by HTML or Markdown escaping, but by URL encoding (space, `/`, `+`).
SECRET = "Zq9-s3cr3t VALUE/42+x"
XSS_OUTPUT = "<script>alert(1)</script>"
XSS_PARAM = "<img src=x onerror=alert(1)>"
ERROR_TEXT = "checksum mismatch in block xq7z"
PROSE = "Uniqueprosewordquokka"
WHEN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"

# A stand-in for PostgreSQL's pg_restore: succeeds when its last argument is a file.
FAKE_PG_RESTORE = f"""#!/bin/sh
for last; do :; done
if [ -f "$last" ]; then echo "pg_restore: restored 42 tables from $last"; exit 0; fi
echo "pg_restore: error: could not read input file \\"$last\\": {ERROR_TEXT}" >&2
exit 1
"""

RESTORE = """\
---
title: Restore the database
owner: dba-team@example.com
tags: [postgres, disaster-recovery]
params:
  backup_file: {description: Dump to restore, default: /backups/latest.dump}
  environment: {description: Where to restore, choices: [staging, production], default: staging}
  db_password: {description: The app user's password, secret: true, required: false}
  note: {description: A note for the log, default: routine}
timeout: 10m
---

# Restore the database

Bring back the last dump after a bad migration. PROSE_WORD.

## Prepare

- [ ] Announce the restore in #ops

```bash {id: stop-api, timeout: 2m}
echo "stopping the api in" {{ environment }}
```

## Restore

```bash {id: restore-db, needs: [stop-api], confirm: danger, on_failure: rollback}
pg_restore --clean -d app {{ backup_file }}
```

```bash {id: report, retries: 1, when: 'environment != "production"'}
echo "note:" {{ note }}
echo "<script>alert(1)</script>"
printf 'password %s\\n' "$DB_PASSWORD"
printf %s "$DB_PASSWORD" | base64
python3 -c 'import os, urllib.parse as u; print(u.quote(os.environ["DB_PASSWORD"], safe=""))'
python3 -c 'import os, urllib.parse as u; print(u.quote_plus(os.environ["DB_PASSWORD"]))'
```

## Rollback

```bash {id: reopen-api}
echo "reopening the api"
```
""".replace("PROSE_WORD", PROSE)

CHANGED = """\
# Rotate the keys

```bash {id: rotate}
echo rotating
```
"""

ELSEWHERE = """\
---
title: Clean the scratch disk
---

# Clean the scratch disk

```bash {id: clean-scratch}
echo cleaned
```
"""

PLAIN = """\
# Glossary

Words the team uses. This page has no steps.

```text
RPO: recovery point objective
```

```python
print("an example, not a step")
```
"""

INDEX = "# Team runbooks\n\nStart with [restoring the database](restore.md).\n"


def subprocess_env(journal: Path, bin_dir: Path | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"FORCE_COLOR", "NO_COLOR", "RUNBOOK_JOURNAL", "MKDOCS_CONFIG"}
    }
    env.update(
        NO_MKDOCS_2_WARNING="1",
        NO_COLOR="1",
        COLUMNS="200",
        RUNBOOK_JOURNAL=str(journal),
        LOGNAME=OPERATOR,
        USER=OPERATOR,
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="user.email",
        GIT_CONFIG_VALUE_0=EMAIL,
    )
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def site_config(docs_dir: str = "docs", plugin_options: dict[str, object] | None = None) -> str:
    """The repository's mkdocs.yml, pointed at another docs_dir, with plugin options."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^docs_dir:.*$", f"docs_dir: {docs_dir}", text)
    assert count == 1, "mkdocs.yml has no docs_dir line"
    if plugin_options:
        options = "".join(f"\n      {k}: {json.dumps(v)}" for k, v in plugin_options.items())
        text, count = re.subn(r"(?m)^(\s*)- runbook\s*$", rf"\1- runbook:{options}", text)
        assert count == 1, "mkdocs.yml does not list the runbook plugin as `- runbook`"
    return text


@dataclass
class Site:
    """A project in tmp_path: mkdocs.yml, docs/, a journal, and the built site."""

    root: Path
    runs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.docs = self.root / "docs"
        self.docs.mkdir(parents=True, exist_ok=True)
        self.journal = self.root / "journal.db"
        self.bin = self.root / "bin"
        self.bin.mkdir(exist_ok=True)
        fake = self.bin / "pg_restore"
        fake.write_text(FAKE_PG_RESTORE)
        fake.chmod(0o755)
        (self.root / "mkdocs.yml").write_text(site_config(), encoding="utf-8")
        self.out = self.root / "site"

    @property
    def env(self) -> dict[str, str]:
        return subprocess_env(self.journal, self.bin)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, label: str, path: str, *params: str, ok: bool = True) -> str:
        """`runbook run PATH --yes --allow-danger -p ...`; returns (and keeps) the run id."""
        args = [str(RUNBOOK), "run", path, "--yes", "--allow-danger"]
        for param in params:
            args += ["-p", param]
        result = subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=60
        )
        output = result.stdout + result.stderr
        assert (result.returncode == 0) == ok, output
        match = re.search(r"Recorded as run (\S+):", output)
        assert match, output
        self.runs[label] = match.group(1)
        return match.group(1)

    def build(
        self, *args: str, strict: bool = True, config: str = "mkdocs.yml", out: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        out = out or self.out
        command = [str(MKDOCS), "build", "-q", "-f", config, "-d", str(out)]
        command += ["--strict"] if strict else []
        result = subprocess.run(
            [*command, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result

    def page(self, url: str, out: Path | None = None) -> str:
        return ((out or self.out) / url / "index.html").read_text(encoding="utf-8")


def built(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def article(page: str) -> str:
    """The page's content: Material's <article>, without navigation and search."""
    match = re.search(r"<article\b.*?</article>", page, flags=re.DOTALL)
    assert match, "no <article> in the page"
    return match.group(0)


def text_of(fragment: str) -> str:
    """Visible text: tags dropped, entities decoded, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", fragment)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def code_blocks(fragment: str) -> list[str]:
    """Every highlighted code block (the HTML inside its <pre>)."""
    return re.findall(
        r'<div class="highlight"><pre><span></span><code>(.*?)</code></pre></div>',
        fragment,
        flags=re.DOTALL,
    )


def block_after(fragment: str, anchor: str) -> str:
    """The first highlighted code block after the element with this id."""
    start = fragment.index(f'id="{anchor}"')
    blocks = code_blocks(fragment[start:])
    assert blocks, f"no code block after #{anchor}"
    return blocks[0]


def element(fragment: str, element_id: str) -> str:
    """The outer HTML of the element with this id (nested elements of its tag counted)."""
    match = re.search(rf'<(\w+)\b[^>]*\bid="{re.escape(element_id)}"[^>]*>', fragment)
    assert match, f"no element #{element_id}"
    tag, depth = match.group(1), 0
    for token in re.finditer(rf"<(/?){tag}\b[^>]*>", fragment[match.start() :]):
        depth += -1 if token.group(1) else 1
        if depth == 0:
            return fragment[match.start() : match.start() + token.end()]
    raise AssertionError(f"#{element_id} is not closed")


def broken_links(out: Path) -> list[str]:
    """Relative links of every built page whose target is not in the site."""
    broken = []
    for page in out.rglob("*.html"):
        for href in re.findall(r'\shref="([^"#?]*)[^"]*"', page.read_text(encoding="utf-8")):
            if not href or re.match(r"[a-z][a-z0-9+.-]*:", href) or href.startswith("/"):
                continue
            target = (page.parent / html.unescape(href)).resolve()
            if not (target.is_file() or (target / "index.html").is_file()):
                broken.append(f"{page.relative_to(out)} -> {href}")
    return broken


def mermaid_of(fragment: str) -> str:
    """The step graph's mermaid source (drawn in the browser by runbook.js)."""
    match = re.search(r'<div class="rb-graph-draw" data-graph="([^"]*)"', fragment)
    assert match, "no step graph"
    return html.unescape(match.group(1))


def section_of(page: str, step_id: str) -> str:
    """A run page's section for one step: from its anchor (its heading carries its status)
    to the next step's anchor or the end."""
    body = article(page)
    start = body.index(f'<span class="rb-anchor" id="step-{step_id}">')
    end = body.find('<span class="rb-anchor"', start + 1)
    return body[start : end if end != -1 else len(body)]


def index_rows(page: str) -> list[dict[str, str]]:
    rows = []
    for runbook, status, cells in re.findall(
        r'<tr data-runbook="([^"]*)" data-status="([^"]*)">(.*?)</tr>', page, flags=re.S
    ):
        tds = re.findall(r"<td>(.*?)</td>", cells, flags=re.S)
        href = re.search(r'<a href="([^"]+)"', tds[0])
        rows.append(
            {
                "runbook": html.unescape(runbook),
                "status": status,
                "href": href.group(1) if href else "",
                "when": text_of(tds[0]),
                "path": text_of(tds[1]),
                "operator": text_of(tds[2]),
                "status_text": text_of(tds[3]),
                "duration": text_of(tds[4]),
            }
        )
    return rows


def site_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """A site with a runbook run twice (succeeded, then failed), a runbook changed after its
    successful run, a runbook outside docs_dir, a page with no steps and a home page."""
    project = Site(tmp_path_factory.mktemp("site"))
    project.write("docs/index.md", INDEX)
    project.write("docs/restore.md", RESTORE)
    project.write("docs/changed.md", CHANGED)
    project.write("docs/glossary.md", PLAIN)
    project.write("outside/elsewhere.md", ELSEWHERE)
    project.write("docs/db/vacuum.md", "# Vacuum\n\n```bash {id: vacuum}\necho vacuumed\n```\n")
    project.run("nested", "docs/db/vacuum.md")
    good = project.write("good.dump", "a dump\n")
    project.run(
        "good",
        "docs/restore.md",
        f"backup_file={good}",
        f"db_password={SECRET}",
        f"note={XSS_PARAM}",
    )
    project.run("bad", "docs/restore.md", "backup_file=/backups/missing.dump", ok=False)
    project.run("changed", "docs/changed.md")
    project.write("docs/changed.md", CHANGED + "\n```bash {id: verify}\necho verified\n```\n")
    project.run("elsewhere", "outside/elsewhere.md")
    built(project.build())
    return project


# 1. Runbook pages


def test_annotations_are_removed_and_code_is_highlighted_as_bash(site: Site) -> None:
    body = article(site.page("restore"))
    blocks = code_blocks(body)
    assert len(blocks) >= 5  # four steps and the "run it" command
    for block in blocks:
        assert "{id:" not in block
        assert "needs:" not in block and "on_failure" not in block
    assert "{id:" not in body
    # Pygments' bash lexer marks `echo` as a builtin; `text` would leave it plain.
    assert '<span class="nb">echo</span>' in block_after(body, "step-stop-api")
    assert "pg_restore" in block_after(body, "step-restore-db")


def test_each_step_has_an_anchor_and_badges(site: Site) -> None:
    body = article(site.page("restore"))
    for step_id in ("stop-api", "restore-db", "report", "reopen-api", "prepare-1"):
        assert body.count(f'id="step-{step_id}"') == 1, step_id
        assert f'href="#step-{step_id}"' in body
    stop = text_of(element(body, "step-stop-api"))
    assert "stop-api" in stop and "timeout=2m" in stop
    restore = element(body, "step-restore-db")
    assert 'class="rb-badge rb-badge-danger"' in restore
    assert "needs=stop-api" in text_of(restore)
    report = text_of(element(body, "step-report"))
    assert "retries=1" in report
    assert 'when=environment != "production"' in report
    # Steps are numbered in the order they run: the manual step first.
    assert re.search(r"step 1\b", text_of(element(body, "step-prepare-1")), flags=re.I)
    assert "Step 2" in stop


def test_a_manual_step_has_a_manual_badge(site: Site) -> None:
    body = article(site.page("restore"))
    assert 'rb-badge-manual">manual<' in element(body, "step-prepare-1")


def test_the_header_box(site: Site) -> None:
    body = article(site.page("restore"))
    assert re.search(r"<h1[^>]*>Restore the database", body)
    match = re.search(r'<div class="rb-box">(.*?)<details class="rb-graph"', body, re.S)
    assert match, "no header box before the graph"
    box = match.group(1)
    facts = text_of(box)
    assert "Owner dba-team@example.com" in facts
    assert "Tags postgres disaster-recovery" in facts
    rows = {
        text_of(cells[0]): (text_of(cells[1]), text_of(cells[2]))
        for cells in (
            re.findall(r"<td>(.*?)</td>", row, flags=re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", box, flags=re.S)
        )
        if cells
    }
    assert rows["backup_file"] == ("/backups/latest.dump", "Dump to restore")
    assert rows["environment"][0] == "staging"
    assert "staging, production" in rows["environment"][1]
    assert rows["db_password"][0] == "secret"
    assert rows["note"][0] == "routine"
    assert "runbook run docs/restore.md" in text_of(box)
    # The last run is the failed one, by our operator, linked to its page.
    last = re.search(r"<strong>Last run</strong>(.*?)</p>", box, flags=re.S)
    assert last, box
    assert re.search(rf"{WHEN} by {OPERATOR}: failed", text_of(last.group(1)))
    assert f'href="../runs/{site.runs["bad"]}/"' in last.group(1)
    # Earlier runs are linked too.
    assert f'href="../runs/{site.runs["good"]}/"' in box
    # The last successful run ran this very version: no warning.
    assert "Changed since its last successful run" not in body


def test_a_runbook_never_run_says_so(tmp_path: Path) -> None:
    project = Site(tmp_path)
    project.write("docs/index.md", CHANGED)
    built(project.build())
    box = text_of(article(project.page("")))
    assert "Never run" in box
    assert "Last run" not in box


def test_a_runbook_changed_since_its_last_successful_run_warns(site: Site) -> None:
    body = article(site.page("changed"))
    warning = re.search(r'<div class="admonition warning">(.*?)</div>', body, flags=re.S)
    assert warning, "no warning admonition"
    assert "Changed since its last successful run" in text_of(warning.group(1))
    assert re.search(rf"Last run {WHEN} by {OPERATOR}: succeeded", text_of(body))


# 2. The step graph


def test_the_step_graph_is_a_mermaid_flowchart(site: Site) -> None:
    graph = mermaid_of(article(site.page("restore")))
    assert graph.splitlines()[0].strip() == "flowchart TD"
    subgraphs = re.findall(r'^\s*subgraph \w+\["([^"]*)"\]', graph, flags=re.M)
    assert subgraphs == ["Prepare", "Restore", "Rollback"]
    nodes = dict(
        (label, node)
        for node, label in re.findall(r'^\s*(\w+)[\[(]"([^"]*)"[\])]\s*$', graph, flags=re.M)
    )
    assert {"stop-api", "restore-db", "report", "reopen-api"} <= set(nodes)
    manual = re.search(r'^\s*(\w+)\("Announce the restore in #ops"\)', graph, flags=re.M)
    assert manual, "the manual step is not drawn as a rounded box"
    assert f"{nodes['restore-db']} -. on failure .-> {nodes['reopen-api']}" in graph
    assert f"{nodes['stop-api']} --> {nodes['restore-db']}" in graph
    # The rollback is not part of the normal flow.
    assert not re.search(rf"{nodes['report']} --> {nodes['reopen-api']}", graph)


# 3. A page that is not a runbook


def test_a_page_without_steps_is_an_ordinary_page(site: Site) -> None:
    body = article(site.page("glossary"))
    assert "Words the team uses" in body
    assert "rb-box" not in body
    assert "rb-step" not in body
    assert 'class="mermaid"' not in body
    assert "RPO: recovery point objective" in text_of(body)


def test_a_runbook_without_a_title_keeps_its_code_blocks(tmp_path: Path) -> None:
    project = Site(tmp_path)
    project.write(
        "docs/notitle.md",
        "## Prepare\n\n```bash {id: prep}\n# make a workspace\nmkdir -p /tmp/ws\n```\n",
    )
    built(project.build())
    body = article(project.page("notitle"))
    assert '<div class="rb-box">' in body
    for block in code_blocks(body):
        assert "rb-box" not in block
    assert "mkdir" in text_of(block_after(body, "step-prep"))


# 4. The seeds

SEED_HEADINGS = {
    "000": "Driftsveiledning",
    "001": "DevOps-ingenjör",
    "002": "B-ORTIM Deployment Runbook",
    "003": "Operations Guide",
    "004": "Operations Runbook",
}


def test_the_seeds_render_as_pages_after_check_fix(tmp_path: Path) -> None:
    seeds = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    if not seeds:
        pytest.skip(f"the seed runbooks are not here: {SEEDS}")
    before = {seed: hashlib.sha256(seed.read_bytes()).hexdigest() for seed in seeds}
    project = Site(tmp_path)
    names = []
    for seed in seeds:
        name = seed.stem.split("_")[0]
        shutil.copyfile(seed, project.docs / f"{name}.md")
        names.append(name)
    fixed = subprocess.run(
        [str(RUNBOOK), "check", "--fix", *(f"docs/{n}.md" for n in names)],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in fixed.stdout + fixed.stderr
    result = project.build()
    if result.returncode != 0:  # the seeds' own links may be broken: that is not ours
        result = project.build(strict=False)
    built(result)
    for name in names:
        first = next(
            line
            for line in (project.docs / f"{name}.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("# ")
        )
        heading = text_of(first[2:])
        assert not re.search("[ÃÂ]|ð\u0178", heading), f"{name}: still mis-decoded: {heading}"
        page = article(project.page(name))
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", page, flags=re.S)
        assert h1, f"{name}: no title"
        words = [w for w in re.findall(r"[\w-]{4,}", heading)]
        assert words and all(w in text_of(h1.group(1)) for w in words), (name, heading)
        if name in SEED_HEADINGS:
            assert SEED_HEADINGS[name] in text_of(h1.group(1)), name
    assert before == {seed: hashlib.sha256(seed.read_bytes()).hexdigest() for seed in seeds}


# 5. Run pages


def test_the_runs_index_lists_runs_newest_first(site: Site) -> None:
    page = article(site.page("runs"))
    rows = index_rows(page)
    order = ["elsewhere", "changed", "bad", "good", "nested"]
    assert [row["href"] for row in rows] == [f"{site.runs[label]}/" for label in order]
    assert [row["path"] for row in rows] == [
        "outside/elsewhere.md",
        "docs/changed.md",
        "docs/restore.md",
        "docs/restore.md",
        "docs/db/vacuum.md",
    ]
    statuses = [row["status"] for row in rows]
    assert statuses == ["succeeded", "succeeded", "failed", "succeeded", "succeeded"]
    for row in rows:
        assert row["operator"] == OPERATOR
        assert re.fullmatch(WHEN, row["when"])
        assert re.fullmatch(r"\d+ms|\d+\.\ds|\d+m\d\ds", row["duration"]), row["duration"]
        assert row["status_text"] == row["status"]
        assert row["runbook"] == row["path"]
    selects = dict(re.findall(r'<select data-rb-filter="(\w+)">(.*?)</select>', page, flags=re.S))
    assert set(selects) == {"runbook", "status"}
    options = {k: re.findall(r'<option value="([^"]*)">', v) for k, v in selects.items()}
    assert options["runbook"] == [
        "",
        "docs/changed.md",
        "docs/db/vacuum.md",
        "docs/restore.md",
        "outside/elsewhere.md",
    ]
    assert options["status"] == ["", "failed", "succeeded"]


def test_a_run_page(site: Site) -> None:
    run_id = site.runs["good"]
    page = article(site.page(f"runs/{run_id}"))
    facts = text_of(page)
    assert f"Run {run_id}" in facts
    assert f"Operator {OPERATOR} <{EMAIL}>" in facts
    digest = hashlib.sha256(RESTORE.encode()).hexdigest()
    assert f"Version sha256 {digest[:16]}" in facts
    params = re.search(r'<h2 id="parameters".*?<tbody>(.*?)</tbody>', page, flags=re.S)
    assert params
    values = dict(
        (text_of(name), text_of(value))
        for name, value in re.findall(
            r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*</tr>", params.group(1), flags=re.S
        )
    )
    assert values["db_password"] == "<secret>"
    assert values["backup_file"] == str(site.root / "good.dump")
    assert values["note"] == XSS_PARAM
    assert values["environment"] == "staging"
    svg = re.search(r'<svg class="rb-timeline".*?</svg>', page, flags=re.S)
    assert svg, "no timeline"
    for step_id in ("stop-api", "restore-db", "report"):
        assert re.search(rf"<rect [^>]*><title>{step_id}: succeeded", svg.group(0)), step_id
    restore = section_of(page, "restore-db")
    assert f"pg_restore --clean -d app {site.root / 'good.dump'}" in text_of(restore)
    assert "confirm → run (--yes --allow-danger)" in text_of(restore)
    assert "exit code 0" in text_of(restore)
    output = re.search(r'class="rb-output[^"]*"[^>]*>(.*?)</pre>', restore, flags=re.S)
    assert output and "restored 42 tables" in text_of(output.group(1))
    manual = text_of(section_of(page, "prepare-1"))
    assert "Manual step: Announce the restore in #ops" in manual
    # Unattended, a manual step is confirmed or skipped, and the answer is recorded.
    assert re.search(r"manual → (done|skip)", manual), manual
    # Each step links to its header on the runbook page.
    for step_id in ("stop-api", "prepare-1", "restore-db", "report"):
        assert f'href="../../restore/#step-{step_id}"' in section_of(page, step_id)
    assert '<a href="../../restore/">Restore the database</a>' in page


def test_a_failed_run_page(site: Site) -> None:
    page = article(site.page(f"runs/{site.runs['bad']}"))
    assert 'rb-status-failed">failed' in page
    restore = section_of(page, "restore-db")
    assert "exit code 1" in text_of(restore)
    output = re.search(r'class="rb-output[^"]*"[^>]*>(.*?)</pre>', restore, flags=re.S)
    assert output and ERROR_TEXT in text_of(output.group(1))
    # The failure handler ran; the step after the failure did not.
    assert "reopening the api" in text_of(section_of(page, "reopen-api"))
    assert 'id="step-report"' not in page
    assert values_of_param(page, "backup_file") == "/backups/missing.dump"
    # Not given: either not shown or masked, never an empty value that looks like one.
    assert values_of_param(page, "db_password") in {None, "", "<secret>"}


def values_of_param(page: str, name: str) -> str | None:
    for key, value in re.findall(r"<td><code>(.*?)</code></td>\s*<td>(.*?)</td>", page):
        if html.unescape(key) == name:
            return text_of(value)
    return None


def test_a_run_of_a_runbook_outside_docs_dir_gets_a_page(site: Site) -> None:
    page = article(site.page(f"runs/{site.runs['elsewhere']}"))
    assert "Clean the scratch disk" in text_of(page)
    assert "outside/elsewhere.md" in text_of(page)
    # There is no page of it to link to (links within the run page are to its own steps).
    assert not re.search(r'href="[^"#]+#step-', page)
    assert "cleaned" in text_of(section_of(page, "clean-scratch"))


def build_with_runs_max(site: Site) -> Path:
    out = site.root / "site-max"
    if out.exists():
        return out
    # The plugin's `journal` option wins over RUNBOOK_JOURNAL (pointed at nothing here).
    options = {"runs_max": 1, "journal": str(site.journal)}
    (site.root / "max.yml").write_text(site_config(plugin_options=options), encoding="utf-8")
    env_journal = site.journal
    site.journal = site.root / "no-such-journal.db"
    try:
        built(site.build(config="max.yml", out=out))
    finally:
        site.journal = env_journal
    return out


def test_runs_max_limits_the_run_pages_not_the_index(site: Site) -> None:
    out = build_with_runs_max(site)
    pages = sorted(p.parent.name for p in (out / "runs").glob("*/index.html"))
    assert pages == [site.runs["elsewhere"]]
    rows = index_rows(article(site.page("runs", out)))
    assert len(rows) == 5
    assert [bool(row["href"]) for row in rows] == [True, False, False, False, False]
    assert "Last run" in text_of(article(site.page("restore", out)))


def test_runbooks_in_subdirectories_link_to_their_runs_and_back(site: Site) -> None:
    run_id = site.runs["nested"]
    assert f'href="../../runs/{run_id}/"' in article(site.page("db/vacuum"))
    run = article(site.page(f"runs/{run_id}"))
    assert 'href="../../db/vacuum/#step-vacuum"' in run


def test_no_link_of_the_site_is_broken(site: Site) -> None:
    assert broken_links(site.out) == []


def test_with_runs_max_no_link_is_broken(site: Site) -> None:
    assert broken_links(build_with_runs_max(site)) == []


# 6. Security


def test_recorded_html_is_escaped_everywhere(site: Site) -> None:
    raw = [XSS_OUTPUT.encode(), XSS_PARAM.encode(), b"<img src=x", b"<script>alert"]
    for path in site_files(site.out):
        data = path.read_bytes()
        for needle in raw:
            assert needle not in data, f"{needle!r} in {path.relative_to(site.out)}"
    page = site.page(f"runs/{site.runs['good']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_secret_reaches_no_file_of_the_site(site: Site) -> None:
    raw = SECRET.encode()
    forms = {
        raw,
        quote(SECRET, safe="").encode(),
        quote_plus(SECRET).encode(),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        html.escape(SECRET).encode(),
    }
    files = site_files(site.out)
    assert any(p.name == "search_index.json" for p in files)
    for path in files:
        data = path.read_bytes()
        for form in forms:
            assert form not in data, f"{form!r} in {path.relative_to(site.out)}"
    # The outputs that printed it show the mask instead.
    report = text_of(section_of(site.page(f"runs/{site.runs['good']}"), "report"))
    assert "password [secret:db_password]" in report
    assert report.count("[secret:db_password]") >= 4


def test_a_secret_with_a_quote_reaches_no_file_of_the_site(tmp_path: Path) -> None:
    project = Site(tmp_path)
    project.write(
        "docs/login.md",
        "---\nparams:\n  token: {secret: true}\n---\n\n# Log in\n\n"
        "```bash {id: login}\necho {{ token }} > /dev/null\n```\n",
    )
    project.run("login", "docs/login.md", "token=it's-Kx7Vq2secretTail")
    built(project.build())
    for path in site_files(project.out):
        assert b"Kx7Vq2secretTail" not in path.read_bytes(), path.relative_to(project.out)


# 7. Search


def test_search_indexes_runbook_text_commands_step_ids_and_run_output(site: Site) -> None:
    index = json.loads((site.out / "search" / "search_index.json").read_text(encoding="utf-8"))
    docs = index["docs"]

    def found(needle: str) -> set[str]:
        return {
            doc["location"].split("#")[0]
            for doc in docs
            if needle in html.unescape(doc["title"] + " " + doc["text"])
        }

    assert "restore/" in found(PROSE)
    assert "restore/" in found("pg_restore --clean -d app")
    assert "restore/" in found("restore-db")
    assert "restore/" in found("reopen-api")
    assert found(ERROR_TEXT) == {f"runs/{site.runs['bad']}/"}
    assert "glossary/" in found("recovery point objective")


# 8. The project's own site


def test_the_projects_own_site_builds_strict(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        env=subprocess_env(tmp_path / "no-journal.db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    built(result)
    page = article((out / "getting-started" / "index.html").read_text(encoding="utf-8"))
    assert '<div class="rb-box">' in page
    assert 'class="rb-graph-draw"' in page
    assert "runbook run runbooks/getting-started.md" in text_of(page)
    assert (out / "assets" / "runbook" / "mermaid.min.js").is_file()
    assert not (out / "runs").exists()  # no journal, no run pages


def test_a_large_site_renders_every_runbook_and_leaves_no_placeholder(tmp_path: Path) -> None:
    """Past 50 pages a worker process reads the runbooks ahead; every page still gets its
    step headers, and no placeholder for the plugin's HTML is left in any file."""
    project = Site(tmp_path)
    for n in range(60):
        project.write(
            f"docs/rb{n:02}.md",
            f"# Runbook {n}\n\n```bash {{id: step-{n}}}\necho {n}\n```\n\n- [ ] Check {n}\n",
        )
    built(project.build())
    for n in range(60):
        body = article(project.page(f"rb{n:02}"))
        assert f'id="step-step-{n}"' in body
        assert body.count('class="rb-step rb-step-manual"') == 1
    leftovers = [str(p) for p in site_files(project.out) if b"rbstash" in p.read_bytes()]
    assert leftovers == []
