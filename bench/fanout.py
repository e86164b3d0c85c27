"""Benchmark: one step fanned out over 20 ssh targets, and a step's cost on a warm remote session.

Starts its own sshd on a loopback port (tests/sshd.py: keys generated for it, nothing of the
system touched) with 20 host aliases that all reach it, then measures, median of --reps passes:

- fan-out:  `runbook run --yes --forks 20` of a runbook whose one step runs on the 20-host
            group (the real CLI: start-up, 20 ssh master connections, sessions, the journal);
- slowest:  the same runbook with the step on one host, run for each of the 20 hosts in turn:
            the slowest of them (what the fan-out is compared with: target <= 1.5x);
- ssh loop: 20 sequential `ssh -F CONFIG hostN CMD`, the step's command each time (what an
            operator's shell loop costs);
- warm:     --steps `run_step` calls on an already started remote session (its master
            connection up), against the same on a local ShellSession: per-step time and ratio
            (target: a remote step <= 2x a local one).

The step's command is `sleep 0.2; uname -n` by default (--command). Prints a table; always
exits 0 (a measurement).

    .venv/bin/python bench/fanout.py [--hosts 20] [--reps 3] [--steps 200]

Measured on the development machine (2 cores shared with other work, load 1-5; the sshd and
all 20 "hosts" on those same cores, so every connection's server side is local CPU too):
`sleep 0.2` step: fan-out 6.4 s, slowest host 2.4 s (2.7x), 20 sequential ssh 13.2 s (2.05x
the fan-out); with a `sleep 3` step (before the sessions closed in parallel): fan-out 14.2 s,
slowest host 6.8 s (2.1x), 20 sequential ssh 77.7 s (5.5x). The fan-out's extra time is 20
ssh handshakes (about 0.5 s each here) and 20 session starts (about 0.2 s of sshd's each)
sharing two cores. A warm remote step: 2.2 ms against 1.1 ms local (2.04x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from sshd import start_sshd  # tests/sshd.py

from engine.remote import TargetSessions
from engine.shell import ShellSession, StepIO

RUNBOOK = Path(sys.executable).parent / "runbook"


def write_runbook(path: Path, target: str, command: str) -> None:
    """A one-step runbook whose step runs on `target` (a group, or one ssh destination)."""
    path.write_text(
        f"---\ntargets:\n  there: {target}\n---\n# Fan-out\n\n"
        f"```bash {{target: there}}\n{command}\n```\n",
        encoding="utf-8",
    )


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed:\n{done.stdout.decode()}{done.stderr.decode()}"
        )
    return took


def per_step(session: ShellSession, steps: int) -> float:
    io = StepIO(on_output=lambda _: None)
    session.run_step("true", io)
    start = time.perf_counter()
    for n in range(steps):
        if not session.run_step(f"echo step {n}", io).ok:
            raise RuntimeError("a step failed")
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--command", default="sleep 0.2; uname -n")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    server, process = start_sshd(work / "sshd", args.hosts)
    hosts = [f"host{n}" for n in range(1, args.hosts + 1)]
    env = dict(os.environ, RUNBOOK_JOURNAL=str(work / "journal.db"), NO_COLOR="1")
    try:
        cli = [str(RUNBOOK), "run", "--yes", "--ssh-config", str(server.config)]
        fan = work / "fan.md"
        write_runbook(fan, f"{{group: [{', '.join(hosts)}]}}", args.command)
        fan_times = [
            timed([*cli, "--forks", str(args.hosts), str(fan)], env) for _ in range(args.reps)
        ]
        singles = []
        for host in hosts:
            one = work / f"one-{host}.md"
            write_runbook(one, f"{{ssh: {host}}}", args.command)
            singles.append(timed([*cli, str(one)], env))
        loop_times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            for host in hosts:
                subprocess.run(
                    ["ssh", "-F", str(server.config), host, args.command],
                    capture_output=True,
                    check=True,
                )
            loop_times.append(time.perf_counter() - start)
        remote = TargetSessions(str(server.config))
        try:
            warm = per_step(remote.session("host1", "host1", None), args.steps)
        finally:
            remote.close()
        local_session = ShellSession()
        try:
            local = per_step(local_session, args.steps)
        finally:
            local_session.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    fan_wall = statistics.median(fan_times)
    slowest = max(singles)
    loop = statistics.median(loop_times)
    rows = [
        (f"fan-out, {args.hosts} hosts, --forks {args.hosts} (CLI)", fan_wall, "1.00x"),
        ("slowest single host (CLI)", slowest, f"fan-out / this = {fan_wall / slowest:.2f}x"),
        (f"{args.hosts} sequential ssh HOST CMD", loop, f"this / fan-out = {loop / fan_wall:.2f}x"),
        ("remote step, warm session", warm, f"remote / local = {warm / local:.2f}x"),
        ("local step", local, "1.00x"),
    ]
    print(f"{'measurement':<45} {'seconds':>10}  ratio")
    for name, seconds, ratio in rows:
        shown = f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds:.3f} s"
        print(f"{name:<45} {shown:>10}  {ratio}")
    print(
        f"\ntargets: fan-out <= 1.5x the slowest host ({fan_wall / slowest:.2f}x);"
        f" a warm remote step <= 2x a local one ({warm / local:.2f}x)"
    )


if __name__ == "__main__":
    main()
