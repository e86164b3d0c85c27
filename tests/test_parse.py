"""parse: one test per rule of the format, on plain strings, asserting exact codes and lines."""

from __future__ import annotations

from engine.model import Confirm, StepKind
from tests.conftest import found, parse

F = "```"


def test_plain_markdown_without_annotations_gives_steps_and_sections() -> None:
    runbook = parse(f"""
        # Deploy
        Some prose.
        ## Build
        {F}bash
        make build
        {F}
        - [ ] Tell the team
        """)
    assert runbook.title == "Deploy"
    assert [s.slug for s in runbook.sections] == ["deploy", "build"]
    assert runbook.sections[1].parent == "deploy"
    assert [(s.id, s.kind, s.line) for s in runbook.steps] == [
        ("build-1", StepKind.COMMAND, 4),
        ("build-2", StepKind.MANUAL, 7),
    ]
    assert runbook.steps[0].body == "make build\n"
    assert runbook.steps[0].body_line == 5
    assert runbook.diagnostics == ()


def test_every_shell_language_is_a_step_and_other_languages_are_not() -> None:
    blocks = "".join(f"{F}{lang}\necho\n{F}\n" for lang in ("bash", "sh", "shell", "zsh", "BASH"))
    blocks += f"{F}yaml\na: 1\n{F}\n{F}\nplain\n{F}\n{F}json\n{{}}\n{F}\n"
    runbook = parse("# A\n" + blocks)
    assert [s.language for s in runbook.steps] == ["bash", "sh", "shell", "zsh", "bash"]


def test_front_matter_fields() -> None:
    runbook = parse("""
        ---
        title: Restore
        description: Bring back the dump
        owner: ops@example.com
        tags: [postgres, db]
        params:
          backup_file: {description: Dump, default: /backups/latest.dump}
          environment: {choices: [staging, production], default: staging}
          db_password: {secret: true}
          retries: 3
        env: {PGHOST: db.internal}
        shell: bash
        timeout: 10m
        hide: [toc]
        ---
        # Ignored as title
        """)
    assert runbook.diagnostics == ()
    assert runbook.title == "Restore"
    assert runbook.owner == "ops@example.com"
    assert runbook.tags == ("postgres", "db")
    assert runbook.timeout == 600
    assert runbook.env == (("PGHOST", "db.internal"),)
    params = {p.name: p for p in runbook.params}
    assert params["backup_file"].default == "/backups/latest.dump"
    assert params["backup_file"].line == 7
    assert params["environment"].choices == ("staging", "production")
    assert params["db_password"].secret and params["db_password"].required
    assert params["retries"].default == "3" and not params["retries"].required


def test_unknown_front_matter_key_has_a_hint_at_its_line() -> None:
    runbook = parse("---\ntitle: x\nparms: {}\n---\n")
    assert found(runbook.diagnostics) == [("unknown-key", 3)]
    assert runbook.diagnostics[0].hint == "did you mean 'params'?"


def test_unknown_param_key_at_its_line() -> None:
    runbook = parse("---\nparams:\n  host:\n    defualt: x\n---\n")
    assert found(runbook.diagnostics) == [("unknown-key", 4)]
    assert runbook.diagnostics[0].hint == "did you mean 'default'?"


def test_unclosed_front_matter_is_an_error_at_line_1() -> None:
    runbook = parse("---\ntitle: x\n# Heading\n")
    assert found(runbook.diagnostics) == [("front-matter-unclosed", 1)]


def test_invalid_yaml_front_matter_is_an_error_at_its_line() -> None:
    runbook = parse("---\ntitle: x\ntags: [a, b\n---\n")
    assert [d.code for d in runbook.diagnostics] == ["front-matter-yaml"]
    assert runbook.diagnostics[0].location.line >= 3


def test_python_tags_in_front_matter_are_refused_never_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"
    runbook = parse(
        f"---\ntitle: x\nevil: !!python/object/apply:os.system ['touch {marker}']\n---\n"
    )
    assert found(runbook.diagnostics) == [("front-matter-yaml", 3)]
    assert not marker.exists()


def test_page_keys_of_mkdocs_material_and_runme_are_accepted() -> None:
    runbook = parse(
        "---\nhide: [navigation]\nicon: x\nstatus: new\nsubtitle: s\nsearch: {boost: 2}\n"
        "template: t.html\ncomments: true\nrunme: {id: 01H, version: v3}\nskipPrompts: true\n"
        "shell: bash\ncwd: /tmp\n---\n"
    )
    assert runbook.diagnostics == ()
    assert runbook.cwd == "/tmp"


def test_annotation_keys_are_read() -> None:
    runbook = parse(f"""
        # A
        {F}bash {{id: stop-api}}
        echo
        {F}
        {F}bash {{id: restore, needs: [stop-api], timeout: 30m, confirm: danger, retries: 2, retry_delay: 5s, on_failure: continue, interactive: true, cwd: /srv, env: {{A: 1}}, capture: out, when: 'x == 1'}}
        echo
        {F}
        """)  # noqa: E501
    step = runbook.step("restore")
    assert step is not None
    assert step.needs == ("stop-api",)
    assert step.timeout == 1800 and step.retries == 2 and step.retry_delay == 5
    assert step.confirm is Confirm.DANGER and step.on_failure == "continue"
    assert step.interactive and step.cwd == "/srv" and step.env == (("A", "1"),)
    assert step.capture == "out" and step.when == "x == 1"
    assert step.explicit_id


def test_unknown_annotation_key_has_a_hint_and_its_column() -> None:
    runbook = parse(f"# A\n{F}bash {{id: a, timout: 5m}}\necho\n{F}\n")
    [diagnostic] = runbook.diagnostics
    assert (diagnostic.code, diagnostic.location.line, diagnostic.location.column) == (
        "unknown-key",
        2,
        17,
    )
    assert diagnostic.hint == "did you mean 'timeout'?"


def test_bad_annotation_values_are_each_reported() -> None:
    runbook = parse(
        f"# A\n{F}bash {{id: a, timeout: soon, retries: -1, confirm: maybe, run: perhaps}}\n"
        f"echo\n{F}\n"
    )
    assert [d.message.split(":")[0] for d in runbook.diagnostics] == [
        "'timeout'",
        "'retries'",
        "'confirm'",
        "'run'",
    ]
    assert {d.code for d in runbook.diagnostics} == {"annotation-value"}


def test_unclosed_or_malformed_annotation() -> None:
    runbook = parse(f"# A\n{F}bash {{id: a\necho\n{F}\n{F}bash {{[1, 2]: x: y}}\necho\n{F}\n")
    assert found(runbook.diagnostics) == [("annotation-syntax", 2), ("annotation-syntax", 5)]


def test_missing_space_after_colon_gets_a_specific_hint() -> None:
    runbook = parse(f"# A\n{F}bash {{id:restore}}\necho\n{F}\n")
    assert runbook.diagnostics[0].hint == "put a space after the colon: id: restore"


def test_json_annotation_and_runme_attributes() -> None:
    runbook = parse(
        f"# A\n"
        f'{F}sh {{"name": "hello", "excludeFromRunAll": "true", "interactive": "false"}}\n'
        f"echo\n{F}\n"
        f"{F}sh {{ name=listing interactive=true cwd=/tmp background=false }}\nls\n{F}\n"
    )
    assert runbook.diagnostics == ()
    hello, listing = runbook.steps
    assert (hello.id, hello.run, hello.interactive) == ("hello", False, False)
    assert (listing.id, listing.interactive, listing.cwd) == ("listing", True, "/tmp")


def test_run_false_makes_a_display_only_step() -> None:
    runbook = parse(f"# A\n{F}bash {{run: false}}\necho\n{F}\n")
    assert [s.run for s in runbook.steps] == [False]


def test_other_languages_need_an_interpreter() -> None:
    runbook = parse(
        f"# A\n{F}python {{run: true}}\nprint(1)\n{F}\n"
        f"{F}sql {{interpreter: psql -d app}}\nselect 1;\n{F}\n"
        f"{F}sql {{run: true}}\nselect 1;\n{F}\n"
        f"{F}yaml {{id: config}}\na: 1\n{F}\n"
    )
    assert [(s.language, s.interpreter) for s in runbook.steps] == [
        ("python", "python3"),
        ("sql", "psql -d app"),
    ]
    assert found(runbook.diagnostics) == [("no-interpreter", 8), ("not-a-step", 11)]


def test_task_items_are_manual_steps_also_nested_and_keep_inline_markdown() -> None:
    runbook = parse("""
        # Checklist
        - [ ] Read **the** [guide](g.md)
        - plain item
          - [x] Nested and done
        1. Numbered
           - [ ] Deeper
        - [] not a task
        """)
    assert [(s.body, s.checked, s.line) for s in runbook.steps] == [
        ("Read **the** [guide](g.md)", False, 2),
        ("Nested and done", True, 4),
        ("Deeper", False, 6),
    ]
    assert {s.kind for s in runbook.steps} == {StepKind.MANUAL}


def test_fences_inside_lists_are_steps_with_their_own_lines() -> None:
    runbook = parse("# A\n1. First:\n\n   ```bash\n   echo one\n   ```\n")
    [step] = runbook.steps
    assert (step.line, step.body) == (4, "echo one\n")


def test_unclosed_fence_runs_to_the_end_of_the_document() -> None:
    runbook = parse("# A\n```bash\necho one\necho two\n")
    assert runbook.steps[0].body == "echo one\necho two\n"


def test_derived_ids_use_section_slug_and_position_and_stay_stable() -> None:
    base = f"# Deploy\n{F}bash\na\n{F}\n{F}bash\nb\n{F}\n# Verify\n{F}bash\nc\n{F}\n"
    changed = base.replace("# Verify", "Some prose added.\n\n- a list\n\n# Verify")
    ids = [s.id for s in parse(base).steps]
    assert ids == ["deploy-1", "deploy-2", "verify-1"]
    assert [s.id for s in parse(changed).steps] == ids
    assert [s.id for s in parse(f"{F}bash\nx\n{F}\n").steps] == ["step-1"]


def test_derived_ids_do_not_collide_with_explicit_ids() -> None:
    runbook = parse(f"# Deploy\n{F}bash\na\n{F}\n{F}bash {{id: deploy-1}}\nb\n{F}\n")
    assert [s.id for s in runbook.steps] == ["deploy-1_1", "deploy-1"]
    assert runbook.diagnostics == ()


def test_duplicate_ids_name_both_lines() -> None:
    runbook = parse(f"# A\n{F}bash {{id: a}}\nx\n{F}\n# B\n{F}bash {{id: a}}\ny\n{F}\n")
    [diagnostic] = runbook.diagnostics
    assert (diagnostic.code, diagnostic.location.line) == ("duplicate-id", 6)
    assert "line 2" in diagnostic.message


def test_invalid_step_id() -> None:
    runbook = parse(f"# A\n{F}bash {{id: 'has space'}}\nx\n{F}\n")
    assert found(runbook.diagnostics) == [("annotation-value", 2)]


def test_non_ascii_headings_keep_readable_slugs_and_duplicates_get_suffixes() -> None:
    runbook = parse("# Första deployment\n## Руководство\n## 🚀 Rollback\n## Rollback\n")
    assert [s.slug for s in runbook.sections] == [
        "första-deployment",
        "руководство",
        "rollback",
        "rollback_1",
    ]


def test_expect_items_are_validated() -> None:
    runbook = parse(
        f"# A\n{F}bash {{id: a, expect: [{{prompt: 'Continue\\?', send: y}}, "
        f"{{prompt: 'Password:', send: x, secret: true}}]}}\nx\n{F}\n"
        f"{F}bash {{id: b, expect: [{{prompt: '(', send: y}}, {{send: n}}]}}\nx\n{F}\n"
    )
    first = runbook.step("a")
    assert first is not None
    assert [(e.prompt, e.send, e.secret) for e in first.expect] == [
        ("Continue\\?", "y", False),
        ("Password:", "x", True),
    ]
    assert found(runbook.diagnostics) == [("annotation-value", 5), ("annotation-value", 5)]


def test_not_utf8_text_never_crashes_the_parser() -> None:
    runbook = parse("# Caf\ufffd\n```bash {id: \ufffd}\nx\n```\n")
    assert runbook.sections[0].title == "Caf\ufffd"
