"""Targets as plain data: front matter and annotations read and checked, groups resolved to
hosts, the host field of events stored only when present, and a fanned-out step replayed."""

from __future__ import annotations

from engine.connections import exec_connection
from engine.events import (
    Output,
    SessionState,
    StepFinished,
    StepResult,
    StepStarted,
    StepStatus,
    from_data,
    to_data,
)
from engine.record import RunDetail, replay
from engine.targets import Host, resolve
from tests.conftest import found, parse, plan


def test_front_matter_targets_in_the_documented_form() -> None:
    runbook = parse(
        """
        ---
        targets:
          db1: {ssh: db1.internal}
          web: {group: [web1, web2, web3]}
          pod: {exec: "kubectl exec -i -t {{ pod }} --"}
        ---
        # T

        ```bash {target: web, forks: 2, on_failure: continue}
        uptime
        ```
        """
    )
    assert [(t.name, t.line, t.ssh, t.exec, t.group) for t in runbook.targets] == [
        ("db1", 3, "db1.internal", None, ()),
        ("web", 4, None, None, ("web1", "web2", "web3")),
        ("pod", 5, None, "kubectl exec -i -t {{ pod }} --", ()),
    ]
    step = runbook.steps[0]
    assert (step.target, step.forks, step.serial, step.on_failure) == ("web", 2, None, "continue")
    assert found(runbook.diagnostics) == []


def test_bad_targets_and_annotations_are_named_at_their_line() -> None:
    checked = plan(
        """
        ---
        targets:
          a: {ssh: "-oProxyCommand=x"}
          b: {ssh: x, exec: y}
          c: {grup: [x]}
          d: {group: []}
        ---
        # T

        ```bash {target: e, forks: 0}
        true
        ```

        ```bash {serial: 2}
        true
        ```
        """
    )
    assert found(checked.diagnostics) == [
        ("target-value", 3),
        ("target-value", 4),
        ("unknown-key", 5),
        ("target-value", 6),
        ("annotation-value", 10),
        ("undeclared-target", 10),  # none valid: it may come from --inventory
        ("no-target", 14),
    ]


def test_a_group_step_cannot_capture_or_be_interactive() -> None:
    checked = plan(
        """
        ---
        targets:
          web: [web1, web2]
        ---
        # T

        ```bash {target: web, capture: up}
        uptime
        ```

        ```bash {target: web, interactive: true}
        vi /etc/motd
        ```
        """
    )
    assert found(checked.diagnostics) == [("group-step", 7), ("group-step", 11)]


def test_groups_resolve_to_hosts_nested_and_deduplicated() -> None:
    runbook = parse(
        """
        ---
        targets:
          db: {ssh: db.internal}
          web: [web1, web2]
          all: {group: [web, db, web1, all]}
        ---
        # T
        """
    )
    assert [h.name for h in resolve("all", runbook.targets)] == ["web1", "web2", "db"]
    assert resolve("db", runbook.targets) == (Host("db", ssh="db.internal", line=3),)
    assert resolve("elsewhere", runbook.targets) == (Host("elsewhere", ssh="elsewhere"),)


def test_the_host_field_is_stored_only_when_present() -> None:
    plain = StepStarted("s", 1, "command", command="true", time=1.0)
    assert "host" not in to_data(plain).data  # old journals' events hash as they did
    for event in (
        StepStarted("s", 1, "command", command="true", host="web1", time=1.0),
        Output("s", 1, "hi\n", host="web1", time=1.0),
        StepFinished("s", 1, StepStatus.FAILED, host="web1", time=1.0),
    ):
        row = to_data(event)
        assert row.data["host"] == "web1"
        assert from_data(row.kind, row.step, row.attempt, row.time, row.data) == event


def test_a_fanned_out_step_replays_one_attempt_per_host() -> None:
    result = StepResult(exit_code=0, signal=None, duration=0.5)
    events = [
        StepStarted("s", 1, "command", command="uptime", host="web1", time=1.0),
        StepStarted("s", 1, "command", command="uptime", host="web2", time=1.0),
        Output("s", 1, "one\n", host="web1", time=1.1),
        Output("s", 1, "two\n", host="web2", time=1.1),
        StepFinished("s", 1, StepStatus.SUCCEEDED, result=result, host="web1", time=2.0),
        StepFinished("s", 1, StepStatus.FAILED, host="web2", reason="refused", time=2.0),
        StepFinished("s", 0, StepStatus.FAILED, reason="1 of 2 hosts failed", time=2.0),
    ]
    (step,), _ = replay(events)
    assert step.status == "failed" and step.reason == "1 of 2 hosts failed"
    assert [(a.host, a.status, a.exit_code, a.output) for a in step.attempts] == [
        ("web1", "succeeded", 0, "one\n"),
        ("web2", "failed", None, "two\n"),
    ]


def test_an_exec_targets_side_channel_drops_only_its_terminal_flags() -> None:
    words = ("kubectl", "exec", "-i", "-t", "-c", "app", "api-0", "--")
    connection = exec_connection("pod", words)
    assert connection.shell[: len(words)] == words and connection.shell[-3:-1] == ("sh", "-c")
    assert connection.side == ("kubectl", "exec", "-i", "-c", "app", "api-0", "--")
    assert exec_connection("c", ("docker", "exec", "-it", "web")).side == (
        "docker",
        "exec",
        "-i",
        "web",
    )
    assert exec_connection("u", ("sudo", "-iu", "deploy")).side == ("sudo", "-iu", "deploy")
    assert exec_connection("u", ("x", "--tty", "y")).side_command(["a b"]) == ["x", "y", "a b"]


SECTIONS = """
    ---
    targets:
      web: {group: [web1, web2]}
      db1: {ssh: db1.internal}
    ---
    # Deploy

    ```bash
    echo here
    ```

    ## Restart the web tier {target: web}

    ```bash
    systemctl restart app
    ```

    ### Check it {#check}

    ```bash
    curl -fsS localhost/health
    ```

    ```bash {target: db1}
    psql -c 'select 1'
    ```

    - [ ] look at the dashboard

    ## Back here

    ```bash
    echo here again
    ```
    """


def test_a_headings_target_holds_for_its_section_and_subsections() -> None:
    runbook = parse(SECTIONS)
    restart = next(s for s in runbook.sections if s.target)
    assert (restart.title, restart.line, restart.target) == ("Restart the web tier", 12, "web")
    assert restart.annotation == "{target: web}" and restart.annotation_column == 25
    assert [s.title for s in runbook.sections][2] == "Check it {#check}"  # attribute lists stay
    where = [(s.id, s.target, s.target_section) for s in runbook.steps]
    assert where == [
        ("deploy-1", None, None),
        ("restart-the-web-tier-1", "web", "restart-the-web-tier"),
        ("check-it-check-1", "web", "restart-the-web-tier"),
        ("check-it-check-2", "db1", None),  # the step's own target wins
        ("check-it-check-3", None, None),  # a manual step runs nowhere
        ("back-here-1", None, None),
    ]
    notes = [(d.code, d.location.line, d.location.column) for d in runbook.diagnostics]
    assert notes == [("section-target", 12, 25)]
    assert "2 command step(s)" in runbook.diagnostics[0].message


def test_a_sections_target_is_checked_once_at_its_heading() -> None:
    checked = plan(SECTIONS.replace("{target: web}", "{target: wbe}"))
    errors = [(d.code, d.location.line, d.hint) for d in checked.diagnostics if d.is_error]
    assert errors == [("unknown-target", 12, "did you mean 'web'?")]


def test_a_headings_annotation_is_read_strictly() -> None:
    runbook = parse(
        """
        # T {targte: web}

        ## Braces {x} in a title stay

        ## Payload {"id": 1}

        ## Empty {target: ""}

        ## No steps {target: web}
        """
    )
    assert [s.title for s in runbook.sections] == [
        "T",
        "Braces {x} in a title stay",
        'Payload {"id": 1}',  # an example, not an annotation
        "Empty",
        "No steps",
    ]
    assert found(runbook.diagnostics) == [
        ("unknown-key", 1),
        ("annotation-value", 7),
        ("section-target", 9),
    ]
    assert runbook.diagnostics[0].hint == "did you mean 'target'?"


def test_a_targets_session_state_is_kept_apart_from_the_local_one() -> None:
    local = SessionState(cwd="/srv", variables='declare -- A="1"\n')
    box = SessionState(cwd="/tmp", variables='declare -- B="2"\n', host="box")
    assert SessionState.from_data(box.to_data()) == box
    assert "host" not in local.to_data()
    events = [
        StepStarted("a", 1, "command"),
        StepFinished("a", 1, StepStatus.SUCCEEDED, state=local),
        StepStarted("b", 1, "command"),
        StepFinished("b", 1, StepStatus.SUCCEEDED, state=box),
    ]
    detail = RunDetail(None, tuple(events), ())  # type: ignore[arg-type]
    assert detail.session_state == local and detail.target_states == {"box": box}
