"""plan: ordering, needs, cycles, failure handlers, template names, parameters."""

from __future__ import annotations

from engine.plan import EdgeKind, resolve_params
from tests.conftest import found, parse, plan

F = "```"


def step(id_: str, annotation: str = "", body: str = "echo") -> str:
    extra = f", {annotation}" if annotation else ""
    return f"{F}bash {{id: {id_}{extra}}}\n{body}\n{F}\n"


def test_document_order_by_default() -> None:
    result = plan("# A\n" + step("a") + step("b") + "- [ ] c\n")
    assert result.order == ("a", "b", "a-3")
    assert result.ok


def test_needs_moves_a_step_only_as_far_as_required() -> None:
    result = plan("# A\n" + step("a", "needs: [c]") + step("b") + step("c") + step("d"))
    assert result.order == ("b", "c", "a", "d")
    assert [(e.source, e.target, e.kind) for e in result.edges] == [("c", "a", EdgeKind.NEEDS)]


def test_unknown_need_has_a_suggestion() -> None:
    result = plan("# A\n" + step("stop-api") + step("b", "needs: [stop-apl]"))
    assert found(result.diagnostics) == [("unknown-step", 5)]
    assert result.diagnostics[0].hint == "did you mean 'stop-api'?"


def test_cycle_names_every_step_in_it() -> None:
    result = plan(
        "# A\n" + step("a", "needs: [b]") + step("b", "needs: [c]") + step("c", "needs: [a]")
    )
    assert found(result.diagnostics) == [("cycle", 2)]
    assert result.diagnostics[0].message.endswith("a -> b -> c -> a")
    assert sorted(result.order) == ["a", "b", "c"]


def test_self_need_and_need_on_display_only_step() -> None:
    result = plan(
        "# A\n" + step("a", "needs: [a]") + step("b", "run: false") + step("c", "needs: b")
    )
    assert found(result.diagnostics) == [("self-need", 2), ("needs-display-only", 8)]
    assert "b" not in result.order


def test_rollback_section_is_a_handler_not_part_of_the_flow() -> None:
    result = plan(
        "# Deploy\n"
        + step("deploy", "on_failure: rollback")
        + step("verify")
        + "## Rollback\n"
        + step("undo")
        + "### Details\n"
        + step("undo-more")
        + "# After\n"
        + step("report")
    )
    assert result.ok
    assert result.order == ("deploy", "verify", "report")
    assert result.handler("rollback") == ("undo", "undo-more")
    assert ("deploy", "rollback", EdgeKind.FAILURE) in [
        (e.source, e.target, e.kind) for e in result.edges
    ]


def test_failure_handler_may_be_a_step() -> None:
    result = plan("# A\n" + step("a", "on_failure: notify") + step("b") + step("notify"))
    assert result.order == ("a", "b")
    assert result.handler("notify") == ("notify",)


def test_unknown_failure_target_and_actions() -> None:
    result = plan(
        "# A\n"
        + step("a", "on_failure: rolback")
        + step("b", "on_failure: continue")
        + step("c", "on_failure: ask")
        + "## Rollback\n"
        + step("r")
    )
    assert found(result.diagnostics) == [("unknown-target", 2)]
    assert result.diagnostics[0].hint == "did you mean 'rollback'?"


def test_step_inside_its_own_handler_section_and_empty_section() -> None:
    result = plan(
        "# A\n## Undo\n"
        + step("a", "on_failure: undo")
        + "## Empty\n"
        + step("b", "on_failure: empty")
    )
    assert found(result.diagnostics) == [("bad-target", 3), ("bad-target", 7)]


def test_a_flow_step_cannot_need_a_handler_step() -> None:
    result = plan("# A\n" + step("a", "on_failure: r") + step("b", "needs: [r]") + step("r"))
    assert found(result.diagnostics) == [("needs-handler", 5)]


def test_template_names_must_be_declared_with_a_suggestion_at_the_expression() -> None:
    text = "---\nparams:\n  host: {default: h}\nenv:\n  REGION: eu\n---\n# A\n" + step(
        "a", body="ping {{ host }} {{ REGION }}\ncurl {{ hots }}"
    )
    result = plan(text)
    [diagnostic] = result.diagnostics
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        "undefined-name",
        10,
        9,
    )
    assert diagnostic.hint == "did you mean 'host'?"


def test_captures_are_known_only_after_the_capturing_step() -> None:
    result = plan(
        "# A\n"
        + step("a", "capture: version")
        + step("b", body="echo {{ version }}")
        + step("c", body="echo {{ later }}")
        + step("d", "capture: later")
        + step("e", "needs: [d]", body="echo {{ later }}")
    )
    assert found(result.diagnostics) == [("capture-order", 9)]


def test_needs_can_make_a_capture_available() -> None:
    result = plan(
        "# A\n" + step("use", "needs: [make]", body="echo {{ v }}") + step("make", "capture: v")
    )
    assert result.ok and result.order == ("make", "use")


def test_when_is_a_checked_expression() -> None:
    result = plan(
        "---\nparams:\n  env: {default: staging}\n---\n# A\n"
        + step("a", "when: 'env == \"production\"'")
        + step("b", "when: 'enviro == 1'")
        + step("c", "when: 'env =='")
    )
    assert found(result.diagnostics) == [("undefined-name", 9), ("when", 12)]


def test_templates_in_env_cwd_and_expect_are_checked() -> None:
    result = plan(
        "# A\n"
        + step(
            "a", "cwd: '{{ dir }}', env: {X: '{{ y }}'}, expect: [{prompt: 'p', send: '{{ z }}'}]"
        )
    )
    assert sorted(d.message.split("'")[1] for d in result.diagnostics) == ["dir", "y", "z"]


def test_template_syntax_errors_and_sandbox_escapes_are_errors_at_their_line() -> None:
    result = plan(
        "# A\n"
        + step("a", body="echo ok\necho {{ x")
        + step("b", body="echo {{ ''.__class__.__mro__ }}")
    )
    assert found(result.diagnostics) == [("template", 4), ("template", 7)]
    assert "not allowed" in result.diagnostics[1].message


def test_go_templates_and_github_expressions_are_left_alone() -> None:
    result = plan("# A\n" + step("a", body="docker ps --format '{{.Names}}' ${{ secrets.X }}"))
    assert result.ok


def test_capture_may_not_shadow_a_parameter() -> None:
    result = plan("---\nparams:\n  v: {default: x}\n---\n# A\n" + step("a", "capture: v"))
    assert found(result.diagnostics) == [("capture-name", 6)]


def test_param_default_outside_choices_or_pattern_is_an_error() -> None:
    result = plan(
        "---\nparams:\n  env:\n    default: prod\n    choices: [staging, production]\n"
        "  port:\n    default: http\n    pattern: '[0-9]+'\n---\n"
    )
    assert found(result.diagnostics) == [("param-default", 4), ("param-default", 7)]
    assert result.diagnostics[0].hint == "choose one of: staging, production"


def test_resolve_params_checks_values() -> None:
    runbook = parse(
        "---\nparams:\n  env: {choices: [a, b], default: a}\n  port: {pattern: '[0-9]+'}\n"
        "  token: {secret: true}\n  note: {required: false}\n---\n"
    )
    values, missing, problems = resolve_params(runbook, {"port": "80x", "enb": "b"})
    assert values == {"env": "a", "port": "80x", "note": ""}
    assert missing == ["token"]
    assert problems == [
        "unknown parameter 'enb'; did you mean 'env'?",
        "'port' must match '[0-9]+', got '80x'",
    ]


def test_a_literal_secret_answer_is_warned_about() -> None:
    from engine.lint import lint_runbook

    runbook = parse(
        "# A\n"
        + step("a", "expect: [{prompt: 'Password:', send: hunter2, secret: true}]")
        + step("b", "expect: [{prompt: 'Password:', send: '{{ pw }}', secret: true}]")
    )
    assert found(lint_runbook(runbook)) == [("literal-secret", 2)]


def test_templates_in_quotes_and_heredocs_pass_check() -> None:
    # Each value is escaped for the quoting context it sits in (tests/test_quoting.py).
    result = plan(
        "---\nparams:\n  file: {default: x}\n---\n# A\n"
        + step("a", body='echo "Restoring {{ file }}"')
        + step("b", body="echo 'Message: {{ file }}'")
        + step("c", body="cat <<EOT\nname {{ file }}\nEOT")
        + step("d", body='echo "fine" {{ file }} "$(cat {{ file }})" "{{ file | unquoted }}"')
    )
    assert found(result.diagnostics) == []


def test_a_rejected_secret_value_is_not_echoed() -> None:
    runbook = parse("---\nparams:\n  pw: {secret: true, pattern: '[a-z]+'}\n---\n")
    _, _, problems = resolve_params(runbook, {"pw": "Sup3r$ecret"})
    assert problems == ["'pw' must match '[a-z]+'"]


def test_a_cycle_inside_a_failure_handler_is_reported() -> None:
    result = plan(
        "# A\n"
        + step("a", "on_failure: rollback")
        + "## Rollback\n"
        + step("r1", "needs: [r2]")
        + step("r2", "needs: [r1]")
    )
    assert [d.code for d in result.diagnostics] == ["cycle"]


def test_a_handler_may_use_only_values_captured_before_the_step_that_fails() -> None:
    result = plan(
        "# A\n"
        + step("before", "capture: early")
        + step("a", "on_failure: rollback")
        + step("c", "capture: late")
        + "## Rollback\n"
        + step("r1", body="echo {{ early }} {{ late }}")
    )
    assert found(result.diagnostics) == [("capture-order", 13)]
    assert "'late'" in result.diagnostics[0].message
