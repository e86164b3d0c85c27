"""The built site in a real browser: headless Chromium (Debian's, driven by Playwright for
Python) searches for a command, opens the runbook, sees its step graph drawn, and expands a
step's output on a run page. Screenshots of each stage are kept as test artifacts.

The site is built in tmp_path and served from there on a free loopback port; every request
to anything but that server is refused, so the test also shows the site needs no network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, serving

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WAIT_MS = 10_000
ERROR_TEXT = "could not read input file: checksum mismatch in block xq7z"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium (`make test` does) to run these",
)

RESTORE = """\
---
title: Restore the database
owner: dba-team@example.com
tags: [postgres]
params:
  backup_file: {description: Dump to restore, default: /backups/latest.dump}
---

# Restore the database

Bring back the last dump after a bad migration.

## Prepare

```bash {id: stop-api, timeout: 2m}
echo "stopping the api"
```

## Restore

```bash {id: restore-db, needs: [stop-api], confirm: danger, on_failure: rollback}
pg_restore --clean -d app {{ backup_file }}
```

## Rollback

```bash {id: reopen-api}
echo "reopening the api"
```
"""

# A stand-in for PostgreSQL's pg_restore: succeeds when its last argument is a file.
FAKE_PG_RESTORE = f"""#!/bin/sh
for last; do :; done
if [ -f "$last" ]; then echo "pg_restore: restored 42 tables from $last"; exit 0; fi
printf '\\033[31mpg_restore: error: %s\\033[0m\\n' "{ERROR_TEXT}" >&2
exit 1
"""

# Material keeps each rendered diagram in a closed shadow root; open them so the test can
# see the SVG (this changes nothing else on the page).
OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, Object.assign({}, init, {mode: "open"}));
};
"""


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("TEST_ARTIFACTS", "test-artifacts"))
    return (directory if directory.is_absolute() else ROOT / directory) / "browser"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with one runbook run twice: succeeded, then failed (the newest)."""
    root = tmp_path_factory.mktemp("browser-site")
    docs = root / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(
        "# Team runbooks\n\nStart with [restoring the database](restore.md).\n"
    )
    (docs / "restore.md").write_text(RESTORE)
    fakes = root / "bin"
    fakes.mkdir()
    (fakes / "pg_restore").write_text(FAKE_PG_RESTORE)
    (fakes / "pg_restore").chmod(0o755)
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config, count = re.subn(r"(?m)^docs_dir:.*$", "docs_dir: docs", config)
    assert count == 1
    (root / "mkdocs.yml").write_text(config, encoding="utf-8")
    (root / "good.dump").write_text("a dump\n")
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "MKDOCS_CONFIG"}}
    env.update(
        NO_MKDOCS_2_WARNING="1",
        NO_COLOR="1",
        RUNBOOK_JOURNAL=str(root / "journal.db"),
        PATH=f"{fakes}{os.pathsep}{env.get('PATH', '')}",
    )
    for backup, ok in ((root / "good.dump", True), (Path("/backups/missing.dump"), False)):
        command = [str(BIN / "runbook"), "run", "docs/restore.md", "--yes", "--allow-danger"]
        result = subprocess.run(
            [*command, "-p", f"backup_file={backup}"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode == 0) == ok, result.stdout + result.stderr
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "-q", "-d", str(root / "site")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "site"


@pytest.fixture(scope="module")
def server(built_site: Path) -> Iterator[str]:
    with serving(built_site) as url:
        yield url


def test_search_open_runbook_graph_and_run_output(server: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    refused: list[str] = []
    errors: list[str] = []

    def route(request_route: object) -> None:
        request = request_route.request  # type: ignore[attr-defined]
        if request.url.startswith(server):
            request_route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(request.url)
            request_route.abort()  # type: ignore[attr-defined]

    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(WAIT_MS)
                page.add_init_script(OPEN_SHADOW_ROOTS)
                page.route("**/*", route)
                page.on("pageerror", lambda error: errors.append(str(error)))

                # The home page, and the search box.
                page.goto(server)
                search = page.locator("input.md-search__input")
                search.wait_for(state="visible")
                page.screenshot(path=shots / "1-home.png")

                # A command fragment finds the runbook.
                search.click()
                page.keyboard.type("pg_restore")
                results = page.locator(".md-search-result__item")
                results.first.wait_for(state="visible")
                runbook = page.locator(".md-search-result__link").filter(
                    has_text="Restore the database"
                )
                runbook.first.wait_for(state="visible")
                page.screenshot(path=shots / "2-search.png")
                runbook.first.click()

                # Its step graph is drawn as SVG from the bundled mermaid.
                page.wait_for_url(re.compile(r"/restore/"))
                graph = page.locator(".rb-graph-draw svg")
                graph.first.wait_for(state="visible")
                drawn = graph.first.text_content() or ""
                for label in ("stop-api", "restore-db", "reopen-api", "on failure"):
                    assert label in drawn, label
                box = graph.first.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 100
                page.screenshot(path=shots / "3-runbook.png", full_page=True)

                # The last run (the failed one) from the header box: its output is open.
                page.locator(".rb-box a[href*='runs/']").first.click()
                page.wait_for_url(re.compile(r"/runs/[^/]+/"))
                details = page.locator(".rb-output").filter(
                    has=page.locator("pre", has_text="xq7z")
                )
                assert details.count() == 1
                output = details.locator("pre.rb-term")
                page.screenshot(path=shots / "4-run.png", full_page=True)
                output.wait_for(state="visible")
                assert ERROR_TEXT in output.inner_text()
                # ANSI red became a CSS class, not an escape sequence in the text.
                assert "\x1b" not in output.inner_text()
                assert output.locator("span.rb-fg-1").count() >= 1
                details.scroll_into_view_if_needed()
                page.screenshot(path=shots / "5-run-output.png")

                # The runs index (a run page links to it; instant navigation): the filter works.
                page.locator("article a", has_text="all runs").first.click()
                page.wait_for_url(re.compile(r"/runs/$"))
                rows = page.locator(".rb-runs tbody tr")
                rows.first.wait_for(state="visible")
                assert rows.count() == 2
                page.locator('select[data-rb-filter="status"]').select_option("failed")
                page.wait_for_function(
                    "document.querySelectorAll('.rb-runs tbody tr:not([style*=none])').length === 1"
                )
                visible = page.locator(".rb-runs tbody tr:visible")
                assert visible.count() == 1
                assert "failed" in visible.first.inner_text()
                page.screenshot(path=shots / "6-runs-filtered.png")
            finally:
                browser.close()
    finally:
        target = artifacts_dir()
        target.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("*.png"):
            shutil.copy2(shot, target / shot.name)

    assert errors == [], errors
    # Mermaid never came from a CDN (the fonts Material asks Google for may be refused).
    assert [url for url in refused if "fonts.g" not in url] == []
