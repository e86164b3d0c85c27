"""Starting a run: parameters from the command line, a file or the operator; step selection;
the shell session, the console and the runner wired together. The CLI calls only this."""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from engine.console.run import RunConsole, print_dry_run
from engine.console.terminal import Terminal
from engine.diagnostics import did_you_mean
from engine.events import Event, EventKind, Fanout, RunStatus, StepStatus
from engine.journal import JournalWriter, connect, lock, query
from engine.loader import RunbookNotFound, read_runbook
from engine.model import Runbook
from engine.parse import parse_runbook
from engine.plan import Plan, plan_runbook, resolve_params
from engine.run import Choice, RunAborted, Runner, RunOptions, dry_run_commands, preflight
from engine.shell import ShellError, ShellSession
from engine.yamlsafe import YamlError, load_yaml

EXIT_FOR_STATUS = {
    RunStatus.SUCCEEDED: 0,
    RunStatus.FAILED: 1,
    RunStatus.ABORTED: 1,
    RunStatus.INTERRUPTED: 130,
}


class LaunchError(Exception):
    """A run that cannot start as asked: a usage error (exit 2)."""


def parse_param_args(pairs: tuple[str, ...], params_file: Path | None) -> dict[str, str]:
    """`-p NAME=VALUE` pairs over a YAML mapping file's values."""
    values: dict[str, str] = {}
    if params_file is not None:
        try:
            text = params_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LaunchError(f"{params_file}: cannot read: {exc}") from None
        loaded = load_yaml(text)
        if isinstance(loaded, YamlError):
            raise LaunchError(f"{params_file}:{loaded.line + 1}: {loaded.message}")
        if not isinstance(loaded.value, dict) or any(
            isinstance(v, dict | list) for v in loaded.value.values()
        ):
            raise LaunchError(f"{params_file}: expected a mapping of parameter names to values")
        values.update({str(k): "" if v is None else _text(v) for k, v in loaded.value.items()})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise LaunchError(f"-p {pair}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def collect_params(
    runbook: Runbook, given: dict[str, str], interactive: bool, terminal: Terminal
) -> dict[str, str]:
    """Resolve parameters; ask the operator for missing ones when there is a terminal."""
    values, missing, problems = resolve_params(runbook, given)
    if problems:
        raise LaunchError("; ".join(problems))
    if missing and not interactive:
        raise LaunchError(
            "missing required parameter(s): "
            + ", ".join(missing)
            + " (give each with -p NAME=VALUE)"
        )
    if missing:
        asker = RunConsole(terminal, None, True)
        for name in missing:
            param = runbook.param(name)
            if param is not None:
                values[name] = asker.ask_param(param)
    return values


def run_options(
    plan: Plan,
    yes: bool,
    allow_danger: bool,
    start_from: str | None,
    only: str | None,
    skip: str | None,
) -> RunOptions:
    """Validate --from/--only/--skip against the plan's step ids."""
    known = list(plan.order)

    def ids(text: str | None, option: str) -> frozenset[str]:
        chosen = [part.strip() for part in (text or "").split(",") if part.strip()]
        for step_id in chosen:
            if step_id not in known:
                hint = did_you_mean(step_id, known)
                raise LaunchError(
                    f"{option} {step_id}: no such step in the flow" + (f"; {hint}" if hint else "")
                )
        return frozenset(chosen)

    start = ids(start_from, "--from")
    return RunOptions(
        assume_yes=yes,
        allow_danger=allow_danger,
        start_from=next(iter(start), None),
        only=ids(only, "--only"),
        skip=ids(skip, "--skip"),
    )


def dry_run(plan: Plan, values: dict[str, str], terminal: Terminal) -> None:
    try:
        commands = dry_run_commands(plan, values)
    except RunAborted as exc:
        raise LaunchError(str(exc)) from None
    print_dry_run(terminal, plan, commands)


def session_environment(runbook: Runbook, values: dict[str, str]) -> dict[str, str]:
    """The steps' environment: ours, the runbook's env, and every parameter in upper case."""
    env = dict(os.environ)
    env.update(dict(runbook.env))
    env.update({name.upper(): value for name, value in values.items()})
    env["RUNBOOK_PATH"] = runbook.path
    # The engine's own commands, for runbooks that operate the engine (journal, site).
    env["RUNBOOK"] = shutil.which("runbook") or str(Path(sys.argv[0]).resolve())
    env["RUNBOOK_PYTHON"] = sys.executable
    return env


def check_before_running(plan: Plan, values: dict[str, str], options: RunOptions) -> None:
    problems = preflight(plan, values, options)
    if problems:
        raise LaunchError("; ".join(problems))


def new_run_id() -> str:
    """Sortable by time, readable, unique: 20261123-183903-a1b2c3."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def provenance(path: Path) -> dict[str, object]:
    """Who runs which version: operator, host, and the runbook's git commit and dirty flag."""
    facts: dict[str, object] = {
        "operator": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "git_commit": None,
        "git_dirty": None,
        "email": None,
    }
    directory = str(path.resolve().parent)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", directory, *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit:
        facts["git_commit"] = commit
        facts["git_dirty"] = bool(git("status", "--porcelain", "--", str(path.resolve())))
    facts["email"] = git("config", "user.email") or None
    return facts


def run_plan(
    plan: Plan,
    values: dict[str, str],
    options: RunOptions,
    terminal: Terminal,
    interactive: bool,
    journal: Path,
    force: bool = False,
) -> int:
    """Run the plan in a new shell session, journalled; the exit status for the CLI."""
    check_before_running(plan, values, options)
    runbook = plan.runbook
    path = Path(runbook.path)
    facts = provenance(path)
    run_id = new_run_id()
    record = {
        "path": runbook.path,
        "abspath": str(path.resolve()),
        "title": runbook.title,
        "digest": runbook.digest,
        "text": runbook.text,
        **facts,
    }
    db = connect(journal)
    try:
        replaced = acquire_lock(db, record, run_id, force, terminal)
        writer = JournalWriter(db, run_id, record)
        info = {"run_id": run_id, "journal": str(journal), **_event_facts(facts, runbook)}
        if replaced:
            info["replaced_lock"] = replaced.describe()
        try:
            return _run_in_session(plan, values, options, terminal, interactive, writer, info)
        finally:
            lock.release(db, str(record["abspath"]), run_id)
    finally:
        db.close()


def acquire_lock(
    db: sqlite3.Connection, record: dict[str, object], run_id: str, force: bool, terminal: Terminal
) -> lock.Holder | None:
    try:
        replaced = lock.acquire(
            db, str(record["abspath"]), run_id, str(record["operator"]), os.getpid(), force
        )
    except lock.RunLocked as exc:
        raise LaunchError(
            f"{record['path']} is already running: {exc.holder.describe()}; "
            "use --force to run it anyway"
        ) from None
    if replaced is not None:
        terminal.warning(
            f"running beside {replaced.describe()} (--force)"
            if lock.is_live(replaced)
            else f"replaced the stale lock of {replaced.describe()}: its process is gone"
        )
    return replaced


def _event_facts(facts: dict[str, object], runbook: Runbook) -> dict[str, object]:
    return {"digest": runbook.digest, **facts}


def _run_in_session(
    plan: Plan,
    values: dict[str, str],
    options: RunOptions,
    terminal: Terminal,
    interactive: bool,
    writer: JournalWriter,
    info: dict[str, object],
    captured: dict[str, str] | None = None,
    resumed: bool = False,
) -> int:
    runbook = plan.runbook
    cwd = None
    if runbook.cwd:
        cwd = str((Path(runbook.path).parent / os.path.expanduser(runbook.cwd)).resolve())
        if not os.path.isdir(cwd):
            raise LaunchError(f"{runbook.path}: cwd {runbook.cwd} is not a directory")
    size = shutil.get_terminal_size((80, 24))
    try:
        session = ShellSession(
            shell=runbook.shell,
            cwd=cwd,
            env=session_environment(runbook, values),
            dimensions=(size.lines, size.columns),
            secret_variables=tuple(p.name.upper() for p in runbook.params if p.secret),
        )
    except ShellError as exc:
        raise LaunchError(str(exc)) from None
    console = RunConsole(terminal, plan, interactive)
    sink = Fanout(writer, console)
    try:
        runner = Runner(plan, values, session, console, sink, options, info, captured)
        result = runner.run(resumed=resumed)
    finally:
        session.close()
    terminal.run_footer(str(info["run_id"]))
    return EXIT_FOR_STATUS[result.status]


def changed_steps(old_text: str, new: Runbook) -> list[str]:
    """Step ids whose text or settings differ between the version a run used and now."""
    old = {s.id: s for s in parse_runbook(old_text, new.path).steps}
    current = {s.id: s for s in new.steps}
    changes = []
    for step_id in sorted(set(old) | set(current)):
        before, after = old.get(step_id), current.get(step_id)
        if before is None:
            changes.append(f"{step_id}: added")
        elif after is None:
            changes.append(f"{step_id}: removed")
        elif replace(before, line=0, body_line=0, key_columns=()) != replace(
            after, line=0, body_line=0, key_columns=()
        ):
            changes.append(f"{step_id}: changed")
    return changes


def resume_run(
    reference: str,
    given: dict[str, str],
    yes: bool,
    allow_danger: bool,
    force: bool,
    journal: Path,
    terminal: Terminal,
) -> int:
    """Continue an interrupted or failed run at its first unfinished step."""
    if not journal.exists():
        raise LaunchError(f"no runs recorded yet (no journal at {journal})")
    db = connect(journal)
    try:
        try:
            summary = query.find_run(db, reference)
        except query.RunNotFound as exc:
            raise LaunchError(str(exc)) from None
        if summary.status == RunStatus.SUCCEEDED:
            raise LaunchError(f"run {summary.id} succeeded: there is nothing to resume")
        if summary.status == RunStatus.RUNNING:
            raise LaunchError(
                f"run {summary.id} is still running (pid {summary.pid} on {summary.host})"
            )
        detail = query.run_detail(db, summary)
        stored_text = db.execute(
            "SELECT text, abspath FROM runs WHERE id = ?", (summary.id,)
        ).fetchone()
        return _resume(
            db,
            detail,
            stored_text[0],
            Path(stored_text[1]),
            given,
            yes,
            allow_danger,
            force,
            journal,
            terminal,
        )
    finally:
        db.close()


def _resume(
    db: sqlite3.Connection,
    detail: query.RunDetail,
    old_text: str,
    abspath: Path,
    given: dict[str, str],
    yes: bool,
    allow_danger: bool,
    force: bool,
    journal: Path,
    terminal: Terminal,
) -> int:
    summary = detail.summary
    shown_path = summary.path if Path(summary.path).exists() else str(abspath)
    try:
        runbook = read_runbook(Path(shown_path))
    except RunbookNotFound as exc:
        raise LaunchError(f"cannot resume run {summary.id}: {exc}") from None
    plan = plan_runbook(runbook)
    if not plan.ok:
        terminal.diagnostics([d for d in plan.diagnostics if d.is_error])
        raise LaunchError(f"{runbook.path} has errors now; fix them to resume")
    interactive = not yes
    console = RunConsole(terminal, plan, interactive)
    if runbook.digest != summary.digest:
        changes = changed_steps(old_text, runbook)
        if yes and not force:
            raise LaunchError(
                f"{runbook.path} changed since run {summary.id} started ("
                + ", ".join(changes or ["text only"])
                + "); use --force to resume with the new version"
            )
        if not yes and not console.confirm_changes(runbook.path, changes):
            raise LaunchError("resume cancelled")
    # Parameters as the run had them; secret ones were never recorded, so ask again.
    recorded = {k: str(v) for k, v in summary.params.items() if v != "<secret>"}
    recorded.update(given)
    values = collect_params(runbook, recorded, interactive, terminal)
    started = next((e for e in detail.events if e.kind is EventKind.RUN_STARTED), None)
    selection = [str(s) for s in (started.get("steps") if started else None) or plan.order]  # type: ignore[union-attr]
    done, captured, decisions = set(), {}, []
    for record in detail.steps:
        captured.update(record.captured)
        if record.status in (StepStatus.SUCCEEDED, StepStatus.DONE, StepStatus.SKIPPED):
            done.add(record.id)
        elif record.status is None and record.id in selection:
            choice = Choice.RUN if yes else console.ask_unfinished(record.id)
            decisions.append((record.id, choice))
            if choice in (Choice.DONE, Choice.SKIP):
                done.add(record.id)
    options = RunOptions(
        assume_yes=yes,
        allow_danger=allow_danger,
        only=frozenset(selection),
        done=frozenset(done),
    )
    check_before_running(plan, values, options)
    facts = provenance(Path(runbook.path))
    record = {"abspath": str(abspath), "operator": facts["operator"], "path": runbook.path}
    acquire_lock(db, record, summary.id, force, terminal)
    writer = JournalWriter.resume(db, summary.id)
    try:
        for step_id, choice in decisions:
            writer.emit(
                Event(EventKind.ANSWER, {"question": "unfinished", "answer": str(choice)}, step_id)
            )
            if choice is not Choice.RUN:
                status = StepStatus.DONE if choice is Choice.DONE else StepStatus.SKIPPED
                writer.emit(
                    Event(
                        EventKind.STEP_FINISHED,
                        {"status": str(status), "reason": "on resume"},
                        step_id,
                    )
                )
        info = {"run_id": summary.id, "journal": str(journal), **_event_facts(facts, runbook)}
        return _run_in_session(
            plan, values, options, terminal, interactive, writer, info, captured, resumed=True
        )
    finally:
        lock.release(db, str(abspath), summary.id)
