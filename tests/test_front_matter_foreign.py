"""Pages written for other site generators run as they are; YAML never changes a value; fence
forms of other generators are bash fences; out-of-range annotations are clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import found, parse
from runbook_cli import check_json, cli, codes, run_in_pty, show_json

ROOT = Path(__file__).resolve().parent.parent
MKDOCS = Path(sys.executable).parent / "mkdocs"

# mkdocs-material blog post and Jekyll page keys, a Docusaurus page's, a TechDocs page's.
BLOG = """\
---
title: Clear the CDN cache
date: 2024-05-02
authors: [kari, ola]
categories: [cdn]
tags: [cdn, cache]
layout: post
permalink: /runbooks/cdn-cache/
sidebar_position: 3
slug: cdn-cache
readtime: 4
pin: true
---

# Clear the CDN cache

```bash {.line-numbers}
echo purged > purge.log
```

```{bash}
cat purge.log
```
"""

TYPED = """\
---
params:
  version: {default: 1.10}
  mode: {default: 0644}
  answer: {default: NO}
  at: {default: "12:30"}
  day: 08
  replicas: {default: 0644, type: int}
  ratio: {default: 1.10, type: float}
  force: {default: NO, type: bool}
  size: {choices: [1.10, 1.2], default: 1.10}
---

```bash
echo "$VERSION $MODE $ANSWER $AT $DAY $REPLICAS $RATIO $FORCE $SIZE" > values.txt
```
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- foreign front matter --------------------------------------------------------------------


def test_keys_of_other_site_generators_are_accepted_silently() -> None:
    runbook = parse(BLOG)
    assert runbook.diagnostics == ()
    assert runbook.title == "Clear the CDN cache"
    assert runbook.tags == ("cdn", "cache")
    assert {"date", "authors", "layout", "permalink", "slug"} <= dict(
        runbook.front_matter_keys
    ).keys()


@pytest.mark.parametrize(("typo", "meant"), [("parms", "params"), ("timout", "timeout")])
def test_a_key_one_edit_from_a_runbook_key_is_still_an_error_with_a_hint(
    typo: str, meant: str
) -> None:
    runbook = parse(f"---\n{typo}: 1\n---\n")
    (diagnostic,) = runbook.diagnostics
    assert (diagnostic.code, diagnostic.location.line, diagnostic.is_error) == (
        "unknown-key",
        2,
        True,
    )
    assert diagnostic.hint == f"did you mean '{meant}'?"


def test_docusaurus_tags_with_labels_are_read_as_words() -> None:
    runbook = parse("---\ntags: [{label: cdn, permalink: /cdn}, cache]\nslug: /x\n---\n")
    assert runbook.diagnostics == ()
    assert runbook.tags == ("cdn", "cache")


def test_another_unknown_key_is_a_note_not_an_error() -> None:
    runbook = parse("---\nmy_theme_colour: red\n---\n")
    assert [(d.code, str(d.severity)) for d in runbook.diagnostics] == [("foreign-key", "info")]


def test_fence_forms_of_other_generators_are_bash_steps_and_keep_their_class() -> None:
    runbook = parse(BLOG)
    assert [(s.language, s.classes) for s in runbook.steps] == [
        ("bash", ("line-numbers",)),
        ("bash", ()),
    ]


def test_a_blog_page_checks_clean_and_runs(tmp_path: Path) -> None:
    path = write(tmp_path, "cdn.md", BLOG)
    assert check_json(tmp_path, path) == []
    ran = run_in_pty(tmp_path, path, "--yes")
    assert ran.status == 0, ran.output
    assert (tmp_path / "purge.log").read_text() == "purged\n"


def test_mkdocs_strict_builds_pages_with_foreign_keys_and_fence_forms(tmp_path: Path) -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config)
    write(tmp_path, "mkdocs.yml", config)
    write(tmp_path, "docs/index.md", "# Runbooks\n\n[CDN](cdn.md)\n")
    write(tmp_path, "docs/cdn.md", BLOG)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"RUNBOOK_JOURNAL", "MKDOCS_CONFIG", "FORCE_COLOR"}
    }
    env.update(NO_MKDOCS_2_WARNING="1", NO_COLOR="1", RUNBOOK_JOURNAL=str(tmp_path / "j.db"))
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr
    page = (tmp_path / "site" / "cdn" / "index.html").read_text(encoding="utf-8")
    assert 'class="line-numbers highlight"' in page  # the fence's class is kept
    assert "purged" in page and "cat purge.log" in page
    assert 'id="step-clear-the-cdn-cache-2"' in page  # ```{bash} is a step too


# -- YAML values as written ------------------------------------------------------------------


def test_parameter_defaults_are_read_as_written_unless_a_type_says_otherwise() -> None:
    runbook = parse(TYPED)
    assert runbook.diagnostics == ()
    defaults = {p.name: (p.default, p.type) for p in runbook.params}
    assert defaults == {
        "version": ("1.10", "str"),
        "mode": ("0644", "str"),
        "answer": ("NO", "str"),
        "at": ("12:30", "str"),
        "day": ("08", "str"),
        "replicas": ("644", "int"),
        "ratio": ("1.1", "float"),
        "force": ("false", "bool"),
        "size": ("1.10", "str"),
    }
    assert runbook.param("size").choices == ("1.10", "1.2")  # type: ignore[union-attr]


def test_env_values_are_read_as_written_in_front_matter_and_annotations() -> None:
    fence = "```bash {env: {AT: 12:30, FLAG: NO}}"
    runbook = parse(f"---\nenv: {{MODE: 0644, VERSION: 1.10}}\n---\n{fence}\necho\n```\n")
    assert runbook.env == (("MODE", "0644"), ("VERSION", "1.10"))
    assert runbook.steps[0].env == (("AT", "12:30"), ("FLAG", "NO"))


def test_a_default_that_is_not_of_its_type_is_an_error() -> None:
    runbook = parse("---\nparams:\n  n: {default: many, type: int}\n  m: {type: list}\n---\n")
    assert found(runbook.diagnostics) == [("param-default", 3), ("param-value", 4)]


def test_params_file_values_are_read_as_written_and_checked_by_type(tmp_path: Path) -> None:
    path = write(tmp_path, "typed.md", TYPED)
    values = write(
        tmp_path,
        "values.yml",
        "version: 1.20\nmode: 0755\nanswer: off\nat: 08:15\nday: 09\nreplicas: 010\n",
    )
    ran = run_in_pty(tmp_path, path, "--yes", "--params-file", str(values))
    assert ran.status == 0, ran.output
    assert (tmp_path / "values.txt").read_text() == "1.20 0755 off 08:15 09 10 1.1 false 1.10\n"
    bad = write(tmp_path, "bad.yml", "replicas: three\n")
    ran = run_in_pty(tmp_path, path, "--yes", "--params-file", str(bad))
    assert ran.status == 2
    assert "'replicas' must be a whole number, got 'three'" in ran.output


# -- annotations out of range ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        ("{timeout: .inf}", "'timeout': inf is longer than the 168h a step may wait"),
        ("{timeout: 99999999999d}", "is longer than the 168h a step may wait"),
        ("{retries: 1000000000}", "'retries': 1000000000 retries is more than the 100"),
        ("{retry_delay: 1e300}", "'retry_delay': '1e300' is longer than the 24h"),
        ("{timeout: .nan}", "'timeout': nan is not a duration"),
    ],
)
def test_out_of_range_annotations_are_clear_errors(
    tmp_path: Path, annotation: str, message: str
) -> None:
    path = write(tmp_path, "limits.md", f"```bash {annotation}\necho hi\n```\n")
    (diagnostic,) = check_json(tmp_path, path)
    assert (diagnostic["code"], diagnostic["line"]) == ("annotation-value", 1)
    assert message in diagnostic["message"]
    result = cli(tmp_path, "run", path, "--yes")
    assert result.returncode != 70 and "internal error" not in result.stderr


def test_front_matter_timeout_inf_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "limits.md", "---\ntimeout: .inf\n---\n```bash\necho hi\n```\n")
    assert codes(check_json(tmp_path, path)) == [("error", "front-matter-value", 2)]
    assert show_json(tmp_path, write(tmp_path, "ok.md", "```bash {timeout: 10m}\necho\n```\n"))


HUGO_TOML = """\
    +++
    title = "Scale a deployment"
    weight = 10
    tags = ["k8s"]
    [menu.main]
    parent = "kubernetes"

    [params.replicas]
    default = "3"
    pattern = '^[0-9]+$'
    +++

    Scale it, then check:

    ```bash
    kubectl scale deploy/web --replicas={{ replicas }}
    ```
    """


def test_hugo_toml_front_matter_is_read_like_yaml() -> None:
    runbook = parse(HUGO_TOML)
    assert runbook.title == "Scale a deployment" and runbook.tags == ("k8s",)
    assert [(p.name, p.default, p.pattern) for p in runbook.params] == [
        ("replicas", "3", "^[0-9]+$")
    ]
    (step,) = runbook.steps
    assert (step.line, step.body_line) == (15, 16)
    assert step.prose.strip() == "Scale it, then check:"  # the front matter is no prose
    assert [d for d in runbook.diagnostics if d.is_error] == []


def test_toml_front_matter_errors_name_their_line() -> None:
    runbook = parse(
        HUGO_TOML.replace("    weight = 10\n", "    weight = 10\n    wieght = 3\n").replace(
            "    pattern =", "    patern ="
        )
    )
    assert found(runbook.diagnostics) == [("foreign-key", 4), ("unknown-key", 11)]
    broken = parse('+++\ntitle = "Scale\n+++\n\n```bash\necho hi\n```\n')
    assert found(broken.diagnostics)[0] == ("front-matter-toml", 2)
