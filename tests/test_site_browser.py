"""The site's pages in a real browser (Debian's chromium, driven by Playwright): the generated
home page and its filter, a list with fences that stays a list, a large runbook's graph
collapsed until opened and its nodes linking to their steps, mermaid loaded only where a graph
is drawn, and a search for a step id that lands on the runbook, not on a run.

Screenshots at desktop and phone widths are kept as test artifacts (`TEST_ARTIFACTS`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, serving

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WAIT_MS = 15_000
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium (`make test` does) to run these",
)

# A wiki-style page: a numbered list whose items hold the commands.
DEPLOY = """\
---
title: Deploy the web tier
description: Roll a new build out to the web servers, one at a time.
owner: web-team@example.com
tags: [web, deploy]
---

# Deploy the web tier

Ship the build from CI to the two web servers. Takes about ten minutes.

1. Copy the build:
   ```bash
   echo "copying build 1.4.2"
   ```
2. Check the files arrived:

    ```bash
    echo "12 files"
    ```

3. Reload nginx:
    ```bash
    echo "nginx reloaded"
    ```
4. Confirm:
    - [ ] The dashboard is green
    - [ ] Nobody was paged
"""

# The engine's own dialect, with step ids that a reader would search for.
HEALTH = """\
---
title: Check the service health
description: What to run when the health alert fires.
owner: sre@example.com
tags: [web, monitoring]
---

# Check the service health

Run this when the `ServiceDown` alert fires.

## Look

```bash {id: health-check}
echo "200 OK from /healthz"
```

## Decide

```bash {id: approve, needs: [health-check]}
echo "approved by the on-call"
```
"""


# A Hugo-style page: two alternatives, a destructive command, a guessed block, a follow.
RESTART = """\
---
title: "Restart the API"
weight: 20
aliases: [/ops/api-restart/]
tags: [api]
---

When the API stops answering, look first:

```bash
kubectl -n api get pods
```

## Option 1: rolling restart

```bash
kubectl -n api rollout restart deploy/api
```

## Option 2: delete the pods

```bash
kubectl -n api delete pod -l app=api
```

## Verify

```
curl -fsS https://api.example.com/healthz
```

```bash
kubectl -n api logs -f deploy/api
```
"""


def big_runbook(sections: int = 6, per_section: int = 7) -> str:
    """A long procedure, like a datacentre move: many sections of small steps."""
    parts = [
        "---\ntitle: Move the cluster to the new racks\nowner: infra@example.com\n"
        "tags: [hardware]\n---\n\n# Move the cluster to the new racks\n\n"
        "A long procedure: read it all before you start.\n"
    ]
    for section in range(1, sections + 1):
        parts.append(f"\n## Rack {section}\n\nDrain the nodes of rack {section}, one by one.\n")
        for node in range(1, per_section + 1):
            parts.append(
                f"\n```bash {{id: rack{section}-node{node}}}\n"
                f'echo "draining node {node} of rack {section}"\n```\n'
            )
    parts.append("\n## Afterwards\n\n- [ ] Tell [the facilities team](https://example.com/fm)\n")
    return "".join(parts)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site with no index.md, four runbooks, and a few runs of the health check."""
    root = tmp_path_factory.mktemp("site-browser")
    docs = root / "docs"
    docs.mkdir()
    (docs / "deploy.md").write_text(DEPLOY, encoding="utf-8")
    (docs / "health.md").write_text(HEALTH, encoding="utf-8")
    (docs / "move.md").write_text(big_runbook(), encoding="utf-8")
    (docs / "restart.md").write_text(RESTART, encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config)
    (root / "mkdocs.yml").write_text(config, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "MKDOCS_CONFIG"}}
    env.update(NO_MKDOCS_2_WARNING="1", NO_COLOR="1", RUNBOOK_JOURNAL=str(root / "j.db"))
    for _ in range(3):
        result = subprocess.run(
            [str(BIN / "runbook"), "run", "docs/health.md", "--yes"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
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


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """A page of the browser that reaches only the site, and records what it loaded."""

    def __init__(self, browser: Any, server: str, viewport: dict[str, int]) -> None:
        self.page = browser.new_page(viewport=viewport)
        self.page.set_default_timeout(WAIT_MS)
        self.server = server
        self.loaded: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(self.server):
            self.loaded.append(url)
            route.continue_()
        else:
            route.abort()

    def mermaid_loaded(self) -> bool:
        return any(url.endswith("mermaid.min.js") for url in self.loaded)

    def shot(self, name: str, full_page: bool = False) -> None:
        target = artifacts_dir()
        target.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=target / name, full_page=full_page)


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("TEST_ARTIFACTS", "test-artifacts"))
    return (directory if directory.is_absolute() else ROOT / directory) / "site-browser"


def test_the_home_page_lists_and_filters_the_runbooks(browser: Any, server: str) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(server)
    rows = tab.page.locator(".rb-home tbody tr")
    rows.first.wait_for(state="visible")
    assert rows.count() == 4
    health = rows.filter(has_text="Check the service health")
    text = health.inner_text()
    assert "sre@example.com" in text and "What to run when the health alert fires." in text
    assert "succeeded" in text and "monitoring" in text
    assert health.locator("td").nth(2).inner_text().strip() == "2"  # steps
    assert "never run" in rows.filter(has_text="Deploy the web tier").inner_text()
    tab.shot("home-desktop.png", full_page=True)

    # Typing narrows the list; a tag narrows it too.
    tab.page.locator("[data-rb-home-text]").fill("rack")
    tab.page.wait_for_function(
        "document.querySelectorAll('.rb-home tbody tr:not([style*=none])').length === 1"
    )
    assert "Move the cluster" in tab.page.locator(".rb-home tbody tr:visible").inner_text()
    tab.page.locator("[data-rb-home-text]").fill("")
    tab.page.locator("[data-rb-home-tag]").select_option("web")
    tab.page.wait_for_function(
        "document.querySelectorAll('.rb-home tbody tr:not([style*=none])').length === 2"
    )

    # The runs index is linked; the last run's link opens its page.
    tab.page.locator("article a", has_text="runs recorded").click()
    tab.page.wait_for_url(re.compile(r"/runs/$"))
    assert tab.page.locator(".rb-runs tbody tr").count() == 3
    # The navigation has one "Runs" entry, not a section "Runs" holding a page "Runs".
    nav = tab.page.locator(".md-nav--primary").inner_text()
    assert nav.count("Runs") == 1, nav
    assert not tab.mermaid_loaded(), "mermaid was loaded by pages that draw no graph"
    assert tab.errors == []

    phone = Tab(browser, server, PHONE)
    phone.page.goto(server)
    phone.page.locator(".rb-home tbody tr").first.wait_for(state="visible")
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the home page scrolls sideways on a phone"
    phone.shot("home-phone.png", full_page=True)


def test_a_list_with_fences_is_rendered_as_a_list(browser: Any, server: str) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(server + "deploy/")
    items = tab.page.locator("article ol > li")
    items.first.wait_for(state="visible")
    assert items.count() == 4
    # Every command is a code block inside its item, with its step header just before it.
    for number, command in enumerate(("copying build", "12 files", "nginx reloaded")):
        item = items.nth(number)
        assert item.locator("pre").count() == 1, item.inner_html()
        assert command in item.locator("pre").inner_text()
        assert item.locator("h6.rb-step").count() == 1
    checklist = items.nth(3).locator("input[type=checkbox]")
    assert checklist.count() == 2
    assert "[ ]" not in tab.page.locator("article").inner_text()
    tab.shot("runbook-desktop.png", full_page=True)
    phone = Tab(browser, server, PHONE)
    phone.page.goto(server + "deploy/")
    phone.page.locator("article ol > li").first.wait_for(state="visible")
    phone.shot("runbook-phone.png", full_page=True)


def test_a_large_graph_is_collapsed_and_its_nodes_link_to_steps(browser: Any, server: str) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(server + "move/")
    graph = tab.page.locator("details.rb-graph")
    graph.wait_for(state="attached")
    assert graph.get_attribute("open") is None
    # After the introduction, before the first section.
    order = tab.page.evaluate(
        """() => { const g = document.querySelector('details.rb-graph');
        const intro = [...document.querySelectorAll('article p')].find(
            p => p.textContent.includes('read it all'));
        const h2 = document.querySelector('article h2');
        return [intro.compareDocumentPosition(g) & 4, g.compareDocumentPosition(h2) & 4]; }"""
    )
    assert order == [4, 4]
    height = tab.page.evaluate("document.querySelector('details.rb-graph').offsetHeight")
    assert height < 80, "the collapsed graph takes room"
    assert not tab.mermaid_loaded(), "mermaid was loaded before the graph was opened"

    graph.locator("summary").click()
    svg = graph.locator(".rb-graph-draw svg")
    svg.wait_for(state="visible")
    assert tab.mermaid_loaded()
    assert "rack3-node4" in (svg.text_content() or "")
    # The manual step's label has the link's text, not its target.
    assert "facilities team" in (svg.text_content() or "")
    assert "example.com" not in (svg.text_content() or "")
    tab.shot("graph-open.png")

    node = svg.locator("a", has_text="rack3-node4").first
    node.click()
    tab.page.wait_for_function("location.hash === '#step-rack3-node4'")
    header = tab.page.locator("#step-rack3-node4")
    assert header.is_visible()
    # Scrolled to the step (smoothly: wait until it is in view).
    tab.page.wait_for_function(
        """() => { const top = document.getElementById('step-rack3-node4')
            .getBoundingClientRect().top; return top >= 0 && top < innerHeight; }"""
    )
    assert tab.errors == []


def test_the_graph_forks_at_alternatives_and_marks_what_the_engine_judged(
    browser: Any, server: str
) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(server + "restart/")
    svg = tab.page.locator("details.rb-graph .rb-graph-draw svg")
    svg.wait_for(state="visible")  # five steps: open from the start
    text = svg.text_content() or ""
    assert "Option 1: rolling restart" in text and "Option 2: delete the pods" in text
    # The dangerous step's node has the red border; the follow step is filled.
    danger = svg.locator("g.node.danger")
    assert danger.count() == 1
    assert "delete-the-pods" in (danger.text_content() or "")
    stroke = danger.locator("rect, path, polygon").first.evaluate("e => getComputedStyle(e).stroke")
    assert stroke == "rgb(198, 40, 40)", stroke
    assert svg.locator("g.node.follow").count() == 1
    assert svg.locator("g.node.guessed").count() == 1
    legend = tab.page.locator(".rb-graph-legend").inner_text()
    assert legend.split() == ["danger", "guessed", "follow"]
    # Step headers carry the same judgements as badges.
    assert tab.page.locator("h6.rb-step .rb-badge-danger").count() == 1
    assert tab.page.locator("h6.rb-step .rb-badge-guessed").count() == 1
    assert tab.page.locator("h6.rb-step .rb-badge-option").count() == 2
    tab.shot("graph-alternatives.png")
    assert tab.errors == []


def search(tab: Tab, words: str) -> Any:
    """Type into the search box; the first result (a page and its best sections)."""
    tab.page.goto(tab.server)
    box = tab.page.locator("input.md-search__input")
    box.wait_for(state="visible")
    box.click()
    tab.page.keyboard.type(words)
    first = tab.page.locator(".md-search-result__item").first
    first.wait_for(state="visible")
    # Results re-render after each typed key: read them once the list stops changing.
    results = tab.page.locator(".md-search-result__list")
    previous, deadline = "", time.monotonic() + 15
    while time.monotonic() < deadline:
        tab.page.wait_for_timeout(300)
        current = results.inner_html()
        if current == previous:
            break
        previous = current
    return first


def test_searching_a_step_id_lands_on_the_runbook(browser: Any, server: str) -> None:
    tab = Tab(browser, server, DESKTOP)
    # Three runs of this runbook have a section "health-check" too: the runbook comes first.
    first = search(tab, "health-check")
    hrefs: list[str] = first.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert re.search(r"/health/(\?[^#]*)?$", hrefs[0]), hrefs
    assert any(h.endswith("#step-health-check") for h in hrefs), hrefs
    # The graph's source is no search result's text.
    results = tab.page.locator(".md-search-result").inner_text()
    assert "flowchart" not in results and "click s" not in results

    # A step id found only in the steps: its section is the result shown, and opens the step.
    first = search(tab, "approve")
    link = first.locator("a.md-search-result__link:visible").nth(1)
    assert (link.get_attribute("href") or "").endswith("/health/?h=approve#step-approve")
    assert "echo" in link.inner_text()  # the command is the entry's text
    tab.shot("search-step.png")
    link.click()
    tab.page.wait_for_url(re.compile(r"/health/.*#step-approve$"))
    assert tab.page.locator("#step-approve").is_visible()
    assert tab.errors == []


@pytest.fixture(scope="module", autouse=True)
def _no_stale_artifacts() -> Iterator[None]:
    shutil.rmtree(artifacts_dir(), ignore_errors=True)
    yield


def test_a_search_match_in_a_run_output_is_shown(
    browser: Any, server: str, built_site: Path
) -> None:
    run_page = next(p for p in (built_site / "runs").iterdir() if (p / "index.html").is_file())
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(f"{server}runs/{run_page.name}/?h=healthz")
    marks = tab.page.locator("article mark[data-md-highlight]")
    marks.first.wait_for(state="visible")
    assert marks.count() >= 2  # the command, and its output
    # No match is left in a collapsed box; the first one that was is scrolled to.
    tab.page.wait_for_function(
        """() => [...document.querySelectorAll('article mark[data-md-highlight]')].every(
            m => m.getClientRects().length > 0)"""
    )
    boxed = tab.page.locator("article details mark[data-md-highlight]")
    if boxed.count():
        tab.page.wait_for_function(
            """() => { const top = document.querySelector(
                'article details mark[data-md-highlight]').getBoundingClientRect().top;
                return top >= 0 && top < innerHeight; }"""
        )
    assert not tab.mermaid_loaded()
    assert tab.errors == []
