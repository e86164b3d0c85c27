"""Benchmark: parsing and planning runbooks, against markdown-it-py's bare tokenizing.

Generates a deterministic in-memory corpus of realistic runbooks (about 8 KB each: front matter
with params, nested sections, prose, tables, lists, checklists, annotated and templated shell
steps, non-step fences), then times, best of several alternating passes:

- baseline: `MarkdownIt("commonmark").parse(text)` for every document;
- engine:   `plan_runbook(parse_runbook(text, path))` for every document;
- blocks:   markdown-it-py with its inline rule disabled, as the engine's parser runs it
            (a reference row: how much of the engine's time is markdown-it's own).

Target: engine time <= 1.3x the baseline. Prints a table; always exits 0 (a measurement).

    .venv/bin/python bench/parse.py [--count N] [--reps N]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable

from markdown_it import MarkdownIt

from engine.parse import parse_runbook
from engine.plan import plan_runbook

SEED = 20240611
TARGET = 1.3
PARAMS: dict[str, tuple[str, str, list[str] | None]] = {
    "backup_file": ("Dump to restore", "/backups/latest.dump", None),
    "environment": ("Where to run", "staging", ["staging", "production"]),
    "service": ("Service to operate on", "api", ["api", "worker", "scheduler"]),
    "region": ("Cloud region", "eu-north-1", ["eu-north-1", "eu-west-1", "us-east-1"]),
    "db_host": ("Database host", "db.internal", None),
    "replicas": ("Replica count after scale-up", "3", None),
    "release_tag": ("Release to deploy", "v1.4.2", None),
    "namespace": ("Kubernetes namespace", "ops", None),
}
PROSE = (
    "the service drains connections before the database is restored and every replica reports "
    "healthy again once the load balancer sees the new pods so check the dashboard and alert "
    "channel for errors while the migration runs against the primary cluster in each region"
)
WORDS = PROSE.split()
TOPICS = ["Preparation", "Stop traffic", "Back up", "Restore", "Migrate", "Verify", "Scale up"]
SUBTOPICS = ["Checks", "Commands", "Notes", "Details", "Monitoring", "Cleanup"]
COMMANDS = [
    "kubectl -n {{ namespace }} scale deploy/{{ service }} --replicas=0",
    "pg_dump -h {{ db_host }} -Fc app > {{ backup_file }}",
    "pg_restore -h {{ db_host }} -d app --clean {{ backup_file }}",
    "aws --region {{ region }} s3 cp {{ backup_file }} s3://ops-backups/",
    'helm upgrade app ./chart --set image.tag={{ release_tag }} --set env="$ENV_NAME"',
    "kubectl -n {{ namespace }} rollout status deploy/{{ service }} --timeout=300s",
    "curl -fsS https://status.internal/health | jq '.services[] | select(.ok == false)'",
    'for host in web-1 web-2 web-3; do ssh "$host" systemctl is-active nginx; done',
    "journalctl -u app --since '-10 min' | grep -c ERROR || true",
    'df -h /var/lib/postgresql && du -sh "${PGDATA:-/var/lib/postgresql/data}"',
]


def sentence(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(8, 16))
    pick = rng.randrange(len(words))
    style = rng.choice(["**{}**", "`{}`", "[{}](https://wiki.example.com/ops/{})", "*{}*"])
    words[pick] = style.format(words[pick], words[pick])
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))


def table(rng: random.Random) -> str:
    rows = ["| Host | Role | Port | Notes |", "|------|------|-----:|-------|"]
    for n in range(rng.randint(3, 7)):
        role = rng.choice(["primary", "replica", "api", "worker"])
        rows.append(f"| `node-{n}` | {role} | {rng.choice([5432, 8080, 443])} | {sentence(rng)} |")
    return "\n".join(rows)


def bullets(rng: random.Random, check: bool) -> str:
    mark = "- [ ] " if check else "- "
    out = []
    for _ in range(rng.randint(2, 5)):
        out.append(mark + sentence(rng))
        if rng.random() < 0.3:
            out += ["  " + mark + sentence(rng) for _ in range(rng.randint(1, 2))]
    return "\n".join(out)


def plain_fence(rng: random.Random) -> str:
    kind = rng.choice(["yaml", "json", "text"])
    if kind == "yaml":
        body = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 3"
    elif kind == "json":
        body = '{"service": "api", "replicas": 3, "checks": ["db", "cache"]}'
    else:
        body = "ERROR 2024-06-11T10:00:00Z connection refused (db.internal:5432)\nretrying in 5s"
    return f"```{kind}\n{body}\n```"


class Doc:
    """State for one runbook: declared names, step ids, and captures so far."""

    def __init__(self, rng: random.Random, number: int) -> None:
        self.rng, self.number = rng, number
        self.params = rng.sample(sorted(PARAMS), rng.randint(4, 7))
        undeclared = [p for p in PARAMS if p not in self.params]
        self.commands = [c for c in COMMANDS if not any("{ " + p in c for p in undeclared)]
        self.ids: list[str] = []
        self.captures: list[str] = []
        self.serial = 0

    def front_matter(self) -> str:
        lines = ["---", f"title: 'Runbook {self.number}: restore and redeploy'"]
        lines += ["owner: ops@example.com", "tags: [postgres, kubernetes, on-call]", "params:"]
        for name in self.params:
            description, default, choices = PARAMS[name]
            lines += [f"  {name}:", f"    description: {description}", f"    default: {default}"]
            if choices:
                lines.append(f"    choices: [{', '.join(choices)}]")
        lines += ["env:", "  PAGER: cat", "timeout: 2h", "---"]
        return "\n".join(lines)

    def command(self, handler: bool = False) -> str:
        rng = self.rng
        self.serial += 1
        lines = rng.sample(self.commands, rng.randint(1, 4))
        roll = rng.random()
        if roll < 0.25:
            return "```bash\n" + "\n".join(lines) + "\n```"
        step_id = f"{rng.choice(['stop', 'check', 'restore', 'deploy', 'scale'])}-{self.serial}"
        attrs = [f"id: {step_id}"]
        if self.ids and not handler and rng.random() < 0.5:
            attrs.append(f"needs: [{', '.join(rng.sample(self.ids, min(2, len(self.ids))))}]")
        if rng.random() < 0.4:
            attrs.append(f"timeout: {rng.choice(['30s', '5m', '30m', '1h'])}")
        if rng.random() < 0.2:
            attrs.append(f"confirm: {rng.choice(['danger', 'true', 'false'])}")
        if rng.random() < 0.15:
            attrs += [f"retries: {rng.randint(1, 3)}", "retry_delay: 10s"]
        if "environment" in self.params and rng.random() < 0.15:
            attrs.append("when: \"environment == 'production'\"")
        if not handler and rng.random() < 0.1:
            attrs.append(f"on_failure: {rng.choice(['continue', 'ask', 'rollback'])}")
        if self.captures and rng.random() < 0.4:
            name = rng.choice(self.captures)
            lines.append(f"echo 'previous: {{{{ {name} }}}}'")
            if not handler and rng.random() < 0.5:
                attrs.append(f"env: {{PREVIOUS_VALUE: '{{{{ {name} }}}}'}}")
        if not handler and roll > 0.8:
            name = f"{rng.choice(['version', 'revision', 'pods'])}_{self.serial}"
            attrs.append(f"capture: {name}")
            self.captures.append(name)
            lines.append("git -C /srv/app rev-parse --short HEAD")
        if not handler:
            self.ids.append(step_id)
        return f"```bash {{{', '.join(attrs)}}}\n" + "\n".join(lines) + "\n```"

    def block(self) -> str:
        rng = self.rng
        makers: list[Callable[[], str]] = [
            lambda: paragraph(rng),
            lambda: paragraph(rng),
            lambda: table(rng),
            lambda: bullets(rng, False),
            lambda: bullets(rng, True),
            lambda: plain_fence(rng),
            self.command,
            self.command,
            self.command,
        ]
        return rng.choice(makers)()

    def render(self, size: int) -> str:
        rng = self.rng
        parts = [self.front_matter(), f"# Runbook {self.number}", paragraph(rng)]
        topics = iter(rng.sample(TOPICS, len(TOPICS)) * 4)
        while sum(map(len, parts)) < size:
            parts += [f"## {next(topics)}", paragraph(rng)]
            for _ in range(rng.randint(1, 3)):
                parts += [f"### {rng.choice(SUBTOPICS)}", self.block(), self.block()]
        parts += ["## Rollback", paragraph(rng), self.command(handler=True)]
        parts += ["- [ ] Tell the on-call channel the rollback is done"]
        return "\n\n".join(parts) + "\n"


def make_corpus(count: int) -> list[str]:
    rng = random.Random(SEED)
    return [Doc(rng, n).render(rng.randint(5700, 6900)) for n in range(count)]


def best_of(reps: int, passes: list[Callable[[], None]]) -> list[float]:
    best = [float("inf")] * len(passes)
    for _ in range(reps):
        for n, run in enumerate(passes):
            gc.collect()
            start = time.perf_counter()
            run()
            best[n] = min(best[n], time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="documents (default 1000)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes, best kept (default 3)")
    args = parser.parse_args()
    corpus = make_corpus(args.count)
    paths = [f"bench/{i}.md" for i in range(len(corpus))]
    megabytes = sum(len(t.encode()) for t in corpus) / 1e6
    md = MarkdownIt("commonmark")
    md_blocks = MarkdownIt("commonmark").disable("inline")

    def baseline() -> None:
        for text in corpus:
            md.parse(text)

    def blocks() -> None:
        for text in corpus:
            md_blocks.parse(text)

    def engine() -> None:
        for text, path in zip(corpus, paths, strict=True):
            plan_runbook(parse_runbook(text, path))

    plans = [plan_runbook(parse_runbook(t, p)) for t, p in zip(corpus, paths, strict=True)]
    baseline()  # warm-up
    base_s, engine_s, blocks_s = best_of(args.reps, [baseline, engine, blocks])

    docs = len(corpus)
    rows = [("", "seconds", "ms/doc", "MB/s")]
    for label, seconds in (("baseline", base_s), ("engine", engine_s), ("blocks", blocks_s)):
        per_doc, rate = seconds / docs * 1e3, megabytes / seconds
        rows.append((label, f"{seconds:.3f}", f"{per_doc:.3f}", f"{rate:.2f}"))
    ratio = engine_s / base_s
    print(f"corpus: {docs} docs, {megabytes:.2f} MB, mean {megabytes * 1e6 / docs:,.0f} bytes/doc")
    print(f"timing: best of {args.reps}, baseline and engine alternating, after a warm-up\n")
    for label, *cells in rows:
        print(f"{label:<10}" + "".join(f"{cell:>12}" for cell in cells))
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"\nratio engine/baseline: {ratio:.2f}x  (target <= {TARGET}x)  {verdict}")
    print(f"ratio engine/blocks:   {engine_s / blocks_s:.2f}x  (the engine's own work on top)")

    diagnostics = [d for plan in plans for d in plan.diagnostics]
    errors = [d for d in diagnostics if d.is_error]
    steps = sum(len(plan.runbook.steps) for plan in plans)
    warnings = len(diagnostics) - len(errors)
    print(f"steps parsed: {steps}  errors: {len(errors)}  warnings: {warnings}")
    for diagnostic in (errors or diagnostics)[:5]:
        print("  " + diagnostic.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
