"""Starting a run: parameters from the command line, a file or the operator; step selection;
the shell session, the console and the runner wired together. The CLI calls only this."""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.console.run import RunConsole, print_dry_run
from engine.console.terminal import Terminal
from engine.diagnostics import DiagnosticSink, did_you_mean
from engine.events import Fanout, Provenance, RunStatus, SessionState
from engine.journal import lock
from engine.journal.location import Location, shown
from engine.journal.storage import RunWriter, Store, open_store
from engine.loader import read_regular_file
from engine.model import Runbook, Target
from engine.parameters import Parameters
from engine.plan import Plan, resolve_params
from engine.run import RunAborted, Runner, RunOptions, dry_run_commands, preflight
from engine.shell import ShellError, ShellSession
from engine.targets import read_targets

if TYPE_CHECKING:
    from engine.remote import TargetSessions
    from engine.yamlsafe import YamlDocument

EXIT_FOR_STATUS = {
    RunStatus.SUCCEEDED: 0,
    RunStatus.FAILED: 1,
    RunStatus.ABORTED: 1,
    RunStatus.INTERRUPTED: 130,
}


class LaunchError(Exception):
    """A run that cannot start as asked: a usage error (exit 2)."""


@dataclass(frozen=True, slots=True)
class Launch:
    """Everything a run (or a resume) is started with, resolved and checked."""

    plan: Plan
    params: Parameters
    options: RunOptions
    terminal: Terminal
    interactive: bool
    journal: Location  # a SQLite file or a postgresql:// URL
    force: bool = False
    captured: Mapping[str, str] = field(default_factory=dict)  # on resume: values kept so far
    quiet: bool = False  # --quiet: the prose between steps is not shown
    restore: SessionState | None = None  # on resume: the shell session to rebuild first
    # On resume: each target's session, rebuilt when it starts.
    target_states: Mapping[str, SessionState] = field(default_factory=dict)
    ssh_config: str | None = None  # --ssh-config FILE (over the front matter's ssh_config)


def read_text_file(path: Path, what: str) -> str:
    """A text file given on the command line, read safely; a problem is one line naming it."""
    about = f" {what}" if what else ""
    try:
        return read_regular_file(path).decode("utf-8")
    except OSError as exc:
        raise LaunchError(f"{path}: cannot read{about}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise LaunchError(f"{path}: cannot read{about}: {exc}") from None


def read_yaml_file(path: Path, what: str, text: str | None = None) -> YamlDocument:
    """A YAML file given on the command line (`--params-file`, `--inventory`), read safely;
    any problem is one line naming the file (and the line)."""
    from engine.yamlsafe import YamlError, load_yaml  # PyYAML, only for a file given

    if text is None:
        text = read_text_file(path, what)
    loaded = load_yaml(text)
    if isinstance(loaded, YamlError):
        shown = f"{what} is not YAML: " if what else ""
        raise LaunchError(f"{path}:{loaded.line + 1}: {shown}{loaded.message}")
    return loaded


def parse_param_args(pairs: tuple[str, ...], params_file: Path | None) -> dict[str, str]:
    """`-p NAME=VALUE` pairs over a YAML mapping file's values."""
    values: dict[str, str] = {}
    if params_file is not None:
        loaded = read_yaml_file(params_file, "")
        if not isinstance(loaded.value, dict) or any(
            isinstance(v, dict | list) for v in loaded.value.values()
        ):
            raise LaunchError(f"{params_file}: expected a mapping of parameter names to values")
        # Each value as written: YAML 1.1 would turn 1.10 into 1.1 and 0644 into 420.
        values.update(
            {
                str(k): "" if v is None else (loaded.text_of(str(k)) or _text(v))
                for k, v in loaded.value.items()
            }
        )
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
            + ", ".join(_described(runbook, name) for name in missing)
            + " (give each with -p NAME=VALUE)"
        )
    if missing:
        asker = RunConsole(terminal, None, True)
        for name in missing:
            param = runbook.param(name)
            if param is not None:
                values[name] = asker.ask_param(param)
    return values


def _described(runbook: Runbook, name: str) -> str:
    param = runbook.param(name)
    if param is None or not param.implicit:
        return name
    return f"{name} (from the text, line {param.line})"


def run_options(
    plan: Plan,
    yes: bool,
    allow_danger: bool,
    start_from: str | None,
    only: str | None,
    skip: str | None,
    run_guessed: bool = False,
    choose: tuple[str, ...] = (),
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
        run_guessed=run_guessed,
        choose=choose,
    )


def dry_run(plan: Plan, params: Parameters, options: RunOptions, terminal: Terminal) -> None:
    try:
        commands = dry_run_commands(plan, params, options.select(plan))
    except RunAborted as exc:
        raise LaunchError(str(exc)) from None
    print_dry_run(
        terminal, plan, commands, len(options.select(plan)), options.forks, options.targets
    )


def session_environment(runbook: Runbook, values: Mapping[str, str]) -> dict[str, str]:
    """The steps' environment: ours, the runbook's env, and every parameter in upper case."""
    env = dict(os.environ)
    env.update(dict(runbook.env))
    env.update({name.upper(): value for name, value in values.items()})
    env["RUNBOOK_PATH"] = runbook.path
    # The engine's own commands, for runbooks that operate the engine (journal, site).
    env["RUNBOOK"] = shutil.which("runbook") or str(Path(sys.argv[0]).resolve())
    env["RUNBOOK_PYTHON"] = sys.executable
    return env


def check_before_running(plan: Plan, params: Parameters, options: RunOptions) -> None:
    problems = preflight(plan, params, options)
    if problems:
        raise LaunchError("; ".join(problems))


def new_run_id() -> str:
    """Sortable by time, readable, unique: 20261123-183903-a1b2c3."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def provenance(runbook: Runbook, run_id: str, journal: Location) -> Provenance:
    """Who runs which version: operator, host, and the runbook's git commit and dirty flag."""
    path = Path(runbook.path)
    directory = str(path.resolve().parent)

    def git(*args: str) -> subprocess.Popen[str] | None:
        try:
            return subprocess.Popen(
                ["git", "-C", directory, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return None

    def answer(process: subprocess.Popen[str] | None) -> str | None:
        if process is None:
            return None
        try:
            out, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
        return out.strip() if process.returncode == 0 else None

    # The questions at once: each git costs a process start, and none waits on another. Out
    # of any repository only the operator's email is asked.
    tracked = _maybe_in_repository(directory)
    asked = [
        git("rev-parse", "HEAD") if tracked else None,
        git("status", "--porcelain", "--", str(path.resolve())) if tracked else None,
        git("config", "user.email"),
    ]
    commit, status, email = (answer(process) for process in asked)
    return Provenance(
        run_id=run_id,
        journal=shown(journal),  # a URL's password is never recorded
        digest=runbook.digest,
        operator=getpass.getuser(),
        host=os.uname().nodename,
        pid=os.getpid(),
        git_commit=commit or None,
        git_dirty=bool(status) if commit else None,
        email=email or None,
    )


def _maybe_in_repository(directory: str) -> bool:
    """Whether git could find a repository for `directory`: a `.git` in it or above, or
    $GIT_DIR set (git itself still decides)."""
    if os.environ.get("GIT_DIR"):
        return True
    current = Path(directory)
    return any((folder / ".git").exists() for folder in (current, *current.parents))


def read_inventory(path: Path) -> tuple[Target, ...]:
    """`--inventory FILE`: targets usable across runbooks. Either `hosts:` (name: destination,
    or {ssh: ...} / {exec: ...}) and `groups:` (name: [hosts]), or a `targets:` mapping as in
    front matter, or an Ansible inventory as it is (INI or YAML)."""
    from engine.inventory import (  # loaded only when an inventory is given
        looks_like_ansible_yaml,
        looks_like_ini,
        read_ini,
        read_yaml,
    )

    text = read_text_file(path, "the inventory")
    if looks_like_ini(text):
        return _ansible_inventory(path, lambda: read_ini(text))
    loaded = read_yaml_file(path, "the inventory", text)
    value = loaded.value
    sink = DiagnosticSink(str(path))

    def line(*keys: str) -> int:
        found = loaded.line_of(*keys)
        return 1 + (found or 0)

    if isinstance(value, str):  # host names alone, one a line: INI without a section
        return _ansible_inventory(path, lambda: read_ini(text))
    if looks_like_ansible_yaml(value):
        assert isinstance(value, dict)
        return _ansible_inventory(path, lambda: read_yaml(value, line))

    if isinstance(value, dict) and set(value) <= {"hosts", "groups"} and value:
        hosts = value.get("hosts") or {}
        groups = value.get("groups") or {}
        if not isinstance(hosts, dict) or not isinstance(groups, dict):
            raise LaunchError(f"{path}:1: 'hosts' and 'groups' must be mappings")
        merged: dict[str, object] = {str(k): str(k) if v is None else v for k, v in hosts.items()}
        merged.update({str(k): {"group": v} for k, v in groups.items()})

        def where(*keys: str) -> int:
            name = keys[0] if keys else ""
            section = "groups" if name in groups else "hosts"
            return line(section, *keys)

        targets = read_targets(merged, where, sink)
    elif isinstance(value, dict) and "targets" in value:
        targets = read_targets(value["targets"], lambda *k: line("targets", *k), sink)
    else:
        targets = read_targets(value, line, sink)
    errors = [d for d in sink.items if d.is_error]
    if errors:
        first = errors[0]
        raise LaunchError(f"{path}:{first.location.line}: {first.message}")
    return targets


def _ansible_inventory(path: Path, read: Callable[[], tuple[Target, ...]]) -> tuple[Target, ...]:
    """An Ansible inventory's targets, or its first unread construct as `FILE:LINE: ...`."""
    from engine.inventory import InventoryError

    try:
        return read()
    except InventoryError as problem:
        hint = f" ({problem.hint})" if problem.hint else ""
        raise LaunchError(f"{path}:{problem.line}: {problem.message}{hint}") from None


def with_targets(options: RunOptions, forks: int | None, inventory: Path | None) -> RunOptions:
    """The options with `--forks` and the `--inventory` file's targets."""
    targets = read_inventory(inventory) if inventory is not None else ()
    return dataclasses.replace(options, forks=forks, targets=targets)


def remote_sessions(launch: Launch) -> TargetSessions | None:
    """The run's sessions on targets, when a step has a target: ssh with the config given."""
    runbook = launch.plan.runbook
    if not any(s.target for s in runbook.steps):
        return None
    config = launch.ssh_config
    if config is None and runbook.ssh_config:
        config = str(Path(runbook.path).parent / os.path.expanduser(runbook.ssh_config))
    if config is not None and not os.path.isfile(config):
        raise LaunchError(f"{runbook.path}: ssh config {config} is not a file")
    exports = dict(runbook.env)
    exports.update({name.upper(): value for name, value in launch.params.values.items()})
    exports["RUNBOOK_PATH"] = runbook.path
    size = shutil.get_terminal_size((80, 24))
    from engine.remote import TargetSessions  # loaded only for a run with targets

    terminal = launch.terminal

    def restored(host: str, state: SessionState, problems: list[str]) -> None:
        terminal.warning(
            f"restored the shell session on {host} of the last finished step there: "
            + restored_summary(state)
        )
        for problem in problems:
            terminal.warning(f"could not restore on {host}: {problem}")

    return TargetSessions(
        config,
        dimensions=(size.lines, size.columns),
        secret_variables=tuple(p.name.upper() for p in runbook.params if p.secret),
        exports=exports,
        states=launch.target_states,
        on_restored=restored,
    )


def run_plan(launch: Launch) -> int:
    """Run the plan in a new shell session, journalled; the exit status for the CLI."""
    check_before_running(launch.plan, launch.params, launch.options)
    runbook = launch.plan.runbook
    abspath = str(Path(runbook.path).resolve())
    run_id = new_run_id()
    facts = provenance(runbook, run_id, launch.journal)
    store = open_store(launch.journal)
    try:
        replaced = acquire_lock(store, runbook.path, abspath, facts, launch.force, launch.terminal)
        if replaced:
            facts = dataclasses.replace(facts, replaced_lock=replaced.describe())
        writer = store.start_run(run_id, abspath, runbook.text)
        try:
            return run_in_session(launch, writer, facts)
        finally:
            store.unlock(abspath, run_id)
    finally:
        store.close()


def acquire_lock(
    store: Store, path: str, abspath: str, facts: Provenance, force: bool, terminal: Terminal
) -> lock.Holder | None:
    try:
        replaced = store.lock(abspath, facts.run_id, facts.operator, os.getpid(), force)
    except lock.RunLocked as exc:
        raise LaunchError(
            f"{path} is already running: {exc.holder.describe()}; use --force to run it anyway"
        ) from None
    if replaced is not None:
        terminal.warning(
            f"running beside {replaced.describe()} (--force)"
            if lock.is_live(replaced)
            else f"replaced the stale lock of {replaced.describe()}: its process is gone"
        )
    return replaced


def restore_session(session: ShellSession, state: SessionState, terminal: Terminal) -> None:
    """On resume: the recorded session back before anything runs, and say what came back."""
    problems = session.restore(state)
    terminal.warning(
        "restored the shell session of the last finished step: " + restored_summary(state)
    )
    for problem in problems:
        terminal.warning(f"could not restore: {problem}")


def restored_summary(state: SessionState) -> str:
    """`directory /srv, variables FOO BAZ, functions myfn`: what a resume brings back."""
    variables = [m.group(1) for m in _DECLARED.finditer(state.variables)]
    functions = [m.group(1) for m in _DEFINED.finditer(state.functions)]
    parts = [f"directory {state.cwd}"]
    if variables:
        parts.append("variables " + _some(variables))
    if functions:
        parts.append("functions " + _some(functions))
    return ", ".join(parts)


def _some(names: list[str], shown: int = 12) -> str:
    more = len(names) - shown
    return " ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


_DECLARED = re.compile(r"^declare -\S+ ([A-Za-z_][A-Za-z0-9_]*)", re.M)
_DEFINED = re.compile(r"^(\S+) \(\) $", re.M)


def run_in_session(
    launch: Launch, writer: RunWriter, facts: Provenance, resumed: bool = False
) -> int:
    plan, terminal = launch.plan, launch.terminal
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
            env=session_environment(runbook, launch.params.values),
            dimensions=(size.lines, size.columns),
            secret_variables=tuple(p.name.upper() for p in runbook.params if p.secret),
        )
    except ShellError as exc:
        raise LaunchError(str(exc)) from None
    console = RunConsole(terminal, plan, launch.interactive, launch.quiet)
    sink = Fanout(writer, console)
    remote = None
    try:
        remote = remote_sessions(launch)
        if launch.restore is not None:
            restore_session(session, launch.restore, terminal)
        runner = Runner(
            plan,
            launch.params,
            session,
            console,
            sink,
            launch.options,
            facts,
            launch.captured,
            remote=remote,
        )
        result = runner.run(resumed=resumed)
    finally:
        if remote is not None:
            remote.close()
        session.close()
        writer.close()  # output still on its way to the journal is committed first
    terminal.run_footer(facts.run_id)
    return EXIT_FOR_STATUS[result.status]
