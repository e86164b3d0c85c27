"""The `runbook` command: a thin layer of click commands over the pipeline stages."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import click

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
