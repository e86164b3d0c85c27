"""The mkdocs plugin (entry point `runbook`): runbook pages as procedures, and run pages.

plugins:
  - search
  - runbook:
      journal: .runbook/journal.db   # default: $RUNBOOK_JOURNAL, else the project's journal
      runs_max: 200                  # runs that get a page of their own; older ones are
                                     # still listed in the index
"""

from __future__ import annotations

import logging
import sqlite3
from importlib import resources
from pathlib import Path, PurePosixPath

from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from engine.journal.location import journal_path
from engine.journal.query import RunSummary, list_runs, run_detail
from engine.loader import RunbookNotFound, read_runbook
from engine.plan import plan_runbook
from engine.publish.page import runbook_markdown
from engine.publish.runs import run_page, runs_index

log = logging.getLogger("mkdocs.plugins.runbook")
# Served under assets/runbook/. mermaid is bundled so step graphs render without a network
# (mkdocs-material uses a `mermaid` already on the page instead of fetching it).
ASSETS = ("runbook.css", "vendor/mermaid.min.js", "runbook.js")


class RunbookConfig(base.Config):
    journal = c.Optional(c.Type(str))
    runs_max = c.Type(int, default=200)
    runs_dir = c.Type(str, default="runs")
    recent = c.Type(int, default=5)


class RunbookPlugin(BasePlugin[RunbookConfig]):
    """Turns runbook pages into readable procedures and adds pages for past runs."""

    def __init__(self) -> None:
        self._runs: list[RunSummary] = []
        self._db: sqlite3.Connection | None = None
        self._pages_by_path: dict[str, str] = {}
        self._run_urls: dict[str, str] = {}  # run id -> its page's URL
        self._index_url = ""
        self._root = Path.cwd()

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        self._root = Path(config.config_file_path or ".").resolve().parent
        # The run page template (runbook-run.html), after the theme's own directories.
        templates = str(resources.files("engine.publish").joinpath("templates"))
        if templates not in config.theme.dirs:
            config.theme.dirs.append(templates)
        for asset in ASSETS:
            target = f"assets/runbook/{PurePosixPath(asset).name}"
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
        self._pages_by_path = {
            str(Path(f.abs_src_path).resolve()): f.src_uri
            for f in files.documentation_pages()
            if f.abs_src_path
        }
        self._open_journal()
        if self._db is None:
            return files
        runs_dir = self.config.runs_dir.strip("/")
        detailed = self._runs[: max(self.config.runs_max, 0)]
        detailed_ids = {r.id for r in detailed}
        index = File.generated(
            config, f"{runs_dir}/index.md", content=runs_index(self._runs, detailed_ids)
        )
        files.append(index)
        self._index_url = index.url
        for summary in detailed:
            detail = run_detail(self._db, summary)
            src_uri = f"{runs_dir}/{summary.id}.md"
            target = self._runbook_page(summary)
            up = "../" * (len(PurePosixPath(src_uri).parts) - 1)
            link = f"{up}{target}" if target else None
            step_link = (lambda step_id, link=link: f"{link}#step-{step_id}") if link else None
            page = run_page(detail, link, step_link)
            # Run pages are reached from the index and the runbook pages, not the navigation.
            generated = File.generated(
                config, src_uri, content=page, inclusion=InclusionLevel.NOT_IN_NAV
            )
            files.append(generated)
            self._run_urls[summary.id] = generated.url
        return files

    def _open_journal(self) -> None:
        path = journal_path(self.config.journal, self._root)
        if not path.is_absolute():
            path = self._root / path
        self._runs, self._db, self._run_urls = [], None, {}
        if not path.exists():
            log.info("no journal at %s: the site has no run pages", path)
            return
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self._runs = list_runs(db)
        except sqlite3.Error as exc:
            raise PluginError(f"runbook: cannot read the journal {path}: {exc}") from None
        self._db = db

    def _runbook_page(self, summary: RunSummary) -> str | None:
        return self._pages_by_path.get(summary.abspath)

    def on_page_markdown(
        self, markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        source = page.file.abs_src_path
        if not source or page.file.generated_by:
            return None
        try:
            runbook = read_runbook(Path(source), page.file.src_uri)
        except RunbookNotFound as exc:
            raise PluginError(f"runbook: {exc}") from None
        if not runbook.steps:
            return None
        plan = plan_runbook(runbook)
        page.meta.setdefault("search", {"boost": 2})  # the procedure ranks above its runs
        for diagnostic in plan.diagnostics:
            if diagnostic.is_error:
                log.warning(diagnostic.format().splitlines()[0])
        abspath = str(Path(source).resolve())
        recent = [r for r in self._runs if r.abspath == abspath][: self.config.recent]
        docs = Path(config.docs_dir).resolve()
        shown = _relative(docs / page.file.src_uri, self._root)
        return runbook_markdown(
            runbook,
            plan,
            f"runbook run {shown}",
            recent,
            lambda run_id: get_relative_url(self._run_urls.get(run_id, self._index_url), page.url),
        )

    def on_post_build(self, *, config: MkDocsConfig) -> None:
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
