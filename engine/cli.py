"""The `runbook` command: a thin layer of click commands over the pipeline stages."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import click

from engine import launch
from engine.check import CheckResult, check_runbook, fix_file
from engine.console import Terminal
from engine.loader import RunbookNotFound, find_runbooks, read_runbook
from engine.plan import plan_runbook

EXIT_USAGE = 2
EXIT_INTERNAL = 70

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

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def]
        Terminal().error(self.message)


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
    terminal = Terminal()
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
    terminal = Terminal()
    try:
        plan = plan_runbook(read_runbook(path))
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
) -> None:
    """Run a runbook step by step, asking before each step."""
    terminal = Terminal()
    try:
        runbook = read_runbook(path)
        plan = plan_runbook(runbook)
        if not plan.ok:
            terminal.diagnostics([d for d in plan.diagnostics if d.is_error])
            raise UserError(f"{path} has errors; fix them first (see `runbook check {path}`)")
        interactive = sys.stdin.isatty() and not yes
        given = launch.parse_param_args(params, params_file)
        options = launch.run_options(plan, yes, allow_danger, start_from, only, skip)
        values = launch.collect_params(runbook, given, interactive and not dry_run, terminal)
        if dry_run:
            launch.dry_run(plan, values, terminal)
            return
        if not interactive and not yes:
            raise UserError("no terminal to ask on: use --yes for an unattended run")
        status = launch.run_plan(plan, values, options, terminal, interactive)
    except (RunbookNotFound, launch.LaunchError) as exc:
        raise UserError(str(exc)) from None
    sys.exit(status)


def _runbook_files(paths: tuple[Path, ...]) -> list[Path]:
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
        Terminal().error("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        Terminal().error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        sys.exit(_report_internal_error(exc))


def _report_internal_error(exc: BaseException) -> int:
    with tempfile.NamedTemporaryFile(
        "w", prefix="runbook-crash-", suffix=".txt", delete=False, encoding="utf-8"
    ) as handle:
        traceback.print_exception(exc, file=handle)
    Terminal().internal_error(f"{type(exc).__name__}: {exc}", handle.name)
    return EXIT_INTERNAL
