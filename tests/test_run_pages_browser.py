"""Run pages in a real browser (Debian's chromium, driven by Playwright): a failed run's
banner linking to its open output, 256-colour and truecolour output styled, a tampered
journal's red banner, the replay playing with pause, the runs index on a phone and its filter
after back/forward. Screenshots of the failed run are kept as test artifacts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, serving
from test_run_pages import Built, build, make_site, tamper
from test_site_browser import DESKTOP, PHONE, Tab

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium (`make test` does) to run these",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return make_site(tmp_path_factory.mktemp("run-pages-browser"))


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[str]:
    with serving(built.site) as url:
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


def colour(locator: Any, prop: str) -> str:
    return str(locator.evaluate(f"e => getComputedStyle(e).{prop}"))


def test_a_failed_run_has_a_banner_linking_to_its_open_output(
    browser: Any, server: str, built: Built
) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(f"{server}runs/{built.runs['failed']}/")
    banner = tab.page.locator(".rb-banner-failed")
    banner.wait_for(state="visible")
    assert "budget-1 failed, exit code 3" in banner.inner_text()
    assert colour(banner, "backgroundColor") == "rgb(198, 40, 40)"
    who = tab.page.locator(".rb-who")
    assert who.is_visible() and "Run by" in who.inner_text()
    tab.shot("run-failed-desktop.png", full_page=True)
    banner.locator("a").click()
    tab.page.wait_for_function("location.hash === '#step-budget-1'")
    failed = tab.page.locator("pre.rb-term", has_text="budget exhausted: 3 errors")
    failed.wait_for(state="visible")
    tab.page.wait_for_function(
        """() => { const top = [...document.querySelectorAll('pre.rb-term')].find(
            p => p.textContent.includes('budget exhausted')).getBoundingClientRect().top;
            return top >= 0 && top < innerHeight; }"""
    )
    # The table of contents carries each step's status.
    toc = tab.page.locator(".md-sidebar--secondary").inner_text()
    assert "✗ budget-1: failed" in toc and "✓ canary-1: succeeded" in toc
    assert tab.errors == []

    phone = Tab(browser, server, PHONE)
    phone.page.goto(f"{server}runs/{built.runs['failed']}/")
    phone.page.locator(".rb-banner-failed").wait_for(state="visible")
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the run page scrolls sideways on a phone"
    phone.shot("run-failed-phone.png", full_page=True)


def test_256_colour_and_truecolour_output_is_styled(
    browser: Any, server: str, built: Built
) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(f"{server}runs/{built.runs['failed']}/")
    term = tab.page.locator("pre.rb-term", has_text="orange")
    term.wait_for(state="visible")
    assert term.inner_text().strip() == "orange teal reversed"
    assert colour(term.locator("span", has_text="orange"), "color") == "rgb(255, 135, 0)"
    teal = term.locator("span", has_text="teal")
    assert colour(teal, "backgroundColor") == "rgb(0, 95, 135)"
    reversed_ = term.locator("span", has_text="reversed")
    assert colour(reversed_, "backgroundColor") == colour(term, "color")


def test_the_replay_plays_with_its_timing_and_pauses(
    browser: Any, server: str, built: Built
) -> None:
    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(f"{server}runs/{built.runs['failed']}/")
    # Found by its player: its text changes while it plays.
    output = tab.page.locator(".rb-output").filter(
        has=tab.page.locator("[data-rb-replay='canary-1/1']")
    )
    button = output.locator(".rb-replay button")
    button.wait_for(state="visible")
    term = output.locator("pre.rb-term")
    replay = built.site / "runs" / built.runs["failed"] / "replay.json"
    chunks = json.loads(replay.read_text("utf-8"))["canary-1/1"]
    button.click()
    # The first chunk at once, the others as they came (about 0.8 s apart).
    tab.page.wait_for_function(
        "() => document.querySelector('[data-rb-replay][data-playing]') !== null"
    )
    assert term.inner_text().strip() == chunks[0][1].strip()
    assert "Pause" in button.inner_text()
    button.click()  # pause: nothing more is written
    assert "Resume" in button.inner_text()
    paused = term.inner_text()
    tab.page.wait_for_timeout(1500)
    assert term.inner_text() == paused
    button.click()
    tab.page.wait_for_function(
        """() => [...document.querySelectorAll('pre.rb-term')].some(
            p => p.textContent.trim() === 'canary tick 1\\ncanary tick 2\\ncanary tick 3')"""
    )
    # At the end the full rendering is back and the player can start again.
    tab.page.wait_for_function(
        "() => document.querySelector('[data-rb-replay][data-playing]') === null"
    )
    assert "Replay" in button.inner_text()
    assert term.inner_text().strip().endswith("canary tick 3")
    assert tab.errors == []


def test_a_tampered_run_is_published_with_a_red_banner(
    browser: Any, built: Built, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.db"
    seq = tamper(built.journal, forged, "canary tick 2", "canary tick 9")
    result = build(built.root, forged, tmp_path / "site", strict=False)
    assert result.returncode == 0, result.stderr
    with serving(tmp_path / "site") as url:
        tab = Tab(browser, url, DESKTOP)
        tab.page.goto(f"{url}runs/{built.runs['failed']}/")
        banner = tab.page.locator(".rb-banner-tampered")
        banner.wait_for(state="visible")
        assert f"event {seq} (output, step canary-1) was changed" in banner.inner_text()
        assert colour(banner, "backgroundColor") == "rgb(198, 40, 40)"
        tab.shot("run-tampered.png")
        tab.page.goto(f"{url}runs/")
        state = tab.page.locator(".rb-verify-bad")
        state.wait_for(state="visible")
        assert "does not verify" in state.inner_text()


def test_the_runs_index_on_a_phone_and_after_back_and_forward(
    browser: Any, server: str, built: Built
) -> None:
    phone = Tab(browser, server, PHONE)
    phone.page.goto(f"{server}runs/")
    status = phone.page.locator(".rb-runs tbody tr").first.locator(".rb-status")
    status.wait_for(state="visible")
    box = status.bounding_box()
    assert box and box["x"] + box["width"] <= PHONE["width"]
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    tab = Tab(browser, server, DESKTOP)
    tab.page.goto(f"{server}runs/")
    tab.page.locator("[data-rb-filter=status]").select_option("failed")
    visible = "document.querySelectorAll('.rb-runs tbody tr:not([style*=none])').length"
    tab.page.wait_for_function(f"{visible} === 1")
    tab.page.locator(".rb-runs tbody tr:visible a").first.click()
    tab.page.wait_for_url(re.compile(r"/runs/[^/]+/$"))
    tab.page.go_back()
    tab.page.wait_for_url(re.compile(r"/runs/$"))
    tab.page.locator(".rb-runs tbody tr").first.wait_for(state="attached")
    # Whatever the browser restored in the filter, the rows shown match it.
    tab.page.wait_for_function(
        f"""() => {{ const v = document.querySelector('[data-rb-filter=status]').value;
            return {visible} === (v ? 1 : 2); }}"""
    )
    assert tab.errors == []
