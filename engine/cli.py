"""The `runbook` command: a thin layer of click commands over the pipeline stages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from engine.console.terminal import Terminal
    from engine.journal.storage import Store
    from engine.record import RunDetail

# Each command imports what only it uses: the parser, planner and runner (markdown-it, Jinja,
# ftfy, pexpect) for `run`, the journal's queries and views for `log`, the terminal (rich)
# once there is something to print, so `runbook --help` loads click and nothing else.


def _terminal(keyboard: bool = False) -> Terminal:
    """The terminal, imported on first use: it brings the model and the record, which
    `--help` needs neither of."""
    from engine.console.terminal import Terminal

    return Terminal(keyboard=ClickKeyboard() if keyboard else None)


def _journal_location(journal: str | None) -> Path | str:
    """Where the journal is (a path or a PostgreSQL URL), imported on first use."""
    from engine.journal.location import journal_location

    return journal_location(journal)


def _journal_exists(location: Path | str) -> bool:
    from engine.journal.location import exists

    return exists(location)


EXIT_USAGE = 2
EXIT_INTERNAL = 70
LISTED_RUNS = 50  # `log list` without --limit or --all: the newest runs

JOURNAL = click.option(
    "--journal",
    metavar="PATH|URL",
    envvar="RUNBOOK_JOURNAL",
    help="The journal: a SQLite file (default: .runbook/journal.db in the project) or a"
    " postgresql:// URL.",
)
RUN_GUESSED = click.option(
    "--run-guessed", is_flag=True, help="With --yes, also run blocks guessed to be commands."
)
# Steps on other machines: the same three options for `run` and `resume`.
FORKS = click.option(
    "--forks",
    type=click.IntRange(1, 500),
    default=None,
    metavar="N",
    help="Run a group's step on at most N hosts at once (default 5).",
)
SSH_CONFIG = click.option(
    "--ssh-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The ssh client's config file (passed to ssh as -F).",
)
INVENTORY = click.option(
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Targets (hosts and groups) from a YAML file, usable across runbooks.",
)
FORMAT = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people or for programs.",
)


class UserError(click.ClickException):
    """A mistake the user can fix; shown as one line, exit status 2."""

    exit_code = EXIT_USAGE

    def show(self, file: IO[Any] | None = None) -> None:
        _terminal().error(self.message)


class ClickKeyboard:
    """The operator's keys and editor, through click (the one module that imports it)."""

    def read_key(self) -> str:
        return click.getchar()

    def edit(self, text: str, extension: str) -> str | None:
        from engine.console.terminal import EditorFailed

        if not (os.environ.get("VISUAL") or os.environ.get("EDITOR")):
            # Not the system's fallback (Debian's select-editor writes to the home directory).
            raise EditorFailed("no editor: set $EDITOR (or $VISUAL) to edit the command")
        try:
            return click.edit(text, extension=extension, require_save=True)
        except click.UsageError as exc:
            raise EditorFailed(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="runbook-engine", prog_name="runbook")
def cli() -> None:
    """Run Markdown runbooks step by step, and keep a record of every run."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@FORMAT
@click.option("--fix", is_flag=True, help="Repair mis-decoded text (mojibake) in place first.")
def check(paths: tuple[Path, ...], output_format: str, fix: bool) -> None:
    """Check runbooks for every problem, each reported as PATH:LINE:COL."""
    from engine.check import CheckResult, check_runbook, fix_file
    from engine.loader import RunbookNotFound

    terminal = _terminal()
    files = _runbook_files(paths)
    results: list[CheckResult] = []
    unreadable = 0
    for path in files:
        try:
            if fix:
                terminal.fix_report(fix_file(path))
            results.append(check_runbook(path))
        except (RunbookNotFound, OSError) as exc:
            unreadable += 1
            terminal.error(str(exc) if isinstance(exc, RunbookNotFound) else f"{path}: {exc}")
    if output_format == "json":
        terminal.check_json(results)
    else:
        for result in results:
            terminal.diagnostics(result.diagnostics)
        terminal.check_summary(results)
    sys.exit(1 if unreadable or any(r.errors for r in results) else 0)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@FORMAT
def show(path: Path, output_format: str) -> None:
    """Show a runbook's plan: sections, steps, graph and parameters."""
    from engine.loader import RunbookNotFound
    from engine.plan_cache import load_plan

    terminal = _terminal()
    try:
        _, plan = load_plan(path)
    except RunbookNotFound as exc:
        raise UserError(str(exc)) from None
    if output_format == "json":
        terminal.plan_json(plan)
    else:
        terminal.plan(plan)
        errors = [d for d in plan.diagnostics if d.is_error]
        if errors:
            terminal.err.print()
            terminal.diagnostics(errors)
    sys.exit(0 if plan.ok else 1)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Set a parameter."
)
@click.option("--params-file", type=click.Path(path_type=Path), help="Parameters from a YAML file.")
@click.option("--yes", is_flag=True, help="Run every step without asking (unattended).")
@click.option("--allow-danger", is_flag=True, help="With --yes, also run confirm: danger steps.")
@click.option("--dry-run", is_flag=True, help="Print every step rendered; execute nothing.")
@click.option("--from", "start_from", metavar="ID", help="Start at this step.")
@click.option("--only", metavar="ID[,ID...]", help="Run only these steps.")
@click.option("--skip", metavar="ID[,ID...]", help="Do not run these steps.")
@click.option("--force", is_flag=True, help="Run even if another run of it is active.")
@click.option("--quiet", is_flag=True, help="Do not show the runbook's text between steps.")
@RUN_GUESSED
@click.option(
    "--choose",
    multiple=True,
    metavar="LABEL",
    help="Take this option where the runbook offers a choice (repeatable).",
)
@FORKS
@SSH_CONFIG
@INVENTORY
@JOURNAL
def run(
    path: Path,
    params: tuple[str, ...],
    params_file: Path | None,
    yes: bool,
    allow_danger: bool,
    dry_run: bool,
    start_from: str | None,
    only: str | None,
    skip: str | None,
    force: bool,
    quiet: bool,
    run_guessed: bool,
    choose: tuple[str, ...],
    forks: int | None,
    ssh_config: Path | None,
    inventory: Path | None,
    journal: str | None,
) -> None:
    """Run a runbook step by step, asking before each step."""
    from engine import launch
    from engine.loader import RunbookNotFound
    from engine.parameters import Parameters
    from engine.plan_cache import load_plan

    terminal = _terminal(keyboard=True)
    try:
        runbook, plan = load_plan(path)
        if not runbook.steps:
            raise UserError(
                f"{path}: no steps to run (is it an empty or non-Markdown file?);"
                f" see `runbook check {path}`"
            )
        if not plan.ok:
            terminal.diagnostics([d for d in plan.diagnostics if d.is_error])
            raise UserError(f"{path} has errors; fix them first (see `runbook check {path}`)")
        interactive = sys.stdin.isatty() and not yes
        given = launch.parse_param_args(params, params_file)
        options = launch.run_options(
            plan, yes, allow_danger, start_from, only, skip, run_guessed, choose
        )
        options = launch.with_targets(options, forks, inventory)
        values = launch.collect_params(runbook, given, interactive and not dry_run, terminal)
        parameters = Parameters.of(plan, values)
        if dry_run:
            launch.dry_run(plan, parameters, options, terminal)
            return
        if not interactive and not yes:
            raise UserError("no terminal to ask on: use --yes for an unattended run")
        status = launch.run_plan(
            launch.Launch(
                plan,
                parameters,
                options,
                terminal,
                interactive,
                _journal_location(journal),
                force,
                quiet=quiet,
                ssh_config=None if ssh_config is None else str(ssh_config),
            )
        )
    except (RunbookNotFound, launch.LaunchError) as exc:
        raise UserError(str(exc)) from None
    sys.exit(status)


@cli.command()
@click.argument("run_ref", metavar="[RUN]", default="last")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Set a parameter."
)
@click.option("--yes", is_flag=True, help="Run the remaining steps without asking.")
@click.option("--allow-danger", is_flag=True, help="With --yes, also run confirm: danger steps.")
@click.option("--force", is_flag=True, help="Resume even if the runbook changed, or is locked.")
@click.option(
    "--rerun-unfinished",
    is_flag=True,
    help="With --yes, run again a step that started but whose end was not recorded.",
)
@RUN_GUESSED
@click.option(
    "--choose",
    multiple=True,
    metavar="LABEL",
    help="Take this option where a choice was not made yet (repeatable).",
)
@FORKS
@SSH_CONFIG
@INVENTORY
@JOURNAL
def resume(
    run_ref: str,
    params: tuple[str, ...],
    yes: bool,
    allow_danger: bool,
    force: bool,
    rerun_unfinished: bool,
    run_guessed: bool,
    choose: tuple[str, ...],
    forks: int | None,
    ssh_config: Path | None,
    inventory: Path | None,
    journal: str | None,
) -> None:
    """Continue an interrupted or failed run where it stopped."""
    from engine import launch
    from engine.resume import resume_run

    terminal = _terminal(keyboard=True)
    if not yes and not sys.stdin.isatty():
        raise UserError("no terminal to ask on: use --yes to resume unattended")
    try:
        given = launch.parse_param_args(params, None)
        status = resume_run(
            run_ref,
            given,
            yes,
            allow_danger,
            force,
            _journal_location(journal),
            terminal,
            rerun_unfinished=rerun_unfinished,
            run_guessed=run_guessed,
            choose=choose,
            forks=forks,
            ssh_config=None if ssh_config is None else str(ssh_config),
            inventory=inventory,
        )
    except launch.LaunchError as exc:
        raise UserError(str(exc)) from None
    sys.exit(status)


@cli.group()
def log() -> None:
    """List, show, search, verify and export past runs."""


def _open_journal(journal: str | None) -> Store | None:
    from engine.journal.storage import open_store

    location = _journal_location(journal)
    if not _journal_exists(location):
        _terminal().err.print(f"No runs recorded yet (no journal at {location}).")
        return None
    return open_store(location)


@log.command("list")
@click.option("--runbook", "runbook_path", metavar="PATH", help="Only runs of this runbook.")
@click.option(
    "--status",
    type=click.Choice(["running", "succeeded", "failed", "aborted", "interrupted"]),
    help="Only runs that ended so.",
)
@click.option("--since", metavar="DURATION", help="Only runs started this recently, e.g. 7d.")
@click.option("--operator", metavar="NAME", help="Only runs by this user name or email.")
@click.option("--host", metavar="NAME", help="Only runs on this host.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help=f"At most this many runs (default {LISTED_RUNS}, newest first).",
)
@click.option("--all", "list_all", is_flag=True, help="Every run that matches, however many.")
@FORMAT
@JOURNAL
def log_list(
    runbook_path: str | None,
    status: str | None,
    since: str | None,
    operator: str | None,
    host: str | None,
    limit: int | None,
    list_all: bool,
    output_format: str,
    journal: str | None,
) -> None:
    """List past runs, newest first (the latest 50 unless --limit or --all)."""
    from engine.console import log as log_view
    from engine.duration import parse_duration
    from engine.publish.export import summary_dict

    terminal = _terminal()
    seconds = None
    if since:
        seconds = parse_duration(since)
        if seconds is None:
            raise UserError(f"--since {since}: not a duration such as 7d, 12h or 30m")
    store = _open_journal(journal)
    if store is None:
        if output_format == "json":
            terminal.json([])
        return
    if runbook_path:
        runbook_path = (
            str(Path(runbook_path).resolve()) if os.path.exists(runbook_path) else (runbook_path)
        )
    if list_all and limit is not None:
        raise UserError("--limit and --all: give one of them")
    shown = None if list_all else limit or LISTED_RUNS
    # One more than shown: whether there are more to say so (a journal can hold 50,000 runs).
    runs = store.list_runs(runbook_path, status, seconds, operator, shown and shown + 1, host)
    more = shown is not None and len(runs) > shown
    runs = runs[:shown] if more else runs
    if output_format == "json":
        terminal.json([summary_dict(r) for r in runs])
    else:
        log_view.runs_table(terminal, runs, more)


@log.command("show")
@click.argument("run_ref", metavar="RUN", default="last")
@click.option("--step", "step_id", metavar="ID", help="Only this step.")
@FORMAT
@JOURNAL
def log_show(run_ref: str, step_id: str | None, output_format: str, journal: str | None) -> None:
    """Show a run's whole record: steps, commands, answers, outputs."""
    from engine.console import log as log_view
    from engine.publish.export import detail_dict

    terminal = _terminal()
    detail = _detail(journal, run_ref)
    if step_id and detail.step(step_id) is None:
        from engine.diagnostics import did_you_mean

        hint = did_you_mean(step_id, [s.id for s in detail.steps])
        raise UserError(
            f"run {detail.summary.id} has no step {step_id!r}" + (f"; {hint}" if hint else "")
        )
    if output_format == "json":
        terminal.json(detail_dict(detail, step_id))
    else:
        log_view.run_detail(terminal, detail, step_id)


@log.command("search")
@click.argument("text")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="At most this many hits.",
)
@FORMAT
@JOURNAL
def log_search(text: str, limit: int, output_format: str, journal: str | None) -> None:
    """Search the commands and outputs of past runs."""
    from engine.console import log as log_view

    terminal = _terminal()
    store = _open_journal(journal)
    hits = store.search(text, limit) if store else []
    if output_format == "json":
        terminal.json(
            [
                {
                    "run": h.run.id,
                    "runbook": h.run.path,
                    "step": h.step,
                    "field": h.field,
                    "line": h.line,
                }
                for h in hits
            ]
        )
    else:
        log_view.search_hits(terminal, hits)


@log.command("verify")
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option("--all", "every", is_flag=True, help="Verify every run (the default without RUN).")
@click.option(
    "--since-head",
    metavar="HASH",
    help="A head printed earlier (`runbook log head`): fail if the journal no longer holds it.",
)
@JOURNAL
def log_verify(
    run_ref: str | None, every: bool, since_head: str | None, journal: str | None
) -> None:
    """Check the hash chains of the runs and between them."""
    from engine.console import log as log_view
    from engine.journal.query import RunNotFound

    terminal = _terminal()
    store = _open_journal(journal)
    if store is None:
        sys.exit(1 if since_head else 0)
    if run_ref and not every:
        try:
            results = store.verify(store.find_run(run_ref).id)
        except RunNotFound as exc:
            raise UserError(str(exc)) from None
        log_view.verifications(terminal, results)
        sys.exit(1 if any(not r.ok for r in results) else 0)
    checked = store.verify_journal(since_head)
    log_view.journal_verification(terminal, checked)
    sys.exit(0 if checked.ok else 1)


@log.command("head")
@FORMAT
@JOURNAL
def log_head(output_format: str, journal: str | None) -> None:
    """Print the journal's head, to catch a rollback later."""
    from engine.console import log as log_view

    store = _open_journal(journal)
    if store is None:
        raise UserError("no runs recorded yet")
    head, runs = store.head()
    log_view.head(_terminal(), head, runs, output_format == "json")


@log.command("export")
@click.argument("run_ref", metavar="RUN", default="last")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "markdown"]),
    default="markdown",
    show_default=True,
    help="JSON data, or a readable incident record.",
)
@JOURNAL
def log_export(run_ref: str, output_format: str, journal: str | None) -> None:
    """Export a run as JSON or as a Markdown incident record."""
    from engine.publish.export import json_parts, markdown_parts

    detail = _detail(journal, run_ref)
    parts = json_parts(detail) if output_format == "json" else markdown_parts(detail)
    for part in parts:  # written as made (a run's outputs never copied whole); click.echo
        click.echo(part, nl=False)  # leaves out colour codes where stdout is no terminal


@cli.group()
def journal() -> None:
    """Copy runs between journals; migrate a journal's schema."""


@journal.command("copy")
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
def journal_copy(source: str, target: str) -> None:
    """Copy every run from SRC to DST, then verify both.

    SRC and DST are SQLite files or postgresql:// URLs; runs already in DST are left alone."""
    from engine.console import log as log_view
    from engine.journal.copy import CopyError, copy_journal
    from engine.journal.location import exists, journal_location, shown

    src, dst = journal_location(source), journal_location(target)
    if not exists(src):
        raise UserError(f"no journal at {shown(src)}")
    try:
        report = copy_journal(src, dst)
    except CopyError as exc:
        raise UserError(str(exc)) from None
    log_view.copy_report(_terminal(), report)
    sys.exit(0 if report.ok else 1)


@journal.command("migrate")
@JOURNAL
def journal_migrate(journal: str | None) -> None:
    """Apply the schema versions this engine knows to the journal."""
    from engine.console import log as log_view
    from engine.journal.location import journal_location, shown
    from engine.journal.storage import open_store

    location = journal_location(journal)
    store = open_store(location)
    try:
        before, after = store.migrate()
    finally:
        store.close()
    log_view.migrated(_terminal(), shown(location), before, after)


def _detail(journal: str | None, run_ref: str) -> RunDetail:
    from engine.journal.query import RunNotFound

    store = _open_journal(journal)
    if store is None:
        raise UserError("no runs recorded yet")
    try:
        return store.read_run(store.find_run(run_ref))
    except RunNotFound as exc:
        raise UserError(str(exc)) from None


def _runbook_files(paths: tuple[Path, ...]) -> list[Path]:
    from engine.loader import RunbookNotFound, find_runbooks

    try:
        files = find_runbooks(list(paths))
    except RunbookNotFound as exc:
        raise UserError(str(exc)) from None
    if not files:
        raise UserError("no runbooks (*.md) found in " + ", ".join(map(str, paths)))
    return files


def main() -> None:
    """Entry point: user mistakes are one-line messages; a bug leaves its trace in a file."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        _terminal().error("interrupted")
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "runbook"
        _terminal().error(f"{exc.format_message()} (see `{command} --help`)")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _terminal().error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        from engine.journal.store import JournalError, JournalUnavailable

        if isinstance(exc, JournalError):  # JournalUnavailable is one: a usage mistake
            _terminal().error(str(exc))
            sys.exit(EXIT_USAGE if isinstance(exc, JournalUnavailable) else 1)
        sys.exit(_report_internal_error(exc))


def _report_internal_error(exc: BaseException) -> int:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="runbook-crash-", suffix=".txt", delete=False, encoding="utf-8"
    ) as handle:
        traceback.print_exception(exc, file=handle)
    _terminal().internal_error(f"{type(exc).__name__}: {exc}", handle.name)
    return EXIT_INTERNAL
