"""Benchmark: per-step overhead of `runbook run --yes`, against separate `bash -c` processes.

Writes a runbook of N (default 200) `echo step K` bash steps under one heading into a temporary
directory, then times, median (and best) of several alternating passes, each a real process:

- engine:   `runbook run FILE --yes`, end to end (the real CLI, stdout and stderr to pipes);
- baseline: N separate `bash -c 'echo step K'` processes (subprocess.run each, same pipes);
- start-up: `runbook show FILE` (interpreter start, imports, parse and plan; nothing runs);
- one step: `runbook run` of a one-step runbook (start-up plus the shell session's own start);
- shell:    the engine's ShellSession driven in this process, N `run_step` calls (session start
            not included): the pty shell's own cost per step, without the CLI around it.

Every run is journalled as usual, into a database in the temporary directory ($RUNBOOK_JOURNAL).
Target: (engine - baseline) / N <= 1.5 ms per step, start-up and journal writes included. Also
printed: the same overhead with the start-up (`runbook show`) taken out, and the marginal cost
of one more step. Prints a table; always exits 0 (a measurement).

    .venv/bin/python bench/steps.py [--steps N] [--reps N]
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

TARGET_MS = 1.5


def write_runbook(path: Path, steps: int) -> None:
    parts = ["# Echo steps", "Each step prints one line."]
    parts += [f"```bash\necho step {n}\n```" for n in range(steps)]
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


def timed(reps: int, passes: list[Callable[[], object]]) -> list[list[float]]:
    """Each pass run `reps` times, the passes alternating; every duration kept."""
    times: list[list[float]] = [[] for _ in passes]
    for _ in range(reps):
        for n, work in enumerate(passes):
            start = time.perf_counter()
            work()
            times[n].append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="echo steps (default 200)")
    parser.add_argument("--reps", type=int, default=5, help="timed passes (default 5)")
    args = parser.parse_args()
    steps, runbook = args.steps, runbook_command()
    problems: list[str] = []

    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        work = Path(tmp)
        many, one = work / "steps.md", work / "one.md"
        write_runbook(many, steps)
        write_runbook(one, 1)
        # The journal is written, as in any run, to a database in the temporary directory.
        journal = work / "journal.db"
        env = dict(os.environ, RUNBOOK_JOURNAL=str(journal))

        def engine() -> None:
            code, out, err = run_cli([runbook, "run", str(many), "--yes"], work, env)
            if code != 0 or f"step {steps - 1}\n".encode() not in out:
                problems.append(f"engine run: exit {code}: {err.decode(errors='replace')[-300:]}")

        def baseline() -> None:
            for n in range(steps):
                code, out, _ = run_cli(["bash", "-c", f"echo step {n}"], work, env)
                if code != 0 or out != f"step {n}\n".encode():
                    problems.append(f"baseline step {n}: exit {code}")

        def startup() -> None:
            code, _, err = run_cli([runbook, "show", str(many)], work, env)
            if code != 0:
                problems.append(f"show: exit {code}: {err.decode(errors='replace')[-300:]}")

        def one_step() -> None:
            code, _, err = run_cli([runbook, "run", str(one), "--yes"], work, env)
            if code != 0:
                problems.append(f"one-step run: exit {code}: {err.decode(errors='replace')[-300:]}")

        shell_times: list[float] = []

        def shell() -> None:
            shell_times.append(shell_session(steps))

        compile_engine()  # warm-up: .pyc files, the page cache, and the journal's creation
        startup()
        one_step()
        engine_t, base_t, start_t, one_t, _ = timed(
            args.reps, [engine, baseline, startup, one_step, shell]
        )
        journal_mb = sum(p.stat().st_size for p in work.glob("journal.db*")) / 1e6

    med = {
        "engine": statistics.median(engine_t),
        "baseline": statistics.median(base_t),
        "start-up": statistics.median(start_t),
        "one step": statistics.median(one_t),
        "shell": statistics.median(shell_times),
    }
    best = {
        "engine": min(engine_t),
        "baseline": min(base_t),
        "start-up": min(start_t),
        "one step": min(one_t),
        "shell": min(shell_times),
    }
    labels = {
        "engine": "engine (runbook run --yes)",
        "baseline": f"baseline ({steps} x bash -c)",
        "start-up": "start-up (runbook show)",
        "one step": "one-step run (runbook run)",
        "shell": f"shell ({steps} x ShellSession.run_step)",
    }
    print(f"runbook: {steps} echo steps; {args.reps} passes, alternating, after a warm-up")
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  cli: {runbook}\n")
    header = ("", "median s", "best s", "ms/step", "x baseline")
    print(f"{header[0]:<38}" + "".join(f"{cell:>12}" for cell in header[1:]))
    for key, label in labels.items():
        per_step = med[key] / steps * 1e3 if key not in ("start-up", "one step") else None
        cells = [
            f"{med[key]:.3f}",
            f"{best[key]:.3f}",
            f"{per_step:.3f}" if per_step is not None else "-",
            f"{med[key] / med['baseline']:.2f}",
        ]
        print(f"{label:<38}" + "".join(f"{cell:>12}" for cell in cells))

    overhead = (med["engine"] - med["baseline"]) / steps * 1e3
    no_startup = (med["engine"] - med["start-up"] - med["baseline"]) / steps * 1e3
    marginal = (med["engine"] - med["one step"]) / (steps - 1) * 1e3 if steps > 1 else 0.0
    shell_extra = (med["shell"] - med["baseline"]) / steps * 1e3
    verdict = "PASS" if overhead <= TARGET_MS else "FAIL"
    print(
        f"\noverhead per step = (engine - baseline) / {steps}: {overhead:.3f} ms"
        f"  (target <= {TARGET_MS} ms)  {verdict}"
    )
    print(f"  excluding start-up, (engine - start-up - baseline) / {steps}: {no_startup:.3f} ms")
    print(
        f"  marginal cost of one more step, (engine - one-step run) / {steps - 1}: "
        f"{marginal:.3f} ms  (bash -c: {med['baseline'] / steps * 1e3:.3f} ms)"
    )
    print(f"  shell session alone, (shell - baseline) / {steps}: {shell_extra:.3f} ms")
    print(
        f"journal: {journal_mb:.2f} MB after {args.reps} runs of {steps} steps"
        f" and {args.reps + 1} of one step"
    )
    for problem in problems[:5]:
        print("problem: " + problem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
