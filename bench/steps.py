"""Benchmark: start-up and per-step cost of `runbook run --yes`, against `bash -c` per step,
`python -c pass` and a peer runner, all measured in the same run.

Writes a runbook of N (default 50) `echo step K` bash steps under one heading, and one of a
single step, into a temporary directory, then times each of these, median (and best) of
several alternating passes, each a real process with stdout and stderr to pipes:

- `python -c pass` with the engine's interpreter: the floor every figure is a ratio of;
- `python -c 'import click, pexpect, sqlite3'`: the libraries any run loads (the CLI, the pty,
  the journal), a floor no change inside the engine can go below;
- `runbook --help`; `runbook run ONE --yes` (start-up, plus the shell session's own start);
  `runbook run MANY --yes`; the one-step run with the plan cache off (a file never run
  before: the parser loaded) and without bytecode (PYTHONPYCACHEPREFIX at an empty directory,
  nothing written: what an install that did not precompile pays on every start);
- `bash -c 'echo step K'` for one step and for each of the N;
- the same runbooks through a peer runner (runmd, which runs only named blocks, each here
  `bash {name=sK}`, and only from a relative path), installed from the package registry into
  a throw-away virtualenv; when the registry cannot be reached it is skipped with a note;
- the engine's ShellSession driven in this process, N `run_step` calls (session start not
  included): the pty shell's own cost per step;
- the installed command of a fresh clone (the branch's last commit, `git clone`, installed with
  pip, not editable, into a throw-away virtualenv that borrows this one's dependencies): its
  first one-step run (no plan cache yet), then its median; skipped with a note when it cannot
  be built.

Every engine run is journalled as usual, into a database in the temporary directory
($RUNBOOK_JOURNAL), with its plan cache there too ($RUNBOOK_PLAN_CACHE). Targets (issue 17):
one step <= 80 ms, `--help` <= 50 ms, N=50 steps <= 0.15 s, both ahead of the peer; printed
also as ratios to `python -c pass` so they carry to other machines. The load average is
printed before and after: on a shared machine the figures are only as quiet as it was.
Always exits 0 (a measurement).

    .venv/bin/python bench/steps.py [--steps N] [--reps N] [--no-peer] [--peer-venv DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine_cli import compile_engine, runbook_command  # bench/engine_cli.py

from engine.shell import ShellSession, StepIO

PEER = "runmd"
TARGETS = {"one step": 0.080, "--help": 0.050, "many steps": 0.150}
# What any run imports before a line of the engine runs: the CLI (click), the pty (pexpect),
# the journal (sqlite3). Its time is the floor no change inside the engine can go below.
IMPORTS = "import click, pexpect, sqlite3"
LIBRARIES = "python -c 'import click, pexpect, sqlite3'"


def write_runbook(path: Path, steps: int, named: bool = False) -> None:
    parts = ["# Echo steps", "Each step prints one line."]
    info = "bash {{name=s{n}}}" if named else "bash"
    parts += [f"```{info.format(n=n)}\necho step {n}\n```" for n in range(steps)]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes, bytes]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, check=False)
    return done.returncode, done.stdout, done.stderr


def shell_session(steps: int) -> float:
    """Seconds for `steps` run_step calls in one already started ShellSession."""
    session = ShellSession()
    try:
        io = StepIO(on_output=lambda _: None)
        start = time.perf_counter()
        for n in range(steps):
            outcome = session.run_step(f"echo step {n}", io)
            if not outcome.ok:
                raise RuntimeError(f"shell step {n} failed: {outcome}")
        return time.perf_counter() - start
    finally:
        session.close()


def install_peer(venv: Path) -> tuple[Path | None, str]:
    """The peer's command, installed into `venv` from the registry; or None and why not."""
    command = venv / "bin" / PEER
    if command.exists():
        return command, f"{PEER} from {venv}"
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # pip of this interpreter, installing into the throw-away environment.
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin" / "python"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PEER,
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        why = stderr.decode(errors="replace").strip().splitlines()[-1:] or [str(exc)]
        return None, f"{PEER} skipped: could not install it from the registry ({why[0][:160]})"
    return (
        (command, f"{PEER} installed into a throw-away virtualenv")
        if command.exists()
        else (
            None,
            f"{PEER} skipped: installed, but no {PEER} command",
        )
    )


def install_clone(work: Path) -> tuple[Path | None, str]:
    """`runbook` of a fresh clone of this repository's HEAD, installed as a user would."""
    repo = Path(__file__).resolve().parent.parent
    clone, venv = work / "clone", work / "clone-venv"
    try:
        subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", f"file://{repo}", str(clone)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        # The dependencies from this virtualenv (a path line: its own .pth files, the
        # editable install among them, are not run), the engine from the clone.
        site = next((venv / "lib").glob("python*/site-packages"))
        here = next(p for p in sys.path if p.endswith("site-packages"))
        (site / "dependencies.pth").write_text(here + "\n", encoding="utf-8")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(venv / "bin" / "python"),
                "install",
                "--quiet",
                "--no-deps",
                "--disable-pip-version-check",
                str(clone),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, StopIteration, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        why = stderr.decode(errors="replace").strip().splitlines()[-1:] or [repr(exc)]
        return None, f"fresh clone skipped: could not install it ({why[0][:160]})"
    command = venv / "bin" / "runbook"
    return (
        (command, "fresh clone installed (pip, not editable)")
        if command.exists()
        else (
            None,
            "fresh clone skipped: installed, but no runbook command",
        )
    )


def timed(reps: int, passes: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Each pass run `reps` times, the passes alternating; every duration kept."""
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(reps):
        for name, work in passes.items():
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="echo steps (default 50)")
    parser.add_argument("--reps", type=int, default=9, help="timed passes (default 9)")
    parser.add_argument("--no-peer", action="store_true", help=f"do not install {PEER}")
    parser.add_argument("--peer-venv", type=Path, help=f"a virtualenv holding {PEER} to reuse")
    parser.add_argument("--no-clone", action="store_true", help="skip the fresh clone's rows")
    args = parser.parse_args()
    steps, runbook = args.steps, runbook_command()
    problems: list[str] = []
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        work = Path(tmp)
        many, one = work / "steps.md", work / "one.md"
        write_runbook(many, steps)
        write_runbook(one, 1)
        peer_many, peer_one = work / "peer-steps.md", work / "peer-one.md"
        write_runbook(peer_many, steps, named=True)
        write_runbook(peer_one, 1, named=True)
        (work / "home").mkdir()
        env = dict(
            os.environ,
            RUNBOOK_JOURNAL=str(work / "journal.db"),
            RUNBOOK_PLAN_CACHE=str(work / "plans"),
        )
        unplanned = dict(env, RUNBOOK_PLAN_CACHE="off")
        no_bytecode = dict(
            env, PYTHONPYCACHEPREFIX=str(work / "no-pyc"), PYTHONDONTWRITEBYTECODE="1"
        )
        # The peer keeps its configuration and history under $HOME: a throw-away one.
        peer_env = dict(os.environ, HOME=str(work / "home"))

        def check(name: str, argv: list[str], environ: dict[str, str], last: str = "") -> None:
            code, out, err = run_cli(argv, work, environ)
            if code != 0 or (last and last.encode() not in out):
                problems.append(f"{name}: exit {code}: {err.decode(errors='replace')[-300:]}")

        last = f"step {steps - 1}\n"
        passes: dict[str, Callable[[], object]] = {
            "python -c pass": lambda: check("python", [sys.executable, "-c", "pass"], env),
            "runbook --help": lambda: check("--help", [runbook, "--help"], env),
            LIBRARIES: lambda: check("libraries", [sys.executable, "-c", IMPORTS], env),
            "engine, 1 step": lambda: check(
                "one", [runbook, "run", str(one), "--yes"], env, "step 0\n"
            ),
            f"engine, {steps} steps": lambda: check(
                "many", [runbook, "run", str(many), "--yes"], env, last
            ),
            "engine, 1 step, parsed (no cache)": lambda: check(
                "unplanned", [runbook, "run", str(one), "--yes"], unplanned, "step 0\n"
            ),
            "bash -c, 1 step": lambda: check("bash", ["bash", "-c", "echo step 0"], env),
            f"bash -c, {steps} steps": lambda: [
                check("bash", ["bash", "-c", f"echo step {n}"], env) for n in range(steps)
            ],
        }
        note = f"{PEER} skipped (--no-peer)"
        if not args.no_peer:
            peer, note = install_peer(args.peer_venv or work / "peer-venv")
            if peer is not None:
                passes[f"{PEER}, 1 step"] = lambda: check(
                    PEER, [str(peer), "run", "all", "-f", peer_one.name], peer_env, "step 0"
                )
                passes[f"{PEER}, {steps} steps"] = lambda: check(
                    PEER, [str(peer), "run", "all", "-f", peer_many.name], peer_env, last
                )
        shell_times: list[float] = []
        passes[f"shell session, {steps} x run_step"] = lambda: shell_times.append(
            shell_session(steps)
        )

        clone_note = "fresh clone skipped (--no-clone)"
        clone_first: float | None = None
        if not args.no_clone:
            fresh, clone_note = install_clone(work)
            if fresh is not None:
                clean = dict(env, RUNBOOK_PLAN_CACHE=str(work / "clone-plans"))
                clean["PYTHONDONTWRITEBYTECODE"] = "1"  # what it has is what its install wrote
                start = time.perf_counter()
                check("clone", [str(fresh), "run", str(one), "--yes"], clean, "step 0\n")
                clone_first = time.perf_counter() - start
                passes["fresh clone installed, 1 step"] = lambda: check(
                    "clone", [str(fresh), "run", str(one), "--yes"], clean, "step 0\n"
                )

        compile_engine()  # warm-up: .pyc files, the page cache, the journal, the plan cache
        for work_pass in passes.values():
            work_pass()
        times = timed(args.reps, passes)
        times[f"shell session, {steps} x run_step"] = shell_times[-args.reps :]
        # Without bytecode every module is compiled: slow, so fewer passes.
        times["engine, 1 step, no bytecode"] = timed(
            max(3, args.reps // 3),
            {
                "x": lambda: check(
                    "no-pyc", [runbook, "run", str(one), "--yes"], no_bytecode, "step 0\n"
                )
            },
        )["x"]
        journal_mb = sum(p.stat().st_size for p in work.glob("journal.db*")) / 1e6

    load_after = os.getloadavg()
    med = {name: statistics.median(values) for name, values in times.items()}
    floor = med["python -c pass"]
    print(f"runbooks: 1 and {steps} echo steps; {args.reps} passes, alternating, after a warm-up")
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  cli: {runbook}")
    print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}")
    print(f"peer: {note}")
    first = f"; its first run: {clone_first:.3f} s" if clone_first is not None else ""
    print(f"{clone_note}{first}\n")
    header = ("", "median s", "best s", "x python", "target s", "")
    print(f"{header[0]:<40}" + "".join(f"{cell:>10}" for cell in header[1:]))
    for name, values in times.items():
        target = _target(name, steps)
        verdict = "" if target is None else ("PASS" if med[name] <= target else "FAIL")
        cells = [
            f"{med[name]:.3f}",
            f"{min(values):.3f}",
            f"{med[name] / floor:.2f}",
            f"{target:.3f}" if target is not None else "-",
            verdict,
        ]
        print(f"{name:<40}" + "".join(f"{cell:>10}" for cell in cells))

    one_s, many_s = med["engine, 1 step"], med[f"engine, {steps} steps"]
    marginal = (many_s - one_s) / (steps - 1) * 1e3 if steps > 1 else 0.0
    bash_step = med[f"bash -c, {steps} steps"] / steps * 1e3
    print(
        f"\nmarginal cost of one more step, (engine {steps} - engine 1) / {steps - 1}:"
        f" {marginal:.3f} ms  (bash -c: {bash_step:.3f} ms a step)"
    )
    shell_step = med[f"shell session, {steps} x run_step"] / steps * 1e3
    print(f"shell session alone: {shell_step:.3f} ms a step")
    print(
        f"start-up beyond python -c pass: {(one_s - floor) * 1e3:.1f} ms"
        f" (--help: {(med['runbook --help'] - floor) * 1e3:.1f} ms)"
    )
    libraries = med[LIBRARIES]
    print(
        f"the libraries every run imports ({IMPORTS.removeprefix('import ')}):"
        f" {libraries * 1e3:.1f} ms, {libraries / floor:.2f} x python; the 1-step target is"
        f" {TARGETS['one step'] / floor:.2f} x python here, --help's"
        f" {TARGETS['--help'] / floor:.2f} x"
    )
    if f"{PEER}, 1 step" in med:
        for label, ours, theirs in (
            ("1 step", one_s, med[f"{PEER}, 1 step"]),
            (f"{steps} steps", many_s, med[f"{PEER}, {steps} steps"]),
        ):
            ahead = "ahead" if ours < theirs else "BEHIND"
            print(f"vs {PEER}, {label}: {ours / theirs:.2f} of its time ({ahead})")
    print(f"journal: {journal_mb:.2f} MB after every run above")
    for problem in problems[:5]:
        print("problem: " + problem)
    return 0


def _target(name: str, steps: int) -> float | None:
    if name == "engine, 1 step":
        return TARGETS["one step"]
    if name == "runbook --help":
        return TARGETS["--help"]
    if name == f"engine, {steps} steps" and steps == 50:
        return TARGETS["many steps"]
    return None


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


if __name__ == "__main__":
    raise SystemExit(main())
