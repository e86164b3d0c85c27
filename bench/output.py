"""Benchmark: streaming one step's large output through `runbook run`, against a bare pty.

Writes a one-step runbook whose step prints N MB (default 100) of 100-byte lines
(`yes xxx...x | head -c BYTES`), then, for each size (10 MB and N MB), times median (and best)
of several alternating passes:

- engine:     `runbook run FILE --yes`, the real CLI, stdout to /dev/null; its peak RSS is the
              engine process's own VmHWM, polled from /proc/PID/status every 10 ms while it runs
              (wait4's ru_maxrss, the maximum over the engine and its children, is printed too);
- bare pty:   `bash -c CMD` on a fresh pty (pty.openpty(), default termios: output processing
              on, as pexpect spawns), read in Python with os.read(fd, 65536) until EOF;
- pty -onlcr: the same with `stty -onlcr` (output processing on, but no newline translation:
              the same bytes as the engine reads; reference row);
- raw pty:    the same with `stty -onlcr -opost`, as the engine's own session sets its pty (no
              output processing: still the same bytes, by the kernel's fast path);
- pipe:       the same command into a pipe read the same way (reference row).

Targets (issue 17): engine rate >= 90% of the bare pty's rate; engine peak RSS < 100 MB, and
not growing with the output's size (the N MB figure at most 10% above the 10 MB one). Prints
a table, with the load average before and after; always exits 0 (a measurement).

    .venv/bin/python bench/output.py [--megabytes N] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from engine_cli import compile_engine, runbook_command  # bench/engine_cli.py

RATE_TARGET = 0.9
RSS_LIMIT_MB = 100.0
RSS_GROWTH = 1.10
LINE = "x" * 99
PTY_MODES = (
    ("bare", 0),
    ("onlcr", termios.ONLCR),
    ("raw", termios.ONLCR | termios.OPOST),
    ("pipe", None),
)
LABELS = {
    "engine": "engine (runbook run > /dev/null)",
    "start-up": "start-up (one `true` step)",
    "bare": "bare pty (default termios)",
    "onlcr": "pty -onlcr",
    "raw": "raw pty (the engine's termios)",
    "pipe": "pipe",
}


def producer(nbytes: int) -> str:
    return f"yes {LINE} | head -c {nbytes}"


def vm_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


@dataclass(slots=True)
class EngineRun:
    seconds: float
    own_kb: int  # the engine process's own peak RSS (VmHWM), as last polled
    maxrss_kb: int  # wait4's ru_maxrss: the maximum over the engine and its children
    journal_mb: float
    problem: str


def engine_run(runbook: str, path: Path, work: Path) -> EngineRun:
    """`runbook run PATH --yes` with stdout to /dev/null, journalled into a fresh database."""
    journal = work / "journal.db"
    env = dict(os.environ, RUNBOOK_JOURNAL=str(journal), RUNBOOK_PLAN_CACHE=str(work / "plans"))
    start = time.perf_counter()
    child = subprocess.Popen(
        [runbook, "run", str(path), "--yes"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert child.stderr is not None
    os.set_blocking(child.stderr.fileno(), False)
    errors = b""
    peak = 0
    while True:
        peak = max(peak, vm_hwm_kb(child.pid) or 0)
        errors += child.stderr.read() or b""
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    errors += child.stderr.read() or b""
    child.stderr.close()
    problem = ""
    if child.returncode != 0:
        problem = f"engine exit {child.returncode}: {errors.decode(errors='replace')[-300:]}"
    files = list(work.glob("journal.db*"))
    journal_mb = sum(f.stat().st_size for f in files) / 1e6
    for f in files:
        f.unlink()
    return EngineRun(seconds, peak, usage.ru_maxrss, journal_mb, problem)


def read_all(fd: int) -> int:
    total = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            break
        if not chunk:
            break
        total += len(chunk)
    return total


def pty_run(command: str, clear_oflag: int) -> tuple[float, int]:
    """Seconds and bytes read for `bash -c command` on a fresh pty, these output flags off."""
    start = time.perf_counter()
    master, slave = pty.openpty()
    if clear_oflag:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~clear_oflag
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    child = subprocess.Popen(
        ["bash", "-c", command],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        total = read_all(master)
    finally:
        os.close(master)
        child.wait()
    return time.perf_counter() - start, total


def pipe_run(command: str) -> tuple[float, int]:
    start = time.perf_counter()
    child = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE)
    assert child.stdout is not None
    total = read_all(child.stdout.fileno())
    child.stdout.close()
    child.wait()
    return time.perf_counter() - start, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100, help="output size (default 100)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per size (default 3)")
    args = parser.parse_args()
    sizes = sorted({10, args.megabytes})
    load_before = os.getloadavg()
    runbook = runbook_command()
    problems: list[str] = []
    results: dict[int, dict[str, list[float]]] = {}
    peaks: dict[int, tuple[int, int]] = {}
    journals: dict[int, float] = {}

    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp:
        work = Path(tmp)
        start_path = work / "start.md"
        start_path.write_text("# Start-up\n\n```bash\ntrue\n```\n", encoding="utf-8")
        compile_engine()  # warm-up: .pyc files and the page cache
        engine_run(runbook, start_path, work)
        for megabytes in sizes:
            nbytes = megabytes * 1_000_000
            command = producer(nbytes)
            path = work / f"output-{megabytes}.md"
            path.write_text(f"# Output\n\n```bash\n{command}\n```\n", encoding="utf-8")
            times: dict[str, list[float]] = {key: [] for key in LABELS}
            own = total = 0
            for _ in range(args.reps):
                run = engine_run(runbook, path, work)
                times["engine"].append(run.seconds)
                own, total = max(own, run.own_kb), max(total, run.maxrss_kb)
                journals[megabytes] = run.journal_mb
                problems += [run.problem] if run.problem else []
                times["start-up"].append(engine_run(runbook, start_path, work).seconds)
                for label, oflag in PTY_MODES:
                    seconds, got = pipe_run(command) if oflag is None else pty_run(command, oflag)
                    times[label].append(seconds)
                    if got < nbytes:
                        problems.append(f"{label} {megabytes} MB: read only {got} bytes")
            results[megabytes] = times
            peaks[megabytes] = (own, total)

    shown = producer(0).replace(LINE, "xxx...").replace(" 0", " BYTES")
    print(f"output: one step, `{shown}` (100-byte lines); stdout of the engine to /dev/null")
    print(f"timing: median of {args.reps} passes per size, engine and baselines alternating")
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  cli: {runbook}")
    load = (
        " ".join(f"{v:.2f}" for v in load_before)
        + ", after "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(f"load average (1, 5, 15 min): before {load}\n")
    header = ("", "MB", "median s", "best s", "MB/s", "x bare pty", "peak RSS MB")
    print(f"{header[0]:<34}" + "".join(f"{cell:>12}" for cell in header[1:]))
    rates: dict[int, float] = {}
    strict: dict[int, float] = {}
    for megabytes in sizes:
        times = results[megabytes]
        medians = {key: statistics.median(times[key]) for key in LABELS}
        bare = megabytes / medians["bare"]
        rates[megabytes] = medians["bare"] / medians["engine"]
        strict[megabytes] = medians["raw"] / medians["engine"]
        for key, label in LABELS.items():
            rate = megabytes / medians[key]
            cells = [
                str(megabytes),
                f"{medians[key]:.3f}",
                f"{min(times[key]):.3f}",
                f"{rate:.1f}" if key != "start-up" else "-",
                f"{rate / bare:.2f}" if key != "start-up" else "-",
                f"{peaks[megabytes][0] / 1024:.1f}" if key == "engine" else "-",
            ]
            print(f"{label:<34}" + "".join(f"{cell:>12}" for cell in cells))
        net = medians["engine"] - medians["start-up"]
        print(
            f"{'':<34}engine without start-up: {megabytes / net:.1f} MB/s"
            f" (x{megabytes / net / bare:.2f} bare pty); journal written: "
            f"{journals[megabytes]:.1f} MB\n"
        )

    big, small = max(sizes), min(sizes)
    ratio = rates[big]
    own_big, own_small = peaks[big][0] / 1024, peaks[small][0] / 1024
    growth = own_big / own_small if own_small else float("inf")

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(
        f"rate at {big} MB: engine / bare pty = {ratio:.2f}"
        f"  (target >= {RATE_TARGET:.2f})  {verdict(ratio >= RATE_TARGET)}"
    )
    print(
        f"  against a pty with the engine's own termios (-onlcr -opost): {strict[big]:.2f}"
        f"  {verdict(strict[big] >= RATE_TARGET)}"
    )
    print(
        f"peak RSS at {big} MB: {own_big:.1f} MB  (target < {RSS_LIMIT_MB:.0f} MB)"
        f"  {verdict(own_big < RSS_LIMIT_MB)}"
    )
    if big != small:
        print(
            f"RSS growth {small} MB -> {big} MB: {own_small:.1f} -> {own_big:.1f} MB,"
            f" x{growth:.2f}  (target <= x{RSS_GROWTH:.2f})  {verdict(growth <= RSS_GROWTH)}"
        )
    totals = ", ".join(f"{m} MB: {peaks[m][1] / 1024:.1f} MB" for m in sizes)
    print(f"wait4 ru_maxrss (max over the engine and its children): {totals}")
    for problem in problems[:5]:
        print("problem: " + problem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
