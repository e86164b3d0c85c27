"""`mkdocs serve` rebuilds the site when a run is written to the journal, and only then: the
build itself opens the journal, which must not start another build."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

RUNBOOK = """\
# Rotate the logs

```bash
echo "rotated"
```
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def builds(log: list[str]) -> int:
    return sum("Building documentation" in line for line in log)


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_serve_rebuilds_when_the_journal_is_written(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rotate.md").write_text(RUNBOOK, encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config))
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "MKDOCS_CONFIG"}}
    env.update(NO_MKDOCS_2_WARNING="1", NO_COLOR="1", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))

    def run() -> None:
        result = subprocess.run(
            [str(BIN / "runbook"), "run", "docs/rotate.md", "--yes"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    run()  # the journal exists before serve starts
    serve = subprocess.Popen(
        [str(BIN / "mkdocs"), "serve", "-a", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(serve.stdout or []), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any("Serving on" in line for line in log), 60), log
        time.sleep(3)  # a build that opened the journal would have started another by now
        assert builds(log) == 1, log
        run()
        assert wait_for(lambda: builds(log) >= 2, 30), log
        time.sleep(3)
        settled = builds(log)
        time.sleep(4)
        assert builds(log) == settled, "serve keeps rebuilding after the run"
        assert not any("Traceback" in line or "ERROR" in line for line in log), log
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(timeout=5)
