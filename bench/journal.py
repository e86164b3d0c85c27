"""Benchmark: the journal at scale: `runbook log list`, `log search` and `log verify --all`.

Builds a synthetic journal (default 50,000 runs of 20 steps) with the engine's own schema
(`engine.journal.store.connect`), written through direct SQL in big transactions: the rows are
exactly those `JournalWriter` writes (canonical JSON, chained sha256 via `event_hash`, one FTS
`search` row per command and per output chunk, runs in start order), so `log verify` passes.
Before building, one synthetic run is also written through the real `JournalWriter` and its
rows compared with the fast path's. During the build only, the rollback journal and fsync are
off; the file is left in WAL mode, as the engine keeps it. Content: ~50 runbooks (each run
stores its text, as the engine does), ~10 operators, 90% succeeded / 8% failed / 1% aborted /
1% interrupted, start times spread over the last 365 days, per step a rendered command, one or
two log-like output chunks of 200-2,000 bytes, an answer for some steps; one rare word
("xylophonequux") planted in 3 runs' outputs.

Then times, median (and best) of several passes, each CLI figure a real `runbook` process
(wall time, stdout and stderr to pipes), each in-process figure on a fresh `connect()`:

- start-up:  `runbook --help` (interpreter start and imports, no journal work);
- list:      `runbook log list --status failed --since 30d`, and `query.list_runs(...)`;
- search:    `runbook log search xylophonequux`, and `query.search(db, "xylophonequux")`;
             also a common word in-process (no target: what a broad search costs);
- verify:    `runbook log verify --all`, and `verify.verify_all(db)`, as events per second;
             also a fetch-only pass (the same SELECTs, no hashing) to split SQLite from Python.

Targets (issue 4): list < 100 ms, rare-word search < 300 ms, verify >= 100,000 events/s. Each
row says whether its figure includes process start-up. The query plans of the list and search
statements (captured as the engine runs them) are printed too. Timings run with the file in
the OS page cache (it was just built or read). Prints a table; always exits 0 (a measurement).

With `--postgres URL` (a database of its own; the bench empties it), the same rows are loaded
there with COPY (the schema made by the engine's `connect`, the GIN index built after the rows,
then VACUUM ANALYZE; reused when it holds this build), and a second table gives each CLI
command on both backends: median ms, the ratio to `runbook --help` measured in the same
passes, PASS/FAIL against the targets (issue 15: the same as SQLite's). Then `verify_all` on
PostgreSQL in-process, one query per run (as it was) against batched reads, and the plans
(EXPLAIN ANALYZE) of the list and search statements as PostgresStore runs them.
`--backends-only` skips the SQLite-only table.

    .venv/bin/python bench/journal.py [--runs N] [--keep PATH] [--reps N] [--verify-reps N]
        [--postgres URL] [--backends-only]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine_cli import compile_engine, runbook_command  # bench/engine_cli.py

from engine.events import from_data, to_data
from engine.journal import query
from engine.journal.chain import GENESIS, SEAL, Head, event_hash, sealing, start_fields
from engine.journal.store import JournalWriter, canonical, connect, write_head
from engine.journal.verify import verify_all

SEED = 20240611
STEPS = 20
RARE_WORD = "xylophonequux"
COMMON_WORD = "connection"
LIST_TARGET_MS = 100.0
SEARCH_TARGET_MS = 300.0
VERIFY_TARGET = 100_000.0
BATCH_RUNS = 500
DAY = 86400.0

# -- synthetic content --------------------------------------------------------------------------

PARAM_CHOICES: dict[str, list[str]] = {
    "environment": ["staging", "production"],
    "service": ["api", "worker", "scheduler", "billing", "search", "gateway"],
    "namespace": ["ops", "payments", "platform", "data"],
    "region": ["eu-north-1", "eu-west-1", "us-east-1"],
    "db_host": ["db-primary.internal", "db-replica-1.internal", "pg-orders.internal"],
    "release": ["v1.4.2", "v1.4.3", "v1.5.0", "v1.5.1", "v2.0.0-rc1"],
    "replicas": ["2", "3", "4", "6"],
    "backup_file": ["/backups/latest.dump", "/backups/orders-nightly.dump", "/srv/dumps/app.dump"],
}
COMMANDS = [
    "kubectl -n {namespace} scale deploy/{service} --replicas=0",
    "kubectl -n {namespace} scale deploy/{service} --replicas={replicas}",
    "kubectl -n {namespace} rollout status deploy/{service} --timeout=300s",
    "kubectl -n {namespace} get pods -l app={service} -o wide",
    "kubectl -n {namespace} logs deploy/{service} --since=10m | tail -n 50",
    "kubectl -n {namespace} rollout restart deploy/{service}",
    "pg_dump -h {db_host} -Fc app > {backup_file}",
    "pg_restore -h {db_host} -d app --clean --if-exists {backup_file}",
    'psql -h {db_host} -d app -c "select count(*) from orders where created_at > now() - interval '
    "'1 hour'\"",
    "psql -h {db_host} -d app -c 'vacuum (verbose, analyze) orders'",
    "aws --region {region} s3 cp {backup_file} s3://ops-backups/{environment}/",
    "aws --region {region} rds describe-db-instances --query 'DBInstances[].DBInstanceStatus'",
    "aws --region {region} elbv2 describe-target-health --target-group-arn $TG_ARN",
    "helm upgrade {service} ./chart --set image.tag={release} --set env={environment} --wait",
    "helm -n {namespace} history {service} --max 5",
    "helm -n {namespace} rollback {service}",
    "curl -fsS https://{service}.{environment}.internal/healthz",
    "curl -fsS https://status.internal/api/services | jq '.services[] | select(.ok == false)'",
    "for h in web-1 web-2 web-3; do ssh $h systemctl is-active nginx; done",
    "journalctl -u {service} --since '-10 min' --no-pager | grep -c ERROR || true",
    "df -h /var/lib/postgresql && du -sh /var/lib/postgresql/data",
    "systemctl restart {service} && systemctl status {service} --no-pager",
    "git -C /srv/{service} fetch --tags && git -C /srv/{service} checkout {release}",
    "ansible-playbook -i inventories/{environment} site.yml --limit {service} --diff",
    "terraform -chdir=infra/{environment} plan -out=tfplan -var region={region}",
    "terraform -chdir=infra/{environment} apply tfplan",
    "redis-cli -h cache.{environment}.internal info replication",
    "docker image prune -af --filter until=168h",
    "openssl s_client -connect {service}.{environment}.internal:443 </dev/null | openssl x509 "
    "-noout -dates",
    "rsync -a --delete /srv/{service}/releases/{release}/ /srv/{service}/current/",
    "nginx -t && systemctl reload nginx",
    "sleep 30 && curl -fsS https://{service}.{environment}.internal/readyz",
]
MANUAL = [
    "Announce the maintenance window in #ops-{environment}",
    "Check the {service} dashboard: error rate below 1% for 10 minutes",
    "Confirm with the on-call engineer that alerts for {service} are silenced",
    "Tell the on-call channel that {service} is back",
]
AREAS = ["database", "deploy", "kubernetes", "network", "storage", "incident", "security"]
VERBS = ["restore", "rotate", "failover", "scale", "upgrade", "drain", "rebuild", "audit"]
OBJECTS = ["orders-db", "api", "cache", "certificates", "ingress", "worker-pool", "backups"]
OPERATORS = ["anna", "bjorn", "chen", "dmitri", "eva", "farid", "greta", "hiro", "ines", "jonas"]
HOSTS = ["ops-bastion-1", "ops-bastion-2", "anna-laptop", "ci-runner-7", "jump.eu-north-1"]
PROSE_TEXT = (
    "drain connections before the restore and wait until every replica reports healthy again "
    "then check the dashboard and the alert channel for errors while the migration runs"
)
PROSE = PROSE_TEXT.split(" ")
LINE_TEMPLATES = [
    "INFO  [{svc}] request id={hex} method=GET path=/api/v1/{res}/{n} status=200 latency_ms={ms}",
    "INFO  [{svc}] request id={hex} method=POST path=/api/v1/{res} status=201 latency_ms={ms}",
    "WARN  [{svc}] slow query took {ms}ms: select * from {res} where id = {n}",
    "ERROR [{svc}] connection refused ({host}:5432), retrying in {small}s",
    "deployment.apps/{svc} scaled",
    "pod/{svc}-{hex5}-{hex5b}   1/1   Running   0   {small}m   10.{a}.{b}.{c}   node-{small}",
    'Waiting for deployment "{svc}" rollout to finish: {small} of 6 updated replicas available',
    'pg_restore: processing data for table "public.{res}"',
    'pg_restore: creating INDEX "public.{res}_{hex5}_idx"',
    "upload: ./{res}.dump to s3://ops-backups/{res}/{hex}.dump",
    'Release "{svc}" has been upgraded. Happy Helming! REVISION: {n}',
    "{host} | CHANGED => changed=true rc=0 stdout={res} synced",
    "  # {res}.{svc}[{small}] will be updated in-place, id={hex}",
    "Filesystem  Size  Used Avail Use% Mounted on /dev/nvme{small}n1  500G  {n}G  {m}G  {small}%",
    "{ms} ERROR rows in the last 10 minutes for {svc} on {host}",
    "HTTP/2 200 content-type: application/json x-request-id: {hex}",
    '{{"status":"ok","service":"{svc}","checks":{{"db":"ok","cache":"ok"}},"version":"{n}"}}',
    "notAfter=Mar {small} 12:00:00 2026 GMT subject=CN={svc}.internal serial={hex}",
    "sent {n} bytes  received {m} bytes  {ms}.00 bytes/sec total size is {n}{m}",
]
FAIL_LINES = [
    'ERROR [{svc}] connection to server at "{host}" (10.0.3.4), port 5432 failed: timeout',
    'Error from server (NotFound): deployments.apps "{svc}" not found',
    'error: deployment "{svc}" exceeded its progress deadline',
    "curl: (22) The requested URL returned error: 503",
    "fatal: unable to access 'https://git.internal/{svc}.git/': Could not resolve host",
]
RESOURCES = ["orders", "customers", "invoices", "payments", "sessions", "events", "products"]


@dataclass(frozen=True, slots=True)
class Runbook:
    path: str
    title: str
    text: str
    digest: str
    steps: tuple[tuple[str, str, str], ...]  # (id, kind, template)


def make_runbooks(rng: random.Random, count: int = 50) -> list[Runbook]:
    books = []
    seen: set[str] = set()
    while len(books) < count:
        area, verb, obj = rng.choice(AREAS), rng.choice(VERBS), rng.choice(OBJECTS)
        path = f"runbooks/{area}/{verb}-{obj}.md"
        if path in seen:
            continue
        seen.add(path)
        title = f"{verb.capitalize()} {obj.replace('-', ' ')}"
        steps, parts = [], ["---", f"title: {title}", "owner: ops@example.com", "params:"]
        for name, choices in PARAM_CHOICES.items():
            parts.append(f"  {name}: {{default: {choices[0]}, choices: [{', '.join(choices)}]}}")
        parts += ["timeout: 30m", "---", "", f"# {title}", "", " ".join(rng.sample(PROSE, 14))]
        for n in range(STEPS):
            manual = n in (0, STEPS - 1) or rng.random() < 0.05
            template = rng.choice(MANUAL if manual else COMMANDS)
            step_id = f"{template.split()[0].strip('-').lower()}-{n + 1}"
            steps.append((step_id, "manual" if manual else "command", template))
            jinja = template.replace("{", "{{ ").replace("}", " }}")
            parts += ["", f"## Step {n + 1}", "", " ".join(rng.sample(PROSE, 12)) + ".", ""]
            if manual:
                parts.append(f"- [ ] {jinja}")
            else:
                parts += [f"```bash {{id: {step_id}}}", jinja, "```"]
        text = "\n".join(parts) + "\n"
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        books.append(Runbook(path, title, text, digest, tuple(steps)))
    return books


def make_line_pool(rng: random.Random, size: int = 40_000) -> list[str]:
    def fill(template: str) -> str:
        return template.format(
            svc=rng.choice(PARAM_CHOICES["service"]),
            res=rng.choice(RESOURCES),
            host=rng.choice(PARAM_CHOICES["db_host"]),
            hex=f"{rng.getrandbits(48):012x}",
            hex5=f"{rng.getrandbits(20):05x}",
            hex5b=f"{rng.getrandbits(20):05x}",
            n=rng.randint(1, 99999),
            m=rng.randint(1, 999),
            ms=rng.randint(1, 4000),
            small=rng.randint(1, 9),
            a=rng.randint(0, 255),
            b=rng.randint(0, 255),
            c=rng.randint(0, 255),
        )

    return [fill(rng.choice(LINE_TEMPLATES)) for _ in range(size)]


class Generator:
    """Deterministic runs: each a runs-table record and the events the engine would emit."""

    def __init__(self, seed: int, runs: int, now: float) -> None:
        self.rng = rng = random.Random(seed)
        self.books = make_runbooks(rng)
        self.pool = make_line_pool(rng)
        self.fail_pool = [
            t.format(svc=s, host=h)
            for t in FAIL_LINES
            for s in PARAM_CHOICES["service"]
            for h in PARAM_CHOICES["db_host"]
        ]
        self.book_weights = [1.0 / (n + 1) ** 0.7 for n in range(len(self.books))]
        starts = sorted(now - rng.random() * 365 * DAY for _ in range(runs))
        self.starts = [min(s, now - 3 * 3600) for s in starts]  # every run over before now
        self.planted = set(rng.sample(range(1, runs), min(3, runs - 1)))  # not the checked run 0

    def output(self, at: float, size: int, failing: bool = False) -> str:
        rng, pool = self.rng, self.pool
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at))
        start = rng.randrange(len(pool))
        lines, total, i = [], 0, start
        while total < size:
            line = f"{stamp}.{rng.randrange(1000):03d}Z {pool[i % len(pool)]}"
            lines.append(line)
            total += len(line) + 1
            i += 1
        if failing:
            lines.append(rng.choice(self.fail_pool))
        return "\n".join(lines) + "\n"

    def run(self, index: int) -> tuple[str, dict[str, object], list[tuple]]:  # type: ignore[type-arg]
        rng = self.rng
        started = self.starts[index] + rng.random()
        run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{index:06x}"
        book = rng.choices(self.books, self.book_weights)[0]
        operator = rng.choice(OPERATORS)
        host = rng.choice(HOSTS)
        values = {name: rng.choice(choices) for name, choices in PARAM_CHOICES.items()}
        facts = {
            "operator": operator,
            "host": host,
            "pid": rng.randint(1000, 400000),
            "git_commit": f"{rng.getrandbits(160):040x}",
            "git_dirty": rng.random() < 0.1,
            "email": f"{operator}@example.com",
        }
        record = {
            "path": book.path,
            "abspath": f"/srv/ops/{book.path}",
            "title": book.title,
            "digest": book.digest,
            "text": book.text,
            **facts,
        }
        roll = rng.random()
        outcome = (
            "succeeded"
            if roll < 0.90
            else "failed"
            if roll < 0.98
            else "aborted"
            if roll < 0.99
            else "interrupted"
        )
        commands = [n for n, step in enumerate(book.steps) if step[1] == "command"]
        stop = rng.choice(commands) if outcome != "succeeded" else STEPS
        interactive = outcome == "aborted" or rng.random() < 0.1  # only an operator aborts
        events: list[tuple] = []  # type: ignore[type-arg]
        info = {"run_id": run_id, "journal": "/srv/ops/.runbook/journal.db"}
        info.update(digest=book.digest, **facts)
        run_data = {
            "path": book.path,
            "title": book.title,
            "params": values,
            "steps": [s[0] for s in book.steps],
            **info,
        }
        events.append(("run-started", None, 0, started, run_data))
        at = started + 0.05 + rng.random() * 0.2
        failed: list[str] = []
        message = ""
        plant = index in self.planted  # into this run's first output chunk
        for n, (step_id, kind, template) in enumerate(book.steps):
            if n > stop:
                break
            rendered = template.format_map(values)
            if kind == "manual":
                events.append(
                    ("step-started", step_id, 1, at, {"kind": "manual", "text": rendered})
                )
                at += 2 + rng.random() * 60
                note = "" if interactive else "--yes"
                done = {"question": "manual", "answer": "done", "note": note}
                events.append(("answer", step_id, 0, at, done))
                events.append(("step-finished", step_id, 1, at, {"status": "done", "note": note}))
                at += 0.01
                continue
            if interactive:
                choice = "abort" if (n == stop and outcome == "aborted") else "run"
                events.append(("answer", step_id, 0, at, {"question": "confirm", "answer": choice}))
                at += 0.5 + rng.random() * 5
                if choice == "abort":
                    message = f"aborted before step '{step_id}'"
                    break
            start_data = {
                "kind": "command",
                "command": rendered,
                "edited": False,
                "cwd": None,
                "interactive": False,
            }
            events.append(("step-started", step_id, 1, at, start_data))
            duration = rng.expovariate(1 / 8.0) + 0.05
            failing = n == stop and outcome == "failed"
            chunks = 2 if rng.random() < 0.2 else 1
            for c in range(chunks):
                size = int(rng.triangular(200, 2000, 500))
                text = self.output(at + 0.01, size, failing and c == chunks - 1)
                if plant:
                    plant = False
                    text += f"WARN  [audit] unexpected token {RARE_WORD} in response body\n"
                chunk_at = at + 0.01 + duration * 0.6 * c
                events.append(("output", step_id, 1, chunk_at, {"text": text}))
            interrupted = n == stop and outcome == "interrupted"
            status = "failed" if failing else "interrupted" if interrupted else "succeeded"
            finish = {
                "captured": {},
                "status": status,
                "exit_code": None if interrupted else rng.choice([1, 2, 127]) if failing else 0,
                "signal": 2 if interrupted else None,
                "duration": round(duration, 6),
                "timed_out": False,
                "interrupted": interrupted,
            }
            at += duration
            events.append(("step-finished", step_id, 1, at, finish))
            at += 0.01 + rng.random() * 0.1
            if failing:
                failed.append(step_id)
                message = f"step '{step_id}' failed"
                break
            if interrupted:
                failed.append(step_id)
                message = "interrupted"
                break
        done = {"status": outcome, "failed": failed, "message": message}
        events.append(("run-finished", None, 0, at, done))
        return run_id, record, events


# -- writing ------------------------------------------------------------------------------------


def encode(
    run_id: str,
    record: dict[str, object],
    events: list[tuple],  # type: ignore[type-arg]
    event_rows: list[tuple],  # type: ignore[type-arg]
    search_rows: list[tuple],  # type: ignore[type-arg]
    head: list[Head],
) -> tuple:  # type: ignore[type-arg]
    """Append the run's events and search rows as JournalWriter writes them; its runs row.
    The run starts at head[0] and, when it finished, is sealed: head[0] moves on."""
    prev = GENESIS
    seq = 0
    events = list(events)
    kind, step, attempt, at, data = events[0]
    events[0] = (kind, step, attempt, at, {**data, **start_fields(head[0], None)})
    if events[-1][0] == "run-finished":
        events.append((SEAL, None, 0, events[-1][3], {}))
    for kind, step, attempt, at, data in events:
        if kind == SEAL:
            data = to_data(sealing(head[0], seq, at)).data
        seq += 1
        payload = canonical(data)
        digest = event_hash(prev, run_id, seq, kind, step, attempt, at, payload)
        event_rows.append((run_id, seq, kind, step, attempt, at, payload, prev, digest))
        if kind == "output":
            search_rows.append((data["text"], run_id, step, "output"))
        elif kind == "step-started":
            text = str(data.get("command") or data.get("text") or "")
            if text:
                search_rows.append((text, run_id, step, "command"))
        if kind == SEAL:
            head[0] = Head(head[0].seals + 1, digest)
        prev = digest
    first, last = events[0], events[-1 if events[-1][0] != SEAL else -2]
    return (
        run_id,
        record["path"],
        record["abspath"],
        record["title"],
        record["digest"],
        record.get("git_commit"),
        record.get("git_dirty"),
        record["operator"],
        record.get("email"),
        record["host"],
        record["pid"],
        first[3],
        last[3],
        str(last[4]["status"]),
        canonical(first[4].get("params") or {}),
        seq,
        prev,
    )


INSERT_RUN = (
    "INSERT INTO runs (id, path, abspath, title, digest, git_commit, git_dirty, operator,"
    " email, host, pid, started, ended, status, params, events, last_hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_TEXT = "INSERT OR IGNORE INTO runbook_texts (digest, text) VALUES (?, ?)"
INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, kind, step, attempt, time, data, prev, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_SEARCH = "INSERT INTO search (text, run_id, step, field) VALUES (?, ?, ?, ?)"


def dump(db: sqlite3.Connection) -> list[list[tuple]]:  # type: ignore[type-arg]
    return [
        db.execute("SELECT * FROM runs ORDER BY id").fetchall(),
        db.execute("SELECT * FROM events ORDER BY run_id, seq").fetchall(),
        db.execute("SELECT text, run_id, step, field FROM search ORDER BY rowid").fetchall(),
    ]


def fidelity_check(generator: Generator) -> str:
    """One run written through JournalWriter and through the fast path: the same rows?"""
    run_id, record, events = generator.run(0)
    with tempfile.TemporaryDirectory(prefix="bench-journal-check-") as tmp:
        real = connect(Path(tmp, "writer.db"))
        writer = JournalWriter(real, run_id, str(record["abspath"]), str(record["text"]))
        for kind, step, attempt, at, data in events:
            writer.emit(from_data(kind, step, attempt, at, data))
            if kind == "output":
                writer.flush()  # a quiet moment: the chunk is committed as its own event
                writer.drain()
        writer.close()
        fast = connect(Path(tmp, "fast.db"))
        event_rows: list[tuple] = []  # type: ignore[type-arg]
        search_rows: list[tuple] = []  # type: ignore[type-arg]
        run_row = encode(run_id, record, events, event_rows, search_rows, [Head(0, GENESIS)])
        fast.execute(INSERT_TEXT, (record["digest"], record["text"]))
        fast.execute(INSERT_RUN, run_row)
        fast.executemany(INSERT_EVENT, event_rows)
        fast.executemany(INSERT_SEARCH, search_rows)
        same = dump(real) == dump(fast)
        real.close()
        fast.close()
    return "rows identical to JournalWriter's" if same else "ROWS DIFFER from JournalWriter's"


def build(path: Path, runs: int, seed: int) -> None:
    now = time.time()
    start = time.perf_counter()
    generator = Generator(seed, runs, now)
    print(f"fidelity check (run 0 via JournalWriter): {fidelity_check(generator)}")
    db = connect(path)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench_build', 'incomplete')")
    # Build-time only: no rollback journal, no fsync, a big page cache. WAL is set back at the end.
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    total = 0
    last_report = time.perf_counter()
    head = [Head(0, GENESIS)]
    for first in range(0, runs, BATCH_RUNS):
        run_rows, event_rows, search_rows = [], [], []  # type: ignore[var-annotated]
        texts = {}
        for index in range(first, min(first + BATCH_RUNS, runs)):
            run_id, record, events = generator.run(index)
            texts[record["digest"]] = record["text"]
            run_rows.append(encode(run_id, record, events, event_rows, search_rows, head))
        db.execute("BEGIN")
        db.executemany(INSERT_TEXT, texts.items())
        db.executemany(INSERT_RUN, run_rows)
        db.executemany(INSERT_EVENT, event_rows)
        db.executemany(INSERT_SEARCH, search_rows)
        db.execute("COMMIT")
        total += len(event_rows)
        if time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            done = first + len(run_rows)
            print(f"  built {done:,}/{runs:,} runs, {total:,} events, {last_report - start:.0f} s")
            sys.stdout.flush()
    write_head(db, head[0])
    db.execute("UPDATE meta SET value = ? WHERE key = 'bench_build'", (f"complete {runs}",))
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    seconds = time.perf_counter() - start
    size = path.stat().st_size / 1e6
    print(
        f"built {runs:,} runs, {total:,} events in {seconds:.1f} s "
        f"({total / seconds:,.0f} events/s), file {size:,.0f} MB"
    )


def build_state(path: Path) -> str | None:
    """'complete ...', 'incomplete', or None for a journal this bench did not build."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        row = db.execute("SELECT value FROM meta WHERE key = 'bench_build'").fetchone()
        db.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


# -- measuring ----------------------------------------------------------------------------------


def timed(reps: int, action: Callable[[], object]) -> tuple[float, float, object]:
    """Median and best seconds of `reps` calls, and the last call's result."""
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), result


def paired(
    reps: int, action: Callable[[], object], baseline: Callable[[], object], startups: list[float]
) -> tuple[float, float, float, object]:
    """`action` and the start-up `baseline` alternating: median and best of `action`, the median
    of the per-pass differences (robust on a busy machine), and the last result. Every baseline
    time is appended to `startups`."""
    times, diffs, result = [], [], None
    for _ in range(reps):
        base, _best, _ = timed(1, baseline)
        spent, _best, result = timed(1, action)
        startups.append(base)
        times.append(spent)
        diffs.append(spent - base)
    return statistics.median(times), min(times), statistics.median(diffs), result


def cli(args: list[str]) -> Callable[[], tuple[int, bytes, bytes]]:
    def run() -> tuple[int, bytes, bytes]:
        done = subprocess.run(args, capture_output=True, check=False)
        return done.returncode, done.stdout, done.stderr

    return run


def timed_fresh(
    reps: int, path: Path, action: Callable[[sqlite3.Connection], object]
) -> tuple[float, float, object]:
    """Like `timed`, but a fresh connect() per pass, outside the timed part."""
    times, result = [], None
    for _ in range(reps):
        db = connect(path)
        try:
            start = time.perf_counter()
            result = action(db)
            times.append(time.perf_counter() - start)
        finally:
            db.close()
    return statistics.median(times), min(times), result


def fetch_only(db: sqlite3.Connection) -> int:
    """verify_all's reads without its hashing: one SELECT per run, every column fetched."""
    count = 0
    for (run_id,) in db.execute("SELECT id FROM runs ORDER BY started").fetchall():
        for _row in db.execute(
            "SELECT seq, kind, step, attempt, time, data, prev, hash FROM events"
            " WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ):
            count += 1
        db.execute(
            "SELECT events, last_hash, r.digest, t.text FROM runs r"
            " LEFT JOIN runbook_texts t ON t.digest = r.digest WHERE id = ?",
            (run_id,),
        ).fetchone()
    return count


def plans(path: Path, action: Callable[[sqlite3.Connection], object]) -> list[str]:
    """EXPLAIN QUERY PLAN of each distinct statement `action` runs (first 2, bound values in)."""
    statements: list[str] = []
    db = connect(path)
    db.set_trace_callback(statements.append)
    action(db)
    db.set_trace_callback(None)
    out: list[str] = []
    seen: set[str] = set()
    for sql in statements:
        shape = sql.split(" WHERE ")[0]
        internal = "'main'." in sql  # FTS5's own reads of its shadow tables
        if not sql.lstrip().upper().startswith("SELECT") or internal or shape in seen:
            continue
        seen.add(shape)
        out.append(f"  {sql}")
        for row in db.execute("EXPLAIN QUERY PLAN " + sql):
            out.append(f"    {'  ' * (0 if row[1] == 0 else 1)}{row[3]}")
        if len(seen) == 2:
            break
    db.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50_000, help="runs (default 50,000)")
    parser.add_argument("--keep", type=Path, help="build into PATH, or reuse it when it exists")
    parser.add_argument("--reps", type=int, default=5, help="passes of list/search (default 5)")
    parser.add_argument("--verify-reps", type=int, default=3, help="passes of verify (default 3)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"(default {SEED})")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also load the journal into this PostgreSQL database and time both backends",
    )
    parser.add_argument(
        "--backends-only",
        action="store_true",
        help="skip the SQLite-only table (its in-process rows and verify passes)",
    )
    args = parser.parse_args()

    tmp = None
    if args.keep:
        path = args.keep
        state = build_state(path) if path.exists() else "absent"
        if state == "incomplete":
            print(f"{path}: an interrupted build of this bench; building it again")
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            state = "absent"
        if state == "absent":
            build(path, args.runs, args.seed)
        else:
            print(f"reusing {path} ({state or 'not built by this bench'}); --runs ignored")
    else:
        tmp = tempfile.mkdtemp(prefix="bench-journal-")
        path = Path(tmp, "journal.db")
        build(path, args.runs, args.seed)
    try:
        if not args.backends_only:
            report(path, args.reps, args.verify_reps)
        both_backends(path, args.postgres, args.reps, args.verify_reps)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


class Table:
    """The printed rows: measure, start-up included?, median and best ms, figure, verdict."""

    HEADER = ("measure", "start-up", "median ms", "best ms", "figure", "target")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    @staticmethod
    def format(
        label: str, startup: str, median: float, best: float | None, figure: str, verdict: str
    ) -> tuple[str, ...]:
        shown_best = "" if best is None else f"{best * 1e3:,.1f}"
        return (label, startup, f"{median * 1e3:,.1f}", shown_best, figure, verdict)

    def add(
        self, label: str, startup: str, median: float, best: float | None, figure: str, verdict: str
    ) -> None:
        self.rows.append(self.format(label, startup, median, best, figure, verdict))

    def print(self) -> None:
        rows = [self.HEADER, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER))]
        for cells in rows:
            line = "  ".join(
                cell.rjust(width) if i in (2, 3) else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            )
            print(line.rstrip())


def under(seconds: float, target_ms: float) -> str:
    return f"{'PASS' if seconds * 1e3 < target_ms else 'FAIL'} (< {target_ms:.0f} ms)"


def lines_of(result: object) -> int:
    _code, out, _err = result  # type: ignore[misc]
    return len(bytes(out).decode("utf-8", "replace").splitlines())


def list_query(db: sqlite3.Connection) -> list[query.RunSummary]:
    return query.list_runs(db, status="failed", since=30 * 86400)


def rare_query(db: sqlite3.Connection) -> list[query.SearchHit]:
    return query.search(db, RARE_WORD)


def common_query(db: sqlite3.Connection) -> list[query.SearchHit]:
    return query.search(db, COMMON_WORD)


def report(path: Path, reps: int, verify_reps: int) -> None:
    db = connect(path)
    runs, events = db.execute("SELECT count(*), coalesce(sum(events), 0) FROM runs").fetchone()
    statuses = dict(db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall())
    db.close()
    wal = Path(f"{path}-wal")
    size = (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6
    shown = ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
    print(f"journal: {path}: {runs:,} runs ({shown}), {events:,} events, {size:,.0f} MB")
    load_before = os.getloadavg()

    exe = runbook_command()
    journal = ["--journal", str(path)]
    table = Table()
    minus = "no (CLI - --help)"

    help_cli = cli([exe, "--help"])
    compile_engine()  # warm-up: .pyc files, and the interpreter's files into the page cache
    help_cli()
    startups: list[float] = []
    med, best, _ = timed(reps, lambda: connect(path).close())
    table.add("connect() + close", "no", med, best, "", "(reference)")

    list_cli = [exe, "log", "list", "--status", "failed", "--since", "30d", *journal]
    med, best, diff, done = paired(reps, cli(list_cli), help_cli, startups)
    table.add(
        "log list failed 30d",
        "yes",
        med,
        best,
        f"{lines_of(done)} lines",
        under(med, LIST_TARGET_MS),
    )
    table.add("  minus start-up", minus, diff, None, "", under(diff, LIST_TARGET_MS))
    med, best, found = timed_fresh(reps, path, list_query)
    table.add("list_runs()", "no", med, best, f"{len(found)} runs", under(med, LIST_TARGET_MS))

    search_cli = [exe, "log", "search", RARE_WORD, *journal]
    med, best, diff, done = paired(reps, cli(search_cli), help_cli, startups)
    table.add(
        f"log search {RARE_WORD}",
        "yes",
        med,
        best,
        f"{lines_of(done)} lines",
        under(med, SEARCH_TARGET_MS),
    )
    table.add("  minus start-up", minus, diff, None, "", under(diff, SEARCH_TARGET_MS))
    med, best, hits = timed_fresh(reps, path, rare_query)
    figure = f"{len(hits)} hits, {len({h.run.id for h in hits})} runs"
    table.add(f"search({RARE_WORD!r})", "no", med, best, figure, under(med, SEARCH_TARGET_MS))
    med, best, hits = timed_fresh(max(1, reps // 2), path, common_query)
    table.add(f"search({COMMON_WORD!r})", "no", med, best, f"{len(hits)} hits", "(no target)")

    def rate(seconds: float) -> tuple[str, str]:
        per_second = events / seconds if seconds > 0 else 0.0
        verdict = "PASS" if per_second >= VERIFY_TARGET else "FAIL"
        return f"{per_second:,.0f} events/s", f"{verdict} (>= {VERIFY_TARGET:,.0f}/s)"

    verify_cli = [exe, "log", "verify", "--all", *journal]
    med, best, diff, done = paired(verify_reps, cli(verify_cli), help_cli, startups)
    code, _out, err = done  # type: ignore[misc]
    summary = bytes(err).decode("utf-8", "replace").strip().splitlines()[-1:] or ["(none)"]
    table.add("log verify --all", "yes", med, best, *rate(med))
    table.add("  minus start-up", minus, diff, None, *rate(diff))
    med, best, results = timed_fresh(verify_reps, path, verify_all)
    table.add("verify_all()", "no", med, best, *rate(med))
    bad = [r for r in results if not r.ok]
    med, best, _ = timed_fresh(1, path, fetch_only)
    table.add("  its SELECTs only", "no", med, None, f"{events / med:,.0f} events/s", "(reference)")

    start = statistics.median(startups)
    table.rows.insert(
        0,
        Table.format(
            "start-up: runbook --help", "yes (only)", start, min(startups), "", "(reference)"
        ),
    )
    loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load_before, os.getloadavg(), strict=True))
    print(f"load average (1, 5, 15 min) before/after the timings: {loads} on {os.cpu_count()} CPUs")
    print(f"timing: median (best) of {reps} passes, {verify_reps} for verify; each CLI pass")
    print("follows a `runbook --help` pass; the CLI figure minus start-up is the median of the")
    print("per-pass differences ('minus start-up' rows)\n")
    table.print()
    print(f"\nCLI verify: exit {code}, {summary[0]}")
    print(f"in-process verify: {len(results) - len(bad):,}/{len(results):,} runs ok")
    for result in bad[:5]:
        print(f"  FAIL {result.run_id}: {result.problem}")
    print("\nquery plans (the statements as the engine runs them):")
    for action in (list_query, rare_query):
        print("\n".join(plans(path, action)))


PG_TABLES = {  # what the PostgreSQL journal is loaded with: the SQLite file's rows as stored
    "runbook_texts": "digest, text",
    "runs": "id, path, abspath, title, digest, git_commit, git_dirty, operator, email, host,"
    " pid, started, ended, status, params, events, last_hash",
    "events": "run_id, seq, kind, step, attempt, time, data, prev, hash",
    "search": "id, text, run_id, step, field",
}


def load_postgres(path: Path, url: str) -> None:
    """The SQLite journal's rows into the PostgreSQL journal at `url` (its schema made by the
    engine's own `connect`) with COPY, the GIN index built after the rows; reused when it
    already holds this build. VACUUM ANALYZE at the end, as a database in use would be."""
    from engine.journal.postgres import connect as pg_connect

    built = build_state(path)
    conn = pg_connect(url)
    row = conn.execute("SELECT value FROM meta WHERE key = 'bench_build'").fetchone()
    if row and row[0] == built:
        print(f"\nreusing the PostgreSQL journal ({built})")
        conn.close()
        return
    began = time.perf_counter()
    conn.execute("TRUNCATE runs, events, search, runbook_texts, active")
    conn.execute("DROP INDEX IF EXISTS search_words")
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    for table, columns in PG_TABLES.items():
        select = columns.replace("id, text", "rowid, text") if table == "search" else columns
        rows = source.execute(f"SELECT {select} FROM {table}")
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for values in rows:
                copy.write_row(values)
    for key, value in source.execute("SELECT key, value FROM meta"):
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
    source.close()
    conn.execute("SELECT setval('search_id_seq', (SELECT max(id) FROM search))")
    conn.execute("CREATE INDEX search_words ON search USING GIN (words)")
    conn.execute("VACUUM ANALYZE")
    conn.close()
    print(f"\nloaded into PostgreSQL with COPY in {time.perf_counter() - began:.0f} s")


def pg_plans(url: str) -> list[str]:
    """EXPLAIN (ANALYZE) of the list and search statements as PostgresStore runs them."""
    from engine.journal.postgres import PostgresStore

    store = PostgresStore(url)
    statements: list[tuple[str, tuple[object, ...]]] = []
    execute = store.conn.execute

    def traced(sql: str, args: object = ()) -> object:
        statements.append((sql, tuple(args)))  # type: ignore[arg-type]
        return execute(sql, args)  # type: ignore[arg-type]

    store.conn.execute = traced  # type: ignore[method-assign]
    store.list_runs(status="failed", since=30 * 86400)
    store.search(RARE_WORD)
    store.conn.execute = execute  # type: ignore[method-assign]
    out: list[str] = []
    seen: set[str] = set()
    for sql, args in statements:
        shape = sql.split(" WHERE ")[0]
        if not sql.lstrip().upper().startswith("SELECT") or shape in seen:
            continue
        seen.add(shape)
        out.append(f"  {sql}")
        for (line,) in execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, args).fetchall():
            out.append(f"    {line}")
    store.close()
    return out


def verify_per_run(db: object) -> list[object]:
    """verify_all as it was: one query (one round trip) per run, for the before/after row."""
    from engine.journal.verify import verify_run

    ids = db.execute("SELECT id FROM runs ORDER BY started").fetchall()  # type: ignore[attr-defined]
    return [verify_run(db, run_id) for (run_id,) in ids]


def both_backends(path: Path, url: str | None, reps: int, verify_reps: int) -> None:
    """The same CLI commands on SQLite and on PostgreSQL (the rows loaded there with COPY):
    one column per backend, each a whole `runbook` process, against the targets and against
    `runbook --help` measured in the same passes; then verify on PostgreSQL in-process, one
    query per run against batched reads."""
    if not url:
        print("\nbackends: PostgreSQL not measured (give --postgres URL of a database)")
        return
    from engine.journal.location import shown
    from engine.journal.postgres import PostgresStore

    load_postgres(path, url)
    exe = runbook_command()
    compile_engine()
    help_cli = cli([exe, "--help"])
    commands = {
        "log list --status failed --since 30d": (
            ["log", "list", "--status", "failed", "--since", "30d"],
            LIST_TARGET_MS,
        ),
        f"log search {RARE_WORD}": (["log", "search", RARE_WORD], SEARCH_TARGET_MS),
        "log head": (["log", "head"], None),
        "log verify --all": (["log", "verify", "--all"], None),
    }
    load_before = os.getloadavg()
    rows = []
    startups: list[float] = []
    for name, (args, target) in commands.items():
        passes = verify_reps if "verify" in name else reps
        cells = []
        for location in (str(path), url):
            med, _best, _diff, done = paired(
                passes, cli([exe, *args, "--journal", location]), help_cli, startups
            )
            code = done[0]  # type: ignore[index]
            verdict = "" if target is None else under(med, target).split()[0]
            cells.append((med, verdict, code))
        rows.append((name, target, cells))
    start = statistics.median(startups)
    loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(load_before, os.getloadavg(), strict=True))
    print(f"\nboth backends: {shown(url)}; load average (1, 5, 15 min) before/after: {loads}")
    print(
        f"median ms of {reps} passes ({verify_reps} for verify), each a whole `runbook` process;"
        f" x = ratio to `runbook --help` ({start * 1e3:.0f} ms, median of the same passes)\n"
    )
    header = f"{'command':<38} {'target':>7} {'sqlite':>16} {'postgresql':>16}"
    print(header)
    print(f"{'runbook --help (start-up)':<38} {'':>7} {start * 1e3:>10.0f} ms    {'':>16}")
    for name, target, cells in rows:
        shown_cells = [
            f"{med * 1e3:>6.0f} {med / start:>4.1f}x {verdict or f'exit {code}':>4}"
            for med, verdict, code in cells
        ]
        goal = f"{target:.0f}" if target else "-"
        print(f"{name:<38} {goal:>7} {shown_cells[0]:>16} {shown_cells[1]:>16}")

    store = PostgresStore(url)
    try:
        (events,) = store.conn.execute("SELECT coalesce(sum(events), 0) FROM runs").fetchone()
        med_old, _, old = timed(1, lambda: verify_per_run(store.db))
        med_new, _, new = timed(1, lambda: store.verify())
    finally:
        store.close()
    print(f"\nverify on PostgreSQL, in-process ({events:,} events):")
    for label, seconds, results in (
        ("one query per run (before)", med_old, old),
        ("batched reads (verify_all)", med_new, new),
    ):
        ok = sum(1 for r in results if r.ok)  # type: ignore[attr-defined, union-attr]
        print(
            f"  {label:<28} {seconds:>7.1f} s  {events / seconds:>10,.0f} events/s"
            f"  {ok:,}/{len(results):,} runs ok"  # type: ignore[arg-type]
        )
    print(f"  ratio: {med_old / med_new:.2f}x")
    print("\nPostgreSQL query plans (the statements as PostgresStore runs them):")
    print("\n".join(pg_plans(url)))


if __name__ == "__main__":
    raise SystemExit(main())
