"""Benchmark: building the docs site with the `runbook` plugin, against plain mkdocs-material.

Generates into a temporary directory:

- 1,000 runbooks (bench/parse.py's corpus: about 8 KB each, front matter with params, sections,
  prose, tables, checklists, annotated and templated ```bash steps), in 10 folders of 100, plus
  an ordinary home page;
- a journal of 5,000 runs of them, written through the engine's own `JournalWriter` with the
  run record `engine/launch.py` builds (path, abspath, title, sha256 digest, text, operator,
  host, pid) and the events the runner emits (run-started with params, per step step-started
  with the rendered command, output with some ANSI colour, step-finished with exit code and
  duration; run-finished with a status). Runs are skewed towards popular runbooks, spread over
  the last 180 days, 88% succeeded / 8% failed / 2% aborted / 2% interrupted; 10% ran an older
  version of their runbook. To keep generation quick each run records only its first few steps
  (default 5); the journal is written with `PRAGMA synchronous=OFF` (a bench, not a journal).

Then builds the site, each build a fresh `mkdocs build` process (NO_MKDOCS_2_WARNING=1, not
strict) into a fresh site directory, alternating, best of several:

- baseline: the repository's mkdocs.yml (material theme, search, the same markdown extensions)
  WITHOUT the `runbook` plugin, building the same pages;
- plugin:   the same mkdocs.yml with `runbook: {journal: <the generated journal>}`, runs_max at
            its default (200 run pages);
- extra:    the plugin with `runs_max: 1000` (a reference row, no target).

Each build must exit 0; the HTML pages it produced and its warnings are counted; wall time and
the child's CPU time are both recorded (the machine may be shared: CPU time is the cross-check).
Target (issue 5): the plugin adds at most 30% to the build time, wall plugin/baseline <= 1.30.

`--profile` then builds once more in forked processes (fresh state each): the baseline and the
plugin build with each phase timed by page kind (markdown, template + search indexing) and each
plugin hook timed, side by side; then the plugin build under cProfile, its engine functions and
hooks by cumulative time. `--reps 0` skips the timed builds. Always exits 0 (a measurement).

    .venv/bin/python bench/site.py [--count N] [--runs N] [--steps N] [--reps N]
                                   [--no-extra] [--profile] [--top N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import itertools
import logging
import multiprocessing
import os
import pstats
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from engine.events import Event, EventKind, from_data
from engine.journal.store import JournalWriter, connect
from engine.parse import parse_runbook
from engine.plan import plan_runbook

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse import make_corpus  # bench/parse.py: the shared runbook corpus

SEED = 20240612
TARGET = 1.3
REPO = Path(__file__).resolve().parent.parent
AREAS = ["database", "deploy", "kubernetes", "network", "storage"]
AREAS += ["incident", "security", "backups", "observability", "release"]
OPERATORS = ["anna", "bjorn", "chen", "dmitri", "eva", "farid", "greta", "hiro", "ines", "jonas"]
HOSTS = ["ops-bastion-1", "ops-bastion-2", "anna-laptop", "ci-runner-7", "jump.eu-north-1"]
STATUSES = [("succeeded", 88), ("failed", 8), ("aborted", 2), ("interrupted", 2)]
DAY = 86400.0
OUTPUT_LINES = [
    "\x1b[32mINFO\x1b[0m  [{svc}] request id={hex} path=/api/v1/orders/{n} status=200 ms={n}",
    "\x1b[33mWARN\x1b[0m  [{svc}] slow query took {n}ms: select * from orders where id = {n}",
    "deployment.apps/{svc} scaled",
    "pod/{svc}-{hex}   1/1   Running   0   {n}m   10.0.{n}.4   node-{n}",
    'Waiting for deployment "{svc}" rollout to finish: 2 of 6 updated replicas available',
    'pg_restore: processing data for table "public.orders_{n}"',
    "upload: ./app.dump to s3://ops-backups/{svc}/{hex}.dump",
    "Filesystem  Size  Used Avail Use% Mounted on /dev/nvme0n1  500G  {n}G  120G  {n}%",
    '{{"status":"ok","service":"{svc}","checks":{{"db":"ok","cache":"ok"}},"version":"{n}"}}',
    "<script>alert('{svc}')</script> echoed by a misbehaving health check",
]
FAIL_LINE = '\x1b[31mERROR\x1b[0m [{svc}] connection to "db.internal" port 5432 failed: timeout'
TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# -- the corpus and the journal -----------------------------------------------------------------


def stored(
    kind: EventKind,
    data: dict[str, object],
    step: str | None = None,
    attempt: int = 0,
    time: float = 0.0,
) -> Event:
    """An event from its stored form, as a journal holds it."""
    return from_data(str(kind), step, attempt, time, data)


def write_docs(docs: Path, count: int) -> list[Path]:
    """The runbooks, 10 folders of count/10, and an ordinary home page; their paths."""
    paths = []
    for number, text in enumerate(make_corpus(count)):
        path = docs / AREAS[number % len(AREAS)] / f"runbook-{number:04d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    home = "# Runbooks\n\nThe team's runbooks, by area, and the record of every run.\n"
    (docs / "index.md").write_text(home, encoding="utf-8")
    return paths


def output_text(rng: random.Random, failed: bool) -> list[str]:
    """One to three output chunks of a step, 200-2,000 bytes in all."""
    lines, size, goal = [], 0, rng.randint(200, 2000)
    while size < goal:
        line = rng.choice(OUTPUT_LINES).format(
            svc=rng.choice(["api", "worker", "scheduler"]),
            hex=f"{rng.getrandbits(24):06x}",
            n=rng.randint(1, 99),
        )
        lines.append(line)
        size += len(line) + 1
    if failed:
        lines.append(FAIL_LINE.format(svc="api"))
    cut = sorted(rng.sample(range(1, len(lines)), min(2, len(lines) - 1))) if len(lines) > 2 else []
    bounds = [0, *cut, len(lines)]
    return ["\n".join(lines[a:b]) + "\n" for a, b in itertools.pairwise(bounds)]


def render(body: str, values: dict[str, str]) -> str:
    """A step's command as run: parameters filled in, captures as a placeholder."""
    return TEMPLATE.sub(lambda m: values.get(m.group(1), "abc123"), body)


def write_journal(
    journal: Path, root: Path, paths: list[Path], runs: int, steps_per_run: int
) -> tuple[int, int]:
    """`runs` runs through JournalWriter, the record as engine/launch.py builds it; returns
    (runs, events) written."""
    rng = random.Random(SEED)
    books = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        shown = str(path.relative_to(root))
        plan = plan_runbook(parse_runbook(text, shown))
        books.append((path, shown, text, plan))
    # A few runbooks are run often, most rarely (Zipf-like).
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(books))]
    rng.shuffle(weights)
    now = time.time()
    starts = sorted(now - rng.random() * 180 * DAY for _ in range(runs))
    db = connect(journal)
    db.execute("PRAGMA synchronous=OFF")
    events = 0
    pid = 40000
    try:
        for started in starts:
            path, shown, text, plan = rng.choices(books, weights)[0]
            runbook = plan.runbook
            if rng.random() < 0.1:
                text = text.replace("\n## Rollback", "\nAn older note.\n\n## Rollback", 1)
            values = {}
            for param in runbook.params:
                default = param.default or ""
                values[param.name] = rng.choice(param.choices) if param.choices else default
            pid += 1
            record = {
                "path": shown,
                "abspath": str(path.resolve()),
                "title": runbook.title,
                "digest": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "text": text,
                "operator": rng.choice(OPERATORS),
                "host": rng.choice(HOSTS),
                "pid": pid,
                "git_commit": None,
                "git_dirty": None,
                "email": None,
            }
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
            run_id = f"{stamp}-{rng.getrandbits(24):06x}"
            writer = JournalWriter(db, run_id, str(record["abspath"]), str(record["text"]))
            status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
            selected = list(plan.order[:steps_per_run])
            facts = {k: record[k] for k in ("operator", "host", "pid", "git_commit", "email")}
            emitted = [
                stored(
                    EventKind.RUN_STARTED,
                    {
                        "path": shown,
                        "title": runbook.title,
                        "params": values,
                        "steps": selected,
                        "run_id": run_id,
                        "journal": "journal.db",
                        "digest": record["digest"],
                        **facts,
                    },
                    time=started,
                )
            ]
            at = started + rng.uniform(0.5, 5)
            by_id = {s.id: s for s in runbook.steps}
            for number, step_id in enumerate(selected):
                step = by_id[step_id]
                last = number == len(selected) - 1
                fails = last and status == "failed"
                if step.kind == "manual":
                    emitted.append(
                        stored(
                            EventKind.STEP_STARTED,
                            {"kind": "manual", "text": step.body},
                            step_id,
                            1,
                            at,
                        )
                    )
                    at += rng.uniform(5, 120)
                    answer = {"question": "manual", "answer": "done", "note": ""}
                    emitted.append(stored(EventKind.ANSWER, answer, step_id, 1, at))
                    emitted.append(
                        stored(
                            EventKind.STEP_FINISHED, {"status": "done", "note": ""}, step_id, 1, at
                        )
                    )
                    continue
                command = render(step.body, values)
                emitted.append(
                    stored(
                        EventKind.STEP_STARTED,
                        {"kind": "command", "command": command, "edited": False, "cwd": None},
                        step_id,
                        1,
                        at,
                    )
                )
                began = at
                for chunk in output_text(rng, fails):
                    at += rng.uniform(0.3, 20)
                    emitted.append(stored(EventKind.OUTPUT, {"text": chunk}, step_id, 1, at))
                at += rng.uniform(0.1, 5)
                finished = {
                    "captured": {},
                    "status": "failed" if fails else "succeeded",
                    "exit_code": 1 if fails else 0,
                    "signal": None,
                    "duration": round(at - began, 6),
                    "timed_out": False,
                    "interrupted": False,
                }
                emitted.append(stored(EventKind.STEP_FINISHED, finished, step_id, 1, at))
                at += rng.uniform(1, 30)  # the operator reads and confirms the next step
            message = {"failed": "step failed", "aborted": "aborted by the operator"}
            message["interrupted"] = "interrupted"
            finished = {
                "status": status,
                "failed": [selected[-1]] if status == "failed" and selected else [],
                "message": message.get(status, ""),
            }
            emitted.append(stored(EventKind.RUN_FINISHED, finished, time=at))
            for event in emitted:
                writer.emit(event)
            writer.flush()
            events += writer.seq
    finally:
        db.close()
    return runs, events


# -- the builds ---------------------------------------------------------------------------------


def write_config(target: Path, docs: Path, plugin: dict[str, object] | None) -> None:
    """The repository's mkdocs.yml with docs_dir moved, not strict, and the plugins replaced."""
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^docs_dir:.*$", f"docs_dir: {docs}", text)
    text = re.sub(r"(?m)^strict:.*$", "strict: false", text)
    plugins = "plugins:\n  - search\n"
    if plugin is not None:
        plugins += "  - runbook:\n" + "".join(f"      {k}: {v}\n" for k, v in plugin.items())
    text, found = re.subn(r"(?m)^plugins:\n(?:[ \t]+\S.*\n)+", plugins, text)
    if not found:
        text += "\n" + plugins
    if "markdown_extensions:" not in text or "name: mermaid" not in text:
        raise SystemExit(f"{target}: the copied mkdocs.yml lost its markdown extensions")
    target.write_text(text, encoding="utf-8")


def count_pages(site: Path) -> int:
    return sum(1 for _ in site.rglob("index.html"))


def build(config: Path, site: Path) -> tuple[float, float, int, list[str], str]:
    """One `mkdocs build` in a fresh process: (wall seconds, its CPU seconds, HTML pages, its
    warnings, the problem if it failed or "")."""
    if site.exists():
        shutil.rmtree(site)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(config), "-d", str(site)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=config.parent)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    pages = count_pages(site) if site.exists() else 0
    log = (done.stderr + done.stdout).splitlines()
    warnings = [line for line in log if line.startswith("WARNING")]
    problem = ""
    if done.returncode != 0:
        problem = f"exit {done.returncode}: " + " | ".join(log[-3:])
    shutil.rmtree(site, ignore_errors=True)
    return seconds, cpu, pages, warnings, problem


def page_kind(page: object) -> str:
    file = page.file  # type: ignore[attr-defined]
    if file.generated_by:
        return "run pages"
    return "home page" if file.src_uri == "index.md" else "runbook pages"


def timed_build(config: Path, site: Path, profiled: bool = False) -> dict:  # type: ignore[type-arg]
    """One build in this process, timing each phase by page kind and each plugin's hooks;
    `profiled`: under cProfile, with the engine's functions and the plugins' hooks as rows."""
    from mkdocs.commands import build as mkdocs_build
    from mkdocs.config import load_config

    os.environ["NO_MKDOCS_2_WARNING"] = "1"
    seconds: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def add(key: str, start: float) -> None:
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start

    def per_page(phase: str, original: Callable[..., None]) -> Callable[..., None]:
        def wrapper(page, *args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return original(page, *args, **kwargs)
            finally:
                add(f"{phase}, {page_kind(page)}", start)
                if phase.startswith("read"):
                    key = f"HTML chars, {page_kind(page)}"
                    sizes[key] = sizes.get(key, 0) + len(page.content or "")

        return wrapper

    def per_hook(label: str, method: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                add(label, start)

        return wrapper

    originals = (mkdocs_build._populate_page, mkdocs_build._build_page)
    mkdocs_build._populate_page = per_page("read+markdown", originals[0])
    mkdocs_build._build_page = per_page("template+context", originals[1])
    cwd = Path.cwd()
    os.chdir(config.parent)
    logger = logging.getLogger("mkdocs")
    silence = logging.NullHandler()  # the subprocess builds count the warnings
    logger.addHandler(silence)
    quiet, logger.propagate = logger.propagate, False
    try:
        loaded = load_config(str(config), site_dir=str(site))
        plugins = loaded.plugins
        for event, methods in plugins.events.items():
            for index, method in enumerate(methods):
                name = plugins._event_origins.get(method, "?")
                wrapped = per_hook(f"hook {name}.on_{event}", method)
                plugins._event_origins[wrapped] = name
                methods[index] = wrapped
        profiler = cProfile.Profile() if profiled else None
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        mkdocs_build.build(loaded)
        if profiler:
            profiler.disable()
        seconds["total"] = time.perf_counter() - start
    finally:
        mkdocs_build._populate_page, mkdocs_build._build_page = originals
        logger.propagate = quiet
        logger.removeHandler(silence)
        os.chdir(cwd)
        shutil.rmtree(site, ignore_errors=True)
    return {"seconds": seconds, "sizes": sizes, "rows": profile_rows(profiler) if profiler else []}


def profile_rows(profiler: cProfile.Profile) -> list[tuple[str, int, float, float]]:
    """(function, calls, own s, cumulative s) of the engine and of every plugin hook."""
    rows = []
    stats = pstats.Stats(profiler)
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = Path(filename)
        hook = name.startswith("on_") and where.name != "plugins.py"  # not mkdocs' dispatch
        if where.parent.name in ("engine", "publish", "journal") or hook:
            label = f"{where.parent.name}/{where.name}:{line}({name})"
            rows.append((label, calls, own, cumulative))
    return sorted(rows, key=lambda row: -row[3])


def in_child(function: Callable[..., dict], *args: object) -> dict:  # type: ignore[type-arg]
    """Run in a fresh (forked) process, so one build's garbage does not slow the next."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def profile(configs: dict[str, Path], root: Path, top: int) -> None:
    """Builds in forked processes: the phases of the baseline and of the plugin build side by
    side (no profiler), then the plugin build under cProfile."""
    base = in_child(timed_build, configs["baseline"], root / "site-phases")
    plug = in_child(timed_build, configs["plugin"], root / "site-phases")
    print("\nphases: one build each in a forked process, no profiler; hooks are inside the phases")
    print(f"{'':<40}{'baseline s':>12}{'plugin s':>12}{'delta s':>10}")
    keys = sorted(set(base["seconds"]) | set(plug["seconds"]), key=lambda k: (k == "total", k))
    for key in keys:
        b, p = base["seconds"].get(key, 0.0), plug["seconds"].get(key, 0.0)
        if max(b, p) >= 0.05 or key == "total":
            print(f"{key[:40]:<40}{b:>12.2f}{p:>12.2f}{p - b:>+10.2f}")
    for key in sorted(set(base["sizes"]) | set(plug["sizes"])):
        b, p = base["sizes"].get(key, 0), plug["sizes"].get(key, 0)
        print(f"{key[:40]:<40}{b / 1e6:>11.1f}M{p / 1e6:>11.1f}M{(p - b) / 1e6:>+9.1f}M")

    profiled = in_child(timed_build, configs["plugin"], root / "site-profile", True)
    wall = profiled["seconds"]["total"]
    print(f"\nprofile: the plugin build under cProfile, {wall:.1f} s (times inflated by it)")
    print(f"{'function':<60}{'calls':>8}{'own s':>9}{'cum s':>9}")
    for label, calls, own, cumulative in profiled["rows"][:top]:
        print(f"{label[-60:]:<60}{calls:>8}{own:>9.3f}{cumulative:>9.3f}")


def time_builds(configs: list[tuple[str, Path]], root: Path, reps: int) -> None:
    """Each configuration built `reps` times (the extra row once), alternating; the table."""
    best = {label: float("inf") for label, _ in configs}
    best_cpu = dict(best)
    pages = {label: 0 for label, _ in configs}
    problems: dict[str, str] = {}
    warnings: dict[str, list[str]] = {}
    load = os.getloadavg()[0]
    for rep in range(reps):
        for label, config in configs:
            if label == "runs_max=1000" and rep > 0:
                continue  # a reference row: once is enough
            seconds, cpu, built, warned, problem = build(config, root / f"site-{rep}")
            warnings[label] = warned
            print(
                f"  build {rep + 1}/{reps} {label:<14}{seconds:>8.2f} s wall{cpu:>8.2f} s CPU"
                f" {built:>6} pages {len(warned):>5} warnings  (load {os.getloadavg()[0]:.1f})"
            )
            if problem:
                problems[label] = problem
                continue
            best[label] = min(best[label], seconds)
            best_cpu[label] = min(best_cpu[label], cpu)
            pages[label] = built

    print(
        f"\ntiming: best of {reps} (runs_max=1000: 1), each a fresh `mkdocs build` process into"
        " a fresh site dir, kinds alternating; 1-minute load average"
        f" {load:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs\n"
    )
    header = ("wall s", "CPU s", "pages", "ms/page", "warnings", "wall ratio", "CPU ratio")
    print(f"{'':<14}" + "".join(f"{cell:>11}" for cell in header))
    base, base_cpu = best["baseline"], best_cpu["baseline"]
    for label, _ in configs:
        if label in problems:
            print(f"{label:<14}{'FAILED':>11}  {problems[label][:200]}")
            continue
        seconds, cpu, built = best[label], best_cpu[label], pages[label]
        cells = (
            f"{seconds:.2f}",
            f"{cpu:.2f}",
            str(built),
            f"{seconds / max(built, 1) * 1e3:.1f}",
            str(len(warnings.get(label, []))),
            f"{seconds / base:.2f}x" if base < float("inf") else "-",
            f"{cpu / base_cpu:.2f}x" if base_cpu < float("inf") else "-",
        )
        print(f"{label:<14}" + "".join(f"{cell:>11}" for cell in cells))
    if "baseline" in problems or "plugin" in problems:
        print("\nratio plugin/baseline: not measured (a build failed)  FAIL")
    else:
        ratio = best["plugin"] / base
        verdict = "PASS" if ratio <= TARGET else "FAIL"
        print(f"\nratio plugin/baseline: {ratio:.3f}x  (target <= {TARGET}x)  {verdict}")
        cpu_ratio = best_cpu["plugin"] / base_cpu
        print(f"CPU-time ratio:        {cpu_ratio:.3f}x  (cross-check: less sensitive to load)")
        extra = pages["plugin"] - pages["baseline"]
        print(f"the plugin build has {extra} more pages: the runs index and the run pages")
    for label, warned in warnings.items():
        if warned:
            print(f"{label} warnings, e.g.: {warned[0][:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="runbooks (default 1000)")
    parser.add_argument("--runs", type=int, default=5000, help="runs in the journal (5000)")
    parser.add_argument("--steps", type=int, default=5, help="steps recorded per run (5)")
    parser.add_argument(
        "--reps", type=int, default=2, help="builds of each kind, best kept (2; 0: none)"
    )
    parser.add_argument("--no-extra", action="store_true", help="skip the runs_max 1000 row")
    parser.add_argument("--profile", action="store_true", help="also profile a plugin build")
    parser.add_argument("--top", type=int, default=30, help="profile rows shown (30)")
    parser.add_argument("--keep", type=Path, help="generate here and keep it (default: a tmp dir)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  (progress lines)

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        root = args.keep.resolve()
    else:
        root = Path(tempfile.mkdtemp(prefix="bench-site-")).resolve()
    try:
        docs = root / "docs"
        shutil.rmtree(docs, ignore_errors=True)
        start = time.perf_counter()
        paths = write_docs(docs, args.count)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        docs_s = time.perf_counter() - start
        journal = root / "journal.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{journal}{suffix}").unlink(missing_ok=True)
        start = time.perf_counter()
        runs, events = write_journal(journal, root, paths, args.runs, args.steps)
        journal_s = time.perf_counter() - start
        journal_mb = journal.stat().st_size / 1e6
        print(
            f"corpus:  {len(paths)} runbooks + a home page, {megabytes:.2f} MB,"
            f" mean {megabytes * 1e6 / max(len(paths), 1):,.0f} bytes/runbook ({docs_s:.1f} s)"
        )
        print(
            f"journal: {runs} runs, {events} events, {args.steps} steps recorded per run"
            f" (fewer than a real run: generation speed), {journal_mb:.1f} MB ({journal_s:.1f} s)"
        )

        configs: list[tuple[str, Path]] = []
        for label, plugin in (
            ("baseline", None),
            ("plugin", {"journal": str(journal)}),
            ("runs_max=1000", {"journal": str(journal), "runs_max": 1000}),
        ):
            if label == "runs_max=1000" and args.no_extra:
                continue
            config = root / f"mkdocs-{label.replace('=', '')}.yml"
            write_config(config, docs, plugin)
            configs.append((label, config))

        if args.reps > 0:
            time_builds(configs, root, args.reps)

        if args.profile:
            try:
                profile(dict(configs), root, args.top)
            except Exception as exc:  # a measurement: report, never fail
                print(f"\nprofile: failed: {type(exc).__name__}: {exc}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
