"""Runbook pages read and planned in a second process, ahead of mkdocs.

mkdocs renders its pages one after another, on one core. Reading and planning a runbook
(markdown-it, the front matter, the template checks) was the plugin's largest cost: about
3 ms of a runbook page's 45. A worker process does it for the pages in the order mkdocs
renders them, and each page takes its result when it is ready; when it is not (the worker is
still starting, or it is gone), the page reads its runbook itself, as before.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from engine.loader import read_runbook
from engine.model import Runbook
from engine.plan import Plan, plan_runbook

# Below this many pages a second process costs more than it saves (it takes ~0.5 s to start).
MIN_PAGES = 50


def read_and_plan(path: str, display: str) -> tuple[Runbook, Plan]:
    """The runbook at `path` (named `display` in its diagnostics) and its plan."""
    runbook = read_runbook(Path(path), display)
    return runbook, plan_runbook(runbook)


class Prefetch:
    """Runbooks read and planned ahead, by source path, in the order they were given."""

    def __init__(self, pages: Sequence[tuple[str, str]]) -> None:
        """`pages`: (source path, display name) of each page, in the order mkdocs renders."""
        self._futures: dict[str, Future[tuple[Runbook, Plan]]] = {}
        self._pool: ProcessPoolExecutor | None = None
        if len(pages) < MIN_PAGES or not _safe_to_spawn():
            return
        # spawn, not fork: `mkdocs serve` has threads, and a forked child can inherit a lock
        # held by one of them.
        context = multiprocessing.get_context("spawn")
        try:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            for path, display in pages:
                self._futures[path] = self._pool.submit(read_and_plan, path, display)
        except (OSError, RuntimeError):  # no process can be started here: every page reads
            self.close()

    def get(self, path: str, display: str) -> tuple[Runbook, Plan]:
        """The page's runbook and plan: from the worker if it has them, else read here."""
        future = self._futures.pop(path, None)
        if future is None or not future.done():  # not asked for, or not ready: read it here
            return read_and_plan(path, display)
        try:
            return future.result()
        except BrokenProcessPool:
            return read_and_plan(path, display)

    def close(self) -> None:
        """Stop the worker (once the build is over, or has failed)."""
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _safe_to_spawn() -> bool:
    """Whether a spawned worker may start: it imports the main script again, which is safe for
    `mkdocs` (guarded) and `python -m ...` (not imported again), not for any script."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return str(spec.name).endswith("__main__")
    return Path(getattr(main, "__file__", None) or "").name == "mkdocs"
