"""Steps on other machines, against a real sshd the tests start (tests/sshd.py) and a small real
program that execs bash (an exec target): sessions, fan-out, failure policies, the journal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pexpect
import pytest

from engine.connections import remove_stale_directories
from engine.remote import TargetSessions, _pieces
from engine.shell import ShellError, StepIO
from tests.conftest import RUNBOOK, environment, run_cli, write_runbook
from tests.sshd import HOSTS, Sshd, sshd_server  # noqa: F401 (the fixture `sshd`)

# An exec target's stand-in for `kubectl exec -i -t POD --`: its options, a name, `--`, then
# the command it runs in place of itself. With --no-bash, the command finds only `sh` (dash).
FAKE_EXEC = """\
import os, sys
args = sys.argv[1:]
command = args[args.index("--") + 1 :]
if "--no-bash" in args:
    bare = os.environ["FAKE_EXEC_BARE"]
    os.environ["PATH"] = bare
os.environ["FAKE_EXEC_NAME"] = args[args.index("--") - 1]
os.execvp(command[0], command)
"""


@pytest.fixture
def fake_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    program = tmp_path / "fake-exec"
    program.write_text(FAKE_EXEC)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "sh").symlink_to("/bin/dash" if os.path.exists("/bin/dash") else "/bin/sh")
    monkeypatch.setenv("FAKE_EXEC_BARE", str(bare))
    return program


@pytest.fixture
def sessions(sshd: Sshd):
    made = TargetSessions(str(sshd.config))
    yield made
    made.close()


def run_step(session, body: str, **options) -> tuple[object, str]:
    out = bytearray()
    outcome = session.run_step(body, StepIO(on_output=out.extend), **options)
    return outcome, out.decode().replace("\r", "")


def test_state_carries_across_steps_on_a_remote_host(sessions: TargetSessions) -> None:
    session = sessions.session("host1", "host1", None)
    outcome, _ = run_step(session, "cd /tmp && COUNT=41; greet() { echo hi $1; }")
    assert outcome.ok
    outcome, said = run_step(session, 'COUNT=$((COUNT + 1)); greet "$COUNT from $PWD"')
    assert outcome.ok and said == "hi 42 from /tmp\n"
    outcome, said = run_step(session, "echo $RUNBOOK_HOST; exit 3")
    assert outcome.exit_code == 3 and said == "host1\n"
    _, said = run_step(session, "echo $COUNT")
    assert said == "42\n"  # `exit` ended the step only


def test_any_byte_of_a_step_reaches_the_remote_shell_as_written(sessions: TargetSessions) -> None:
    session = sessions.session("host1", "host1", None)
    long = "y" * 6000  # one line longer than a terminal's line limit
    body = f"printf '%s|' 'a\x03b\x04c\x1a' \"it's\" 'é ü !x' '\\n'; X='{long}'; echo ${{#X}}"
    outcome, said = run_step(session, body)
    assert outcome.ok
    assert said == "a\x03b\x04c\x1a|it's|é ü !x|\\n|6000\n"


def test_a_steps_values_reach_the_remote_shell_whether_typed_or_written(
    sessions: TargetSessions,
) -> None:
    session = sessions.session("host1", "host1", None)
    plain = {"GREETING": "it's plain", "WHERE": "/tmp"}  # a launcher typed as it is
    outcome, said = run_step(session, 'echo "$GREETING in $PWD"', env=plain, cwd="/tmp")
    assert outcome.ok and said == "it's plain in /tmp\n"
    odd = {"CERT": "line one\nline\x1b two", "LONG": "z" * 3000}  # a launcher in a file
    outcome, said = run_step(session, 'printf "%s|%s" "$CERT" "${#LONG}"', env=odd)
    assert outcome.ok and said == "line one\nline\x1b two|3000"


def test_typed_pieces_never_cut_an_escape_in_two() -> None:
    text = "é" * 700 + "\x00" + "a" * 999 + "!" * 400
    pieces = _pieces(text)
    assert all(len(piece) <= 1000 for piece in pieces)
    assert "".join(pieces).count("\\x") == 700 * 2 + 1 + 400
    decoded = b"".join(
        bytes(piece, "latin-1").decode("unicode_escape").encode("latin-1") for piece in pieces
    )
    assert decoded.decode() == text


def test_a_timeout_kills_the_remote_process_tree(sessions: TargetSessions, sshd: Sshd) -> None:
    session = sessions.session("host2", "host2", None)
    body = "setsid sleep 4321.5 & sleep 4322.5 & sleep 4323.5; echo never"
    outcome, said = run_step(session, body, timeout=1)
    assert outcome.timed_out and "never" not in said, (outcome, said)
    left = sshd.ssh("host2", "pgrep -f 'sleep 432[123][.]5' || echo none")
    assert left.stdout.strip() == "none", left.stdout
    outcome, said = run_step(session, "echo still here")
    assert outcome.ok and said == "still here\n"


def test_ctrl_c_stops_the_remote_tree_level_by_level(sessions: TargetSessions, sshd: Sshd) -> None:
    session = sessions.session("host3", "host3", None)
    said = bytearray()
    presses = []

    def pressed() -> bool:
        # The operator presses Ctrl-C once the step is up, and again after each word of the
        # engine's: the step ignores SIGINT, so the second press (SIGTERM) stops it.
        if b"ready" in said and len(presses) == said.count(b"[runbook: ") < 2:
            presses.append(1)
            return True
        return False

    body = "trap '' INT; echo ready; sleep 4341.5 & sleep 4342.5"
    outcome = session.run_step(body, StepIO(on_output=said.extend, interrupt_requested=pressed))
    assert outcome.interrupted and len(presses) == 2, (outcome, bytes(said))
    assert b"press Ctrl-C again to stop all its processes (SIGTERM)" in said
    left = sshd.ssh("host3", "pgrep -f 'sleep 434[12][.]5' || echo none")
    assert left.stdout.strip() == "none", left.stdout


def test_each_alias_gets_its_own_master_and_none_outlives_the_run(sshd: Sshd) -> None:
    made = TargetSessions(str(sshd.config))
    # host4..host6 are aliases of one HostName and port: ssh's %C would give them one socket.
    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(lambda h: made.session(h, h, None), ["host4", "host5", "host6"]))
    assert [run_step(s, "echo $RUNBOOK_HOST")[1] for s in started] == [
        "host4\n",
        "host5\n",
        "host6\n",
    ]
    directory = str(made.ssh.directory)
    masters = [c for c in _commands_naming(directory) if "ControlMaster=yes" in c]
    assert len(masters) == 3  # one a host, each on its own socket
    made.close()
    assert _commands_naming(directory) == []


def _commands_naming(text: str) -> list[str]:
    """Command lines of live processes that name `text` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if text in line and (entry / "stat").read_text().split(") ")[-1][0] != "Z":
            found.append(line)
    return found


def test_a_host_that_refuses_the_connection_is_a_clear_error(sessions: TargetSessions) -> None:
    with pytest.raises(ShellError, match="Connection refused"):
        sessions.session("refused", "refused", None)


def test_a_changed_host_key_is_never_accepted(sessions: TargetSessions) -> None:
    with pytest.raises(ShellError, match="host key has changed"):
        sessions.session("changed", "changed", None)


def test_an_exec_target_runs_the_same_session(fake_exec: Path) -> None:
    made = TargetSessions()
    try:
        words = (sys.executable, str(fake_exec), "-i", "-t", "box-1", "--")
        session = made.session("box", None, words)
        run_step(session, "cd /tmp; V=from-exec")
        outcome, said = run_step(session, 'echo "$V $PWD $FAKE_EXEC_NAME"')
        assert outcome.ok and said == "from-exec /tmp box-1\n"
        outcome, said = run_step(session, "sleep 4331.5 & sleep 4332.5", timeout=1)
        assert outcome.timed_out
        outcome, said = run_step(session, "pgrep -f 'sleep 433[12][.]5' || echo none")
        assert said == "none\n"
    finally:
        made.close()


def test_a_target_without_bash_is_refused_clearly(fake_exec: Path) -> None:
    made = TargetSessions()
    try:
        words = (sys.executable, str(fake_exec), "--no-bash", "box", "--")
        with pytest.raises(ShellError, match="has no bash"):
            made.session("box", None, words)
    finally:
        made.close()


FAN = """\
---
targets:
  web: {{group: [{hosts}]}}
  one: {{ssh: host1}}
---
# Fan

```bash {{target: web, {annotation}}}
{body}
```

```bash {{target: one}}
echo after
```
"""
# Each host notes it started, counts the hosts running beside it, and records the count.
COUNTING = (
    'mkdir -p "$DIR/active"; touch "$DIR/active/$RUNBOOK_HOST";'
    ' ls "$DIR/active" | wc -l >> "$DIR/counts"; echo "$RUNBOOK_HOST" >> "$DIR/order";'
    ' sleep 0.3; rm "$DIR/active/$RUNBOOK_HOST"'
)


def fan(tmp_path: Path, sshd: Sshd, annotation: str, body: str, *extra: str, hosts=HOSTS):
    path = write_runbook(
        tmp_path, FAN.format(hosts=", ".join(hosts), annotation=annotation, body=body)
    )
    return run_cli(
        tmp_path,
        "run",
        "--yes",
        "--ssh-config",
        sshd.config,
        "--journal",
        tmp_path / "j.db",
        path,
        *(["-p", f"dir={tmp_path}"] if "$DIR" in body else []),
        *extra,
    )


def hosts_finished(tmp_path: Path) -> dict[str, str]:
    """Each host's status in the fanned-out step, as `log show --format json` has it."""
    shown = run_cli(
        tmp_path, "log", "show", "last", "--format", "json", "--journal", tmp_path / "j.db"
    )
    assert shown.returncode == 0, shown.stderr
    step = json.loads(shown.stdout)["steps"][0]
    return {a["host"]: a["status"] for a in step["attempts"] if a.get("host")}


def test_fan_out_with_forks_3_runs_every_host_three_at_a_time(tmp_path: Path, sshd: Sshd) -> None:
    done = fan(tmp_path, sshd, "on_failure: continue", COUNTING, "--forks", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 10 and max(counts) <= 3
    assert hosts_finished(tmp_path) == dict.fromkeys(HOSTS, "succeeded")
    assert "host7 | " not in done.stdout  # the step printed nothing
    assert "succeeded on all 10 hosts" in done.stdout


def test_serial_1_runs_one_host_at_a_time_in_order(tmp_path: Path, sshd: Sshd) -> None:
    done = fan(tmp_path, sshd, "serial: 1", COUNTING, hosts=HOSTS[:4])
    assert done.returncode == 0, done.stdout + done.stderr
    assert set((tmp_path / "counts").read_text().split()) == {"1"}
    assert (tmp_path / "order").read_text().split() == list(HOSTS[:4])


FAIL_ON_HOST3 = 'echo "on $RUNBOOK_HOST"; [ "$RUNBOOK_HOST" != host3 ]'


@pytest.mark.parametrize(
    ("policy", "finished", "after"),
    [
        # stop: the hosts after the failing one never start; the run stops there.
        ("stop", {"host1": "succeeded", "host2": "succeeded", "host3": "failed"}, False),
        ("abort", {"host1": "succeeded", "host2": "succeeded", "host3": "failed"}, False),
        # continue: every host runs, the step fails, and the run goes on.
        ("continue", {"host1": "succeeded", "host2": "succeeded", "host3": "failed",
                      "host4": "succeeded"}, True),
        # ask, unattended: nobody to ask, so it stops.
        ("ask", {"host1": "succeeded", "host2": "succeeded", "host3": "failed"}, False),
    ],
)  # fmt: skip
def test_a_failure_on_one_host_under_each_policy(
    tmp_path: Path,
    sshd: Sshd,
    policy: str,
    finished: dict[str, str],
    after: bool,
) -> None:
    done = fan(tmp_path, sshd, f"serial: 1, on_failure: {policy}", FAIL_ON_HOST3, hosts=HOSTS[:4])
    assert done.returncode == 1
    assert hosts_finished(tmp_path) == finished
    assert "host3 | on host3" in done.stdout
    assert "1 of 4 hosts failed: host3 (exit status 1)" in done.stdout
    assert ("after\n" in done.stdout) is after


def test_an_unreachable_host_fails_the_step_there_not_the_engine(
    tmp_path: Path, sshd: Sshd
) -> None:
    done = fan(
        tmp_path, sshd, "on_failure: continue", "echo up", hosts=("host1", "refused", "changed")
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    finished = hosts_finished(tmp_path)
    assert finished == {"host1": "succeeded", "refused": "failed", "changed": "failed"}
    assert "Connection refused" in done.stdout and "host key has changed" in done.stdout
    assert "after" in done.stdout
    found = run_cli(tmp_path, "log", "search", "refused", "--journal", tmp_path / "j.db")
    assert "command on refused" in found.stdout
    shown = run_cli(tmp_path, "log", "show", "last", "--journal", tmp_path / "j.db")
    assert "attempt 1 on refused" in shown.stdout
    assert "failed (ssh refused: " in shown.stdout


def test_an_exec_target_from_a_parameter_is_quoted(tmp_path: Path, fake_exec: Path) -> None:
    path = write_runbook(
        tmp_path,
        f"""
        ---
        params:
          box: {{default: "box; touch pwned"}}
        targets:
          pod: {{exec: "{sys.executable} {fake_exec} -i -t {{{{ box }}}} --"}}
        ---
        # Exec

        ```bash {{target: pod, capture: name}}
        printenv FAKE_EXEC_NAME
        ```

        ```bash
        echo "captured: {{{{ name }}}}"
        ```
        """,
    )
    done = run_cli(tmp_path, "run", "--yes", "--journal", tmp_path / "j.db", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "captured: box; touch pwned" in done.stdout
    assert not (tmp_path / "pwned").exists()


def test_check_names_an_unknown_target_with_a_hint(tmp_path: Path) -> None:
    path = write_runbook(
        tmp_path,
        """
        ---
        targets:
          web: {group: [web1, web2]}
          db: {ssh: db.internal, exec: "x"}
        ---
        # T

        ```bash {target: wbe, forks: 2}
        uptime
        ```
        """,
    )
    done = run_cli(tmp_path, "check", path)
    assert done.returncode == 1
    assert "rb.md:8:10: error: unknown target 'wbe'" in done.stdout + done.stderr
    assert "did you mean 'web'?" in done.stdout + done.stderr
    assert "rb.md:4:" in done.stdout + done.stderr  # db: exactly one of ssh, exec or group


def test_show_json_gives_each_steps_target_and_a_groups_hosts(tmp_path: Path) -> None:
    path = write_runbook(
        tmp_path,
        """
        ---
        targets:
          db1: {ssh: db1.internal}
          web: {group: [web1, web2, web3]}
        ---
        # T

        ```bash {target: web, forks: 2, on_failure: continue}
        uptime
        ```

        ```bash {target: db1}
        uptime
        ```

        ```bash
        uptime
        ```

        ## On the database {target: db1}

        ```bash
        psql -c 'select 1'
        ```
        """,
    )
    done = run_cli(tmp_path, "show", "--format", "json", path)
    steps = json.loads(done.stdout)["steps"]
    assert steps[0]["target"] == "web" and steps[0]["hosts"] == ["web1", "web2", "web3"]
    assert steps[0]["forks"] == 2
    assert steps[1]["target"] == "db1" and "hosts" not in steps[1]
    assert steps[2]["target"] is None
    assert steps[3]["target"] == "db1" and steps[3]["target_from_section"] == "on-the-database"
    assert "target_from_section" not in steps[1]
    dry = run_cli(tmp_path, "run", "--dry-run", path)
    assert "runs on web: web1, web2, web3 (up to 2 at a time" in dry.stdout
    assert "runs on db1 (ssh db1.internal)" in dry.stdout
    assert "set by its section 'On the database'" in dry.stdout
    checked = run_cli(tmp_path, "check", path)
    assert "1 command step(s) of this section and its subsections run on 'db1'" in checked.stdout


def test_an_inventory_file_gives_the_targets(tmp_path: Path, sshd: Sshd) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("hosts:\n  db: host5\ngroups:\n  pair: [host6, db]\n")
    path = write_runbook(tmp_path, "# I\n\n```bash {target: pair}\necho $RUNBOOK_HOST\n```\n")
    done = run_cli(
        tmp_path, "run", "--yes", "--ssh-config", sshd.config, "--inventory", inventory,
        "--journal", tmp_path / "j.db", path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "host6 | host6" in done.stdout and "db | db" in done.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("hosts:\n  db: {ssh: x, sssh: y}\n")
    done = run_cli(tmp_path, "run", "--yes", "--inventory", bad, path)
    assert done.returncode == 2 and "bad.yml:2: unknown key 'sssh'" in done.stderr


def test_ansible_inventories_are_read_as_they_are(tmp_path: Path, sshd: Sshd) -> None:
    ini = tmp_path / "hosts"
    ini.write_text(
        "[pair]\nhost[1:2]\n\n[other]\nporty ansible_host=host3"
        f" ansible_port={sshd.port}\n\n[both:children]\npair\nother\n"
    )
    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  children:\n    both:\n      hosts:\n        host4:\n        host5:\n")
    path = write_runbook(tmp_path, '# I\n\n```bash {target: both}\necho "on $RUNBOOK_HOST"\n```\n')
    for inventory, hosts in ((ini, ("host1", "host2", "porty")), (yml, ("host4", "host5"))):
        done = run_cli(
            tmp_path, "run", "--yes", "--ssh-config", sshd.config, "--inventory", inventory,
            "--journal", tmp_path / "j.db", path,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert all(f"{host} | on {host}" in done.stdout for host in hosts), done.stdout
    ini.write_text("[web]\nw1 ansible_connection=winrm\n")
    done = run_cli(tmp_path, "run", "--yes", "--inventory", ini, path)
    assert done.returncode == 2
    assert "hosts:2: host 'w1': ansible_connection=winrm is not supported" in done.stderr


def test_resume_takes_the_inventory_and_ssh_config_as_run_does(tmp_path: Path, sshd: Sshd) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("hosts:\n  db: host7\n")
    marker = tmp_path / "ok"  # the "remote" host is this machine: the path is the same there
    path = write_runbook(
        tmp_path,
        f"# R\n\n```bash {{target: db}}\ntest -e {marker} && echo fixed on $RUNBOOK_HOST\n```\n",
    )
    journal = tmp_path / "j.db"
    reach = ("--ssh-config", sshd.config, "--inventory", inventory, "--journal", journal)
    first = run_cli(tmp_path, "run", "--yes", *reach, path)
    assert first.returncode == 1, first.stdout + first.stderr
    marker.touch()
    again = run_cli(tmp_path, "resume", "--yes", *reach)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fixed on db" in again.stdout  # RUNBOOK_HOST: the host as the runbook names it


def test_resume_after_kill_9_mid_fan_out_reruns_only_the_unfinished_hosts(
    tmp_path: Path, sshd: Sshd
) -> None:
    path = write_runbook(
        tmp_path,
        f"""
        ---
        ssh_config: {sshd.config}
        targets:
          web: {{group: [host1, host2, host3, host4]}}
        ---
        # Rolling

        ```bash {{target: web, serial: 1}}
        echo "$RUNBOOK_HOST" >> "$DIR/ran"
        if [ "$RUNBOOK_HOST" = host3 ]; then
          touch "$DIR/blocked"
          while [ ! -e "$DIR/resumed" ]; do sleep 0.1; done
        fi
        ```
        """,
    )
    journal = tmp_path / "j.db"
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 (the killed run's output)
    first = subprocess.Popen(
        [str(RUNBOOK), "run", "--yes", "--journal", str(journal), "-p", f"dir={tmp_path}", path],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=environment(tmp_path),
        cwd=tmp_path,
    )
    try:
        for _ in range(600):  # until the step is in the middle of host3 (at most a minute)
            if (tmp_path / "blocked").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (tmp_path / "blocked").exists(), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    (tmp_path / "resumed").touch()
    resumed = run_cli(
        tmp_path, "resume", "--yes", "--rerun-unfinished", "--journal", journal, "-p",
        f"dir={tmp_path}",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished on host1, host2" in resumed.stderr
    assert (tmp_path / "ran").read_text().split() == ["host1", "host2", "host3", "host3", "host4"]


def test_ask_on_a_host_failure_lets_the_operator_go_on(tmp_path: Path, sshd: Sshd) -> None:
    path = write_runbook(
        tmp_path,
        FAN.format(hosts="host1, host2, host3", annotation="serial: 1, on_failure: ask",
                   body='[ "$RUNBOOK_HOST" != host1 ]'),
    )  # fmt: skip
    child = pexpect.spawn(
        str(RUNBOOK),
        ["run", str(path), "--ssh-config", str(sshd.config), "--journal", str(tmp_path / "j.db")],
        cwd=str(tmp_path),
        encoding="utf-8",
        dimensions=(40, 200),
        timeout=60,
        env=environment(tmp_path),
    )
    child.expect("Run it?")
    child.send("r")
    child.expect("failed on host1")
    child.expect(r"\[c\]ontinue with the other hosts")
    child.send("c")
    child.expect("Run it?")  # the run went on past the step to the next one
    child.send("r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert hosts_finished(tmp_path) == {
        "host1": "failed",
        "host2": "succeeded",
        "host3": "succeeded",
    }


def test_a_target_from_a_parameter(tmp_path: Path, sshd: Sshd) -> None:
    path = write_runbook(
        tmp_path,
        """
        ---
        params:
          where: {description: the host to look at}
        targets:
          db: {ssh: host7}
        ---
        # Where

        ```bash {target: "{{ where }}"}
        echo "on $RUNBOOK_HOST"
        ```
        """,
    )
    for where, said in (("db", "on db"), ("host8", "on host8")):
        done = run_cli(
            tmp_path, "run", "--yes", "--ssh-config", sshd.config, "-p", f"where={where}",
            "--journal", tmp_path / "j.db", path,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert said in done.stdout


def test_a_sections_target_sends_its_steps_there_and_keeps_the_rest_here(
    tmp_path: Path, sshd: Sshd
) -> None:
    path = write_runbook(
        tmp_path,
        """---
targets:
  pair: {group: [host4, host5]}
  six: {ssh: host6}
---
# Sections

```bash
echo "here: ${RUNBOOK_HOST:-local}"
```

## On the pair {target: pair}

```bash
echo "step one on $RUNBOOK_HOST"
```

### Still the pair

```bash
echo "step two on $RUNBOOK_HOST"
```

```bash {target: six}
echo "own target: $RUNBOOK_HOST"
```

## Back here

```bash
echo "back: ${RUNBOOK_HOST:-local}"
```
""",
    )
    done = run_cli(
        tmp_path, "run", "--yes", "--ssh-config", sshd.config, "--journal", tmp_path / "j.db", path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for said in (
        "here: local",
        "step one on host4",
        "step one on host5",
        "step two on host4",
        "step two on host5",
        "own target: six",
        "back: local",
    ):
        assert said in done.stdout, (said, done.stdout)


def test_a_killed_runs_ssh_directory_and_master_are_gone_when_the_next_run_starts(
    tmp_path: Path, sshd: Sshd
) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="rb-t-"))  # short: a socket's path is ~100 bytes
    try:
        step = 'touch "$DIR/started"; sleep 61.25'
        path = write_runbook(tmp_path, f"# K\n\n```bash {{target: host8}}\n{step}\n```\n")
        log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 (the killed run's output)
        first = subprocess.Popen(
            [str(RUNBOOK), "run", "--yes", "--ssh-config", str(sshd.config), "--journal",
             str(tmp_path / "j.db"), "-p", f"dir={tmp_path}", path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env=environment(tmp_path, TMPDIR=str(scratch)), cwd=tmp_path,
        )  # fmt: skip
        try:
            for _ in range(600):  # until the step runs on the host (at most a minute)
                if (tmp_path / "started").exists() or first.poll() is not None:
                    break
                time.sleep(0.1)
            assert (tmp_path / "started").exists(), (tmp_path / "first.log").read_text()
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
            log.close()
        left = list(scratch.glob("rb-ssh-*"))
        assert len(left) == 1 and any(p.is_socket() for p in left[0].iterdir())
        master = subprocess.run(
            ["pgrep", "-f", f"ControlPath={left[0]}/"], capture_output=True, text=True
        )
        assert master.stdout.strip(), "the killed run's master is still up (ControlPersist)"
        other = write_runbook(tmp_path, "# N\n\n```bash {target: host9}\necho next\n```\n", "n.md")
        done = run_cli(
            tmp_path, "run", "--yes", "--ssh-config", sshd.config, "--journal",
            tmp_path / "j.db", other, TMPDIR=str(scratch),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert list(scratch.iterdir()) == []  # the killed run's directory, and the new run's own
        for pid in master.stdout.split():
            assert not Path(f"/proc/{pid}").exists() or "Z" in _state_of(int(pid))
    finally:
        sshd.ssh("host8", "pkill -f 'sleep 61[.]25' || true")
        shutil.rmtree(scratch, ignore_errors=True)


def test_only_directories_whose_engine_is_gone_are_removed(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    made = {
        "rb-ssh-live": f"{os.getpid()} {alive}",  # this process: running
        "rb-ssh-reused": f"{os.getpid()} 1",  # this pid, another start: a reused pid
        "rb-ssh-dead": f"{gone.pid} 12345",
        "rb-ssh-young": None,  # no owner yet: being made
    }
    for name, owner in made.items():
        (tmp_path / name).mkdir()
        if owner is not None:
            (tmp_path / name / "owner").write_text(owner)
    (tmp_path / "rb-ssh-old").mkdir()  # no owner, an hour old: made before owners were written
    os.utime(tmp_path / "rb-ssh-old", (time.time() - 7200, time.time() - 7200))
    (tmp_path / "other").mkdir()
    removed = remove_stale_directories(tmp_path)
    assert sorted(p.name for p in removed) == ["rb-ssh-dead", "rb-ssh-old", "rb-ssh-reused"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "rb-ssh-live", "rb-ssh-young"]


def _state_of(pid: int) -> str:
    """A process's state letter (Z: a zombie that has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_retries_on_a_group_step_try_again_only_where_it_failed(tmp_path: Path, sshd: Sshd) -> None:
    body = (
        'n=$(cat "$DIR/tries-$RUNBOOK_HOST" 2>/dev/null || echo 0); n=$((n + 1));'
        ' echo "$n" > "$DIR/tries-$RUNBOOK_HOST"; echo "try $n";'
        ' case $RUNBOOK_HOST in host4) [ "$n" -ge 2 ];; host6) false;; esac'
    )
    hosts = ("host4", "host5", "host6")
    done = fan(tmp_path, sshd, "retries: 2, on_failure: continue", body, hosts=hosts)
    assert done.returncode != 0  # host6 never succeeds
    tries = {h: (tmp_path / f"tries-{h}").read_text().strip() for h in hosts}
    assert tries == {"host4": "2", "host5": "1", "host6": "3"}
    shown = run_cli(
        tmp_path, "log", "show", "last", "--format", "json", "--journal", tmp_path / "j.db"
    )
    attempts = json.loads(shown.stdout)["steps"][0]["attempts"]
    each = sorted((a["host"], a["attempt"], a["status"]) for a in attempts if a.get("host"))
    assert each == [
        ("host4", 1, "failed"),
        ("host4", 2, "succeeded"),
        ("host5", 1, "succeeded"),
        ("host6", 1, "failed"),
        ("host6", 2, "failed"),
        ("host6", 3, "failed"),
    ]
    assert "1 of 3 hosts failed: host6 (exit status 1)" in done.stdout + done.stderr


def test_a_remote_step_waiting_for_input_is_found_and_answered(sessions: TargetSessions) -> None:
    session = sessions.session("host9", "host9", None)
    asked: list[str] = []
    keys, typed = os.pipe()
    os.write(typed, b"ada\n")
    os.close(typed)

    def waiting(last_line: str) -> int:
        asked.append(last_line)
        return keys

    out = bytearray()
    try:
        outcome = session.run_step(
            'read -p "name? " n; echo "hello, $n"', StepIO(on_output=out.extend, on_waiting=waiting)
        )
    finally:
        os.close(keys)
    assert outcome.ok and asked == ["name? "]
    assert out.decode().replace("\r", "").endswith("hello, ada\n")


def test_resume_rebuilds_a_targets_session_as_its_last_step_left_it(
    tmp_path: Path, sshd: Sshd
) -> None:
    path = write_runbook(
        tmp_path,
        f"""---
ssh_config: {sshd.config}
targets:
  box: {{ssh: host7}}
---
# Keep state

```bash {{target: box}}
cd /tmp && GREETING="hello there"; greet() {{ echo "$GREETING from $PWD"; }}
```

```bash {{target: box}}
touch "$DIR/blocked"; while [ ! -e "$DIR/resumed" ]; do sleep 0.1; done; greet > "$DIR/said"
```

```bash
echo "local: ${{GREETING:-unset}}" > "$DIR/local"
```
""",
    )
    journal = tmp_path / "j.db"
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 (the killed run's output)
    first = subprocess.Popen(
        [str(RUNBOOK), "run", "--yes", "--journal", str(journal), "-p", f"dir={tmp_path}", path],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=environment(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    try:
        for _ in range(600):
            if (tmp_path / "blocked").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (tmp_path / "blocked").exists(), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    (tmp_path / "resumed").touch()
    resumed = run_cli(
        tmp_path, "resume", "--yes", "--rerun-unfinished", "--journal", journal, "-p",
        f"dir={tmp_path}",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "restored the shell session on box" in resumed.stderr
    assert "variables GREETING" in resumed.stderr and "functions greet" in resumed.stderr
    assert (tmp_path / "said").read_text() == "hello there from /tmp\n"
    assert (tmp_path / "local").read_text() == "local: unset\n"  # the target's, not here


def test_resume_rebuilds_each_hosts_session_for_a_fanned_out_step(
    tmp_path: Path, sshd: Sshd
) -> None:
    path = write_runbook(
        tmp_path,
        f"""---
ssh_config: {sshd.config}
targets:
  pair: {{group: [host2, host3]}}
---
# Per host

```bash {{target: pair}}
cd /tmp && WHO="I am $RUNBOOK_HOST"
```

```bash {{target: pair, serial: 1}}
if [ "$RUNBOOK_HOST" = host3 ] && [ ! -e "$DIR/resumed" ]; then
  touch "$DIR/blocked"; sleep 600.125
fi
echo "$WHO in $PWD" > "$DIR/said-$RUNBOOK_HOST"
```
""",
    )
    journal = tmp_path / "j.db"
    log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 (the killed run's output)
    first = subprocess.Popen(
        [str(RUNBOOK), "run", "--yes", "--journal", str(journal), "-p", f"dir={tmp_path}", path],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=environment(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    try:
        for _ in range(600):
            if (tmp_path / "blocked").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert (tmp_path / "blocked").exists(), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
        sshd.ssh("host3", "pkill -f '^sleep 600[.]125$' || true")
    (tmp_path / "resumed").touch()
    (tmp_path / "said-host2").unlink()
    resumed = run_cli(
        tmp_path, "resume", "--yes", "--rerun-unfinished", "--journal", journal, "-p",
        f"dir={tmp_path}",
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "restored the shell session on host3" in resumed.stderr
    assert (tmp_path / "said-host3").read_text() == "I am host3 in /tmp\n"
    assert not (tmp_path / "said-host2").exists()  # host2 had finished: not run again
