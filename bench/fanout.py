"""Benchmark: one step fanned out over 20 ssh targets, and a step's cost on a warm remote session.

Starts its own sshd on a loopback port (tests/sshd.py: keys generated for it, nothing of the
system touched) with 20 host aliases that all reach it, then measures, median of --reps passes:

- fan-out:  `runbook run --yes --forks 20` of a runbook whose one step runs on the 20-host
            group (the real CLI: start-up, 20 ssh master connections, sessions, the journal);
- slowest:  the same runbook with the step on one host, run for each of the 20 hosts in turn:
            the slowest of them (what the fan-out is compared with: target <= 1.5x);
- ssh loop: 20 sequential `ssh -F CONFIG hostN CMD`, the step's command each time (what an
            operator's shell loop costs);
- warm:     `run_step` calls on an already started remote session (its master connection
            up), against the same on a local ShellSession, in alternating batches of 20 so a
            change in the machine's load falls on both: the median batch's time per step, and
            the ratio (target: a remote step <= 2x a local one).

The fan-out and single-host rows also give the CPU seconds spent here (the engine, its ssh
clients and master connections) and by the "hosts" (sshd and everything it started): the
hosts are this machine, so their work shares its cores with the engine's, which a real
fan-out's hosts do not. `--kex ALGORITHMS` writes a `KexAlgorithms` line into the bench's
ssh config (OpenSSH 9's default, sntrup761x25519, costs about 0.1 s of CPU per connection on
each side; `curve25519-sha256` about a tenth of it): the key exchange is the operator's choice,
never the engine's.

The step's command is `sleep 0.2; uname -n` by default (--command). Prints a table with the
load average and each target's PASS or FAIL; always exits 0 (a measurement).

    .venv/bin/python bench/fanout.py [--hosts 20] [--reps 3] [--batches 15] [--kex ALGORITHMS]

Measured on the development machine (2 cores shared with two other engineers' test runs,
load average 1-3), 20 hosts, `sleep 0.2; uname -n`, after the changes of issue 16's second
round (each row: the range over the runs, and their median):

    key exchange        runs  fan-out       slowest host  ratio                CPU here / hosts
    ssh default         3     3.15-4.17 s   1.19-1.61 s   2.46-3.51x (2.47x)   3.1-3.6 / 1.1-1.2 s
    curve25519-sha256   6     1.38-1.99 s   0.99-1.55 s   1.26-1.75x (1.45x)   0.9-1.3 / 0.7-1.1 s
    warm remote step    11    1.64-2.47 ms against 0.93-1.58 ms local: 1.47-2.26x (1.72x)

With OpenSSH 9.2's default key exchange each connection costs the client about 0.13 s of
CPU (sntrup761 key generation): 20 of them on 2 cores are the fan-out's extra wall time. The
engine's own cost per host is about 0.02 s of CPU (one master, one session, no extra ssh
process to close it). The slowest single host is the slowest of 20 runs, so a busy moment on
the machine lowers the ratio; the warm ratio moves with the load by +-0.3.
Before this measurement the test hosts also ran the machine user's ~/.bashrc (a pyenv init,
0.2 s of CPU) for every session: tests/sshd.py no longer lets them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Timed:
    """One run's wall time and CPU seconds: here (the CLI, its ssh clients and masters) and
    on the hosts (the sshd's children)."""

    wall: float
    here: float
    hosts: float


def _subreaper() -> None:
    """Become the subreaper of what the runs leave: ssh's masters fork into the background,
    and their CPU time is counted only once this process reaps them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap(keep: int) -> None:
    """Reap the orphans that have ended (every child but `keep`, the sshd)."""
    with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as found:
        children = [int(p) for p in found.read().split()]
    for pid in children:
        if pid != keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _own_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _sshd_cpu(pid: int) -> float:
    """CPU seconds of the sshd's children that it has reaped (connections that ended)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def timed(args: list[str], env: dict[str, str], sshd: int) -> Timed:
    here, hosts = _own_cpu(), _sshd_cpu(sshd)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed:\n{done.stdout.decode()}{done.stderr.decode()}"
        )
    time.sleep(0.3)  # the masters' and the connections' ends, then reaped
    _reap(sshd)
    return Timed(took, _own_cpu() - here, _sshd_cpu(sshd) - hosts)


def per_step(session: ShellSession, steps: int) -> float:
    """Seconds per step over `steps` steps."""
    io = StepIO(on_output=lambda _: None)
    start = time.perf_counter()
    for n in range(steps):
        if not session.run_step(f"echo step {n}", io).ok:
            raise RuntimeError("a step failed")
    return (time.perf_counter() - start) / steps


def warm(remote: ShellSession, local: ShellSession, batches: int) -> tuple[float, float]:
    """The median batch's seconds per step, remote and local, batches taken in turn."""
    per_step(remote, 5), per_step(local, 5)
    remote_times, local_times = [], []
    for _ in range(batches):
        remote_times.append(per_step(remote, 20))
        local_times.append(per_step(local, 20))
    return statistics.median(remote_times), statistics.median(local_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batches", type=int, default=15)
    parser.add_argument("--command", default="sleep 0.2; uname -n")
    parser.add_argument("--kex", help="a KexAlgorithms line for the bench's ssh config")
    args = parser.parse_args()
    _subreaper()
    work = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    server, process = start_sshd(work / "sshd", args.hosts)
    if args.kex:
        text = server.config.read_text()
        server.config.write_text(f"KexAlgorithms {args.kex}\n{text}")
    hosts = [f"host{n}" for n in range(1, args.hosts + 1)]
    env = dict(os.environ, RUNBOOK_JOURNAL=str(work / "journal.db"), NO_COLOR="1")
    load = os.getloadavg()
    try:
        cli = [str(RUNBOOK), "run", "--yes", "--ssh-config", str(server.config)]
        fan = work / "fan.md"
        write_runbook(fan, f"{{group: [{', '.join(hosts)}]}}", args.command)
        fans = [
            timed([*cli, "--forks", str(args.hosts), str(fan)], env, process.pid)
            for _ in range(args.reps)
        ]
        singles = []
        for host in hosts:
            one = work / f"one-{host}.md"
            write_runbook(one, f"{{ssh: {host}}}", args.command)
            singles.append(timed([*cli, str(one)], env, process.pid))
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
        local_session = ShellSession()
        try:
            warm_remote, warm_local = warm(
                remote.session("host1", "host1", None), local_session, args.batches
            )
        finally:
            remote.close()
            local_session.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    highest = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    fan_run = sorted(fans, key=lambda t: t.wall)[len(fans) // 2]
    slowest = max(singles, key=lambda t: t.wall)
    loop = statistics.median(loop_times)
    loop_ratio = loop / fan_run.wall
    fan_ratio = fan_run.wall / slowest.wall
    warm_ratio = warm_remote / warm_local
    rows: list[tuple[str, Timed | float, str]] = [
        (f"fan-out, {args.hosts} hosts, --forks {args.hosts} (CLI)", fan_run, "1.00x"),
        ("slowest single host (CLI)", slowest, f"fan-out / this = {fan_ratio:.2f}x"),
        (
            f"{args.hosts} sequential ssh HOST CMD",
            loop,
            f"this / fan-out = {loop_ratio:.2f}x",
        ),
        ("remote step, warm session", warm_remote, f"remote / local = {warm_ratio:.2f}x"),
        ("local step", warm_local, "1.00x"),
    ]
    print(
        f"load average (highest seen): {highest[0]:.2f} {highest[1]:.2f} {highest[2]:.2f};"
        f" key exchange: {args.kex or 'ssh default'}"
    )
    print(f"{'measurement':<45} {'wall':>10}  {'CPU here / hosts':>17}  ratio")
    for name, measured, ratio in rows:
        seconds = measured.wall if isinstance(measured, Timed) else measured
        cpu = f"{measured.here:.2f} / {measured.hosts:.2f} s" if isinstance(measured, Timed) else ""
        shown = f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds:.3f} s"
        print(f"{name:<45} {shown:>10}  {cpu:>17}  {ratio}")
    print()
    for what, measured_ratio, limit in (
        ("fan-out wall / slowest single host", fan_ratio, 1.5),
        ("warm remote step / local step", warm_ratio, 2.0),
    ):
        verdict = "PASS" if measured_ratio <= limit else "FAIL"
        print(f"target {what} <= {limit}x: {measured_ratio:.2f}x {verdict}")


if __name__ == "__main__":
    main()
