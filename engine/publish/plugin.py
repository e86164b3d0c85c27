"""The mkdocs plugin (entry point `runbook`): runbook pages as procedures, and run pages.

plugins:
  - search
  - runbook:
      journal: .runbook/journal.db   # or a postgresql:// URL; default: $RUNBOOK_JOURNAL,
                                     # else the project's journal
      runs_max: 200                  # runs that get a page of their own; older ones are
                                     # still listed in the index
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.livereload import LiveReloadServer
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.nav import Navigation, Section
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from engine.front_matter import toml_front_matter_end
from engine.journal.chain import Head
from engine.journal.location import is_url, journal_location, shown
from engine.journal.query import RunSummary
from engine.journal.storage import Store, open_store
from engine.journal.store import JournalError
from engine.journal.verify import Verification
from engine.loader import RunbookNotFound
from engine.model import Runbook
from engine.plan import Plan
from engine.publish.decorate import Decoration, decorate
from engine.publish.home import HOME_TITLE, HomeEntry, home_html
from engine.publish.page import esc, runbook_markdown, strip_front_matter
from engine.publish.prefetch import Prefetch, read_and_plan
from engine.publish.runs import (
    REPLAY_FILE,
    RunLinks,
    large_outputs,
    replay_data,
    run_page,
    runs_index,
)
from engine.publish.stash import Stash
from engine.publish.watch import JournalPoll, JournalWatch

log = logging.getLogger("mkdocs.plugins.runbook")
# Served under assets/runbook/. mermaid is bundled so step graphs render without a network;
# it is 3.6 MB, so only pages that draw a graph load it: runbook.js when a step graph is
# opened, a script tag on a page with the author's own mermaid diagram (mkdocs-material uses
# a `mermaid` already on the page instead of fetching it).
ASSETS = ("runbook.css", "vendor/mermaid.min.js", "runbook.js")
LINKED = ("runbook.css", "runbook.js")


class RunbookConfig(base.Config):  # type: ignore[no-untyped-call]
    journal = c.Optional(c.Type(str))
    runs_max = c.Type(int, default=200)
    runs_dir = c.Type(str, default="runs")
    recent = c.Type(int, default=5)


class RunbookPlugin(BasePlugin[RunbookConfig]):  # type: ignore[no-untyped-call]
    """Turns runbook pages into readable procedures and adds pages for past runs."""

    def __init__(self) -> None:
        self._runs: list[RunSummary] = []
        self._runs_by_path: dict[str, list[RunSummary]] = {}  # abspath -> its runs, newest first
        self._db: Store | None = None
        self._head: Head | None = None
        self._chain_problems: list[str] = []
        self._pages_by_path: dict[str, File] = {}
        self._stash = Stash()
        self._prefetch = Prefetch(())
        self._run_urls: dict[str, str] = {}  # run id -> its page's URL
        self._index_url = ""
        self._root = Path.cwd()
        # src_uri -> what its rendered HTML gets, and the source lines it was planned from
        self._decorations: dict[str, tuple[Decoration, list[str]]] = {}
        self._watch: JournalWatch | JournalPoll | None = None  # under `mkdocs serve`
        self._home: File | None = None  # the generated home page, when the docs have none
        self._listed: dict[str, HomeEntry] = {}  # abspath -> the runbook as the home lists it
        self._verified: dict[str, Verification] = {}  # run id -> its journal verification
        self._outputs: tempfile.TemporaryDirectory[str] | None = None  # large outputs, whole

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        self._root = Path(config.config_file_path or ".").resolve().parent
        # The run page template (runbook-run.html), after the theme's own directories.
        templates = str(resources.files("engine.publish").joinpath("templates"))
        if templates not in config.theme.dirs:
            config.theme.dirs.append(templates)
        for asset in LINKED:
            target = f"assets/runbook/{asset}"
            bucket = config.extra_css if asset.endswith(".css") else config.extra_javascript
            if target not in [str(item) for item in bucket]:
                bucket.append(target)
        if not _has_mermaid(config):
            log.warning(
                "mermaid fences are not configured: add pymdownx.superfences with a 'mermaid'"
                " custom fence so step graphs render"
            )
        return config

    def on_files(self, files: Files, /, *, config: MkDocsConfig) -> Files:
        for asset in ASSETS:
            content = resources.files("engine.publish").joinpath("assets", asset).read_bytes()
            name = PurePosixPath(asset).name
            files.append(File.generated(config, f"assets/runbook/{name}", content=content))
        pages = {f.abs_src_path: f for f in files.documentation_pages() if f.abs_src_path}
        self._prefetch.close()
        self._prefetch = Prefetch([(path, f.src_uri) for path, f in pages.items()])
        self._pages_by_path = {str(Path(path).resolve()): f for path, f in pages.items()}
        self._stash = Stash()
        self._listed = {}
        self._home = None
        if not any(files.get_file_from_path(name) for name in ("index.md", "README.md")):
            self._home = File.generated(config, "index.md", content=f"# {HOME_TITLE}\n")
            files.append(self._home)
        self._open_journal()
        if self._db is None:
            return files
        runs_dir = self.config.runs_dir.strip("/")
        detailed = self._runs[: max(self.config.runs_max, 0)]
        detailed_ids = {r.id for r in detailed}
        index = File.generated(
            config,
            f"{runs_dir}/index.md",
            content=runs_index(self._runs, detailed_ids, self._stash, self._verification_html()),
        )
        files.append(index)
        self._index_url = index.url
        for summary in detailed:
            # Run pages are reached from the index and the runbook pages, not the navigation.
            # The content is written once the page's URL is known: its links are relative.
            generated = File.generated(
                config,
                f"{runs_dir}/{summary.id}.md",
                content="",
                inclusion=InclusionLevel.NOT_IN_NAV,
            )
            target = self._pages_by_path.get(summary.abspath)
            beside = f"{runs_dir}/{summary.id}/"  # its outputs and replays
            links = RunLinks(
                get_relative_url(target.url, generated.url) if target else None,
                get_relative_url(index.url, generated.url),
                get_relative_url(beside + "-", generated.url)[:-1],
            )
            detail = self._db.read_run(summary)
            checked = self._verified.get(summary.id)
            problem = checked.problem if checked is not None and not checked.ok else ""
            generated.content_string = run_page(detail, links, self._stash, problem)
            files.append(generated)
            replays = replay_data(detail)
            if replays:
                data = json.dumps(replays, ensure_ascii=False, separators=(",", ":"))
                # No markup in the file even as text, should it ever be served as HTML.
                data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                files.append(File.generated(config, beside + REPLAY_FILE, content=data))
            for name, attempt in large_outputs(detail):
                files.append(
                    self._whole_output(config, f"{runs_dir}/{summary.id}/{name}", attempt.output)
                )
            self._run_urls[summary.id] = generated.url
        return files

    def _whole_output(self, config: MkDocsConfig, uri: str, text: str) -> File:
        """A step's whole output, beside its run page: written to a temporary file in pieces
        and copied into the site from there, never held twice in memory."""
        if self._outputs is None:
            self._outputs = tempfile.TemporaryDirectory(prefix="runbook-outputs-")
        path = Path(self._outputs.name) / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for start in range(0, len(text), 1 << 20):
                out.write(text[start : start + (1 << 20)].encode("utf-8", "replace"))
        return File.generated(config, uri, abs_src_path=str(path))

    def _verify(self, store: Store) -> None:
        """Every run's hash chain and the chain over runs, checked at each build: a run that
        does not verify, or a break in the chain, is a WARNING (so `mkdocs build --strict`
        fails); a run that does not verify gets a red banner on its page."""
        checked = store.verify_journal()
        self._verified = {v.run_id: v for v in checked.runs}
        self._head, self._chain_problems = checked.head, checked.problems
        for result in self._verified.values():
            if not result.ok:
                log.warning("runbook: run %s does not verify: %s", result.run_id, result.problem)
        for problem in checked.problems:
            log.warning("runbook: the journal's chain over runs is broken: %s", problem)

    def _verification_html(self) -> str:
        """The journal's verification state, as the runs index shows it."""
        results = list(self._verified.values())
        bad = [r for r in results if not r.ok]
        events = sum(r.events for r in results)
        head = ""
        if self._head is not None:
            head = (
                f'<p class="rb-verify rb-head">Journal head when this site was built:'
                f" <code>{self._head.seals}:{esc(self._head.hash)}</code> (check it later with"
                f" <code>runbook log verify --since-head {esc(self._head.hash)}</code>).</p>"
            )
        if self._chain_problems:
            head = (
                '<p class="rb-verify rb-verify-bad"><strong>The chain over runs is broken:'
                f"</strong> {esc('; '.join(self._chain_problems))}.</p>" + head
            )
        if not bad:
            return head + (
                f'<p class="rb-verify rb-verify-ok">Journal verified when this site was built:'
                f" all {len(results)} run(s), {events:,} events, hash chains intact.</p>"
            )
        first = bad[0]
        return head + (
            '<p class="rb-verify rb-verify-bad"><strong>The journal does not verify:</strong>'
            f" {len(bad)} of {len(results)} run(s) have changed or missing events; the first,"
            f" run <code>{esc(first.run_id)}</code>: {esc(first.problem)}.</p>"
        )

    def _open_journal(self) -> None:
        location = journal_location(self.config.journal, self._root)
        if not is_url(location) and not Path(location).is_absolute():
            location = self._root / location
        self._runs, self._runs_by_path, self._db, self._run_urls = [], {}, None, {}
        self._verified = {}
        self._index_url = ""
        self._head, self._chain_problems = None, []
        if not is_url(location) and not Path(location).exists():
            log.info("no journal at %s: the site has no run pages", location)
            return
        try:
            store = open_store(location, read_only=True)
            self._runs = store.list_runs()
        except JournalError as exc:
            raise PluginError(
                f"runbook: cannot read the journal {shown(location)}: {exc}"
            ) from None
        self._db = store
        self._verify(store)
        for run in self._runs:
            self._runs_by_path.setdefault(run.abspath, []).append(run)

    def on_page_markdown(
        self, markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if self._home is not None and page.file is self._home:
            return f"# {HOME_TITLE}\n" + self._stash.block(self._home_html(page))
        source = page.file.abs_src_path
        runs_dir = self.config.runs_dir.strip("/") + "/"
        if (
            page.file.generated_by
            and page.file.src_uri.startswith(runs_dir)
            and page.file.url != self._index_url
        ):
            # A run page ranks below the runbooks in search: a step id or a command found
            # there should first lead to the procedure.
            page.meta.setdefault("search", {"boost": 0.5})
        if not source or page.file.generated_by:
            return None
        try:
            runbook, plan = self._prefetch.get(source, page.file.src_uri)
        except RunbookNotFound as exc:
            raise PluginError(f"runbook: {exc}") from None
        toml = toml_front_matter_end(markdown.splitlines()) is not None
        if toml and "title" in dict(runbook.front_matter_keys):
            page.meta.setdefault("title", runbook.title)  # mkdocs reads YAML front matter only
        if not runbook.steps:
            return "\n".join(strip_front_matter(markdown.splitlines())) if toml else None
        self._listed[str(Path(source).resolve())] = self._entry(runbook, plan, page.file)
        page.meta.setdefault("search", {"boost": 2})  # the procedure ranks above its runs
        for diagnostic in plan.diagnostics:
            if diagnostic.is_error:
                log.warning(diagnostic.format().splitlines()[0])
        recent = self._runs_by_path.get(str(Path(source).resolve()), [])[: self.config.recent]
        docs = Path(config.docs_dir).resolve()
        shown = _relative(docs / page.file.src_uri, self._root)
        markdown, decoration = runbook_markdown(
            runbook,
            plan,
            f"runbook run {shown}",
            self._stash,
            recent,
            lambda run_id: get_relative_url(self._run_urls.get(run_id, self._index_url), page.url),
        )
        self._decorations[page.file.src_uri] = (
            decoration,
            strip_front_matter(runbook.text.splitlines()),
        )
        return markdown

    def _entry(self, runbook: Runbook, plan: Plan, file: File) -> HomeEntry:
        """The runbook as the home page lists it, its links relative to the home page."""
        home_url = self._home.url if self._home is not None else ""
        path = str(Path(file.abs_src_path or "").resolve())
        runs = self._runs_by_path.get(path, [])
        last = runs[0] if runs else None
        last_url = self._run_urls.get(last.id, self._index_url) if last else ""
        return HomeEntry(
            title=runbook.title or file.src_uri,
            href=get_relative_url(file.url, home_url),
            path=file.src_uri,
            description=runbook.description,
            owner=runbook.owner,
            tags=runbook.tags,
            steps=len(plan.steps()),
            last=last,
            last_href=get_relative_url(last_url, home_url) if last_url else "",
        )

    def _home_html(self, page: Page) -> str:
        """Every runbook of the site: those rendered already, and the others read now."""
        for path, file in self._pages_by_path.items():
            if path in self._listed or file is self._home or not file.abs_src_path:
                continue
            try:
                runbook, plan = read_and_plan(file.abs_src_path, file.src_uri)
            except RunbookNotFound:
                continue
            if runbook.steps:
                self._listed[path] = self._entry(runbook, plan, file)
        runs = get_relative_url(self._index_url, page.url) if self._index_url else None
        return home_html(list(self._listed.values()), runs, len(self._runs))

    @event_priority(50)  # early: other plugins see the page as it is published
    def on_page_content(
        self, html: str, /, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        html = self._stash.restore(html)
        decoration = self._decorations.pop(page.file.src_uri, None)
        if decoration is not None:
            html = decorate(html, *decoration)
        if 'class="mermaid"' in html:  # the author's own diagram: mermaid from this site
            src = get_relative_url("assets/runbook/mermaid.min.js", page.url)
            html = f'<script src="{src}"></script>' + html
        return html

    def on_post_page(self, output: str, /, *, page: Page, config: MkDocsConfig) -> str | None:
        """The journal's verification state in the footer of every page (mkdocs-material's
        copyright area; other themes have none and are left alone)."""
        if not self._verified or not self._index_url:
            return None
        marker = '<div class="md-copyright">'
        at = output.find(marker)
        if at == -1:
            return None
        at += len(marker)
        return output[:at] + self._footer(page) + output[at:]

    def _footer(self, page: Page) -> str:
        bad = sum(not v.ok for v in self._verified.values())
        total = len(self._verified)
        href = esc(get_relative_url(self._index_url, page.url))
        if bad:
            text = f"Journal: {bad} of {total} run(s) do not verify"
        elif self._chain_problems:
            text = f"Journal: the chain over its {total} run(s) is broken"
        else:
            text = f"Journal verified: {total} run(s)"
        head = ""
        if self._head is not None:
            # The head the site was built from: an auditor compares it with a later one
            # (`runbook log verify --since-head HASH`) to catch a journal rolled back.
            head = (
                f' <span class="rb-footer-head">head {self._head.seals}:'
                f"<code>{esc(self._head.hash)}</code></span>"
            )
        state = "bad" if bad or self._chain_problems else "ok"
        return (
            f'<div class="rb-footer-verify rb-footer-verify-{state}">'
            f'<a href="{href}">{text}</a>{head}</div>'
        )

    def on_nav(self, nav: Navigation, /, *, config: MkDocsConfig, files: Files) -> Navigation:
        """The runs index as one entry "Runs", not a section "Runs" holding a page "Runs"."""
        for index, item in enumerate(nav.items):
            if (
                isinstance(item, Section)
                and len(item.children) == 1
                and isinstance(item.children[0], Page)
                and item.children[0].file.url == self._index_url
            ):
                page = item.children[0]
                page.parent = item.parent
                nav.items[index] = page
        return nav

    def on_serve(
        self, server: LiveReloadServer, /, *, config: MkDocsConfig, builder: Callable[..., Any]
    ) -> LiveReloadServer:
        """`mkdocs serve` rebuilds when the journal changes (a run, or its WAL, is written;
        a shared journal's mark is polled)."""
        location = journal_location(self.config.journal, self._root)
        if is_url(location):
            if self._watch is None:
                url = str(location)
                self._watch = JournalPoll(lambda: open_store(url, read_only=True), shown(url))
                self._watch.start()
                server.watch(str(self._watch.stamp_dir))
            return server
        path = Path(location)
        path = (path if path.is_absolute() else self._root / path).resolve()
        if self._watch is None and path.parent.is_dir():
            self._watch = JournalWatch(path)
            server.watch(str(self._watch.stamp_dir))
        return server

    def on_shutdown(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        self._close()

    def on_build_error(self, *, error: Exception) -> None:
        self._close()

    def _close(self) -> None:
        self._prefetch.close()
        if self._outputs is not None:
            self._outputs.cleanup()
            self._outputs = None
        if self._db is not None:
            self._db.close()
            self._db = None


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _has_mermaid(config: MkDocsConfig) -> bool:
    settings = config.mdx_configs.get("pymdownx.superfences", {})
    return any(f.get("name") == "mermaid" for f in settings.get("custom_fences", []))
