"""The plugin never changes the author's structure: a corpus of awkward pages (fences in lists
at every indentation, in admonitions, content tabs and block quotes, four-space-indented
fences, HTML blocks) is built with and without the plugin, and every page has the same
lists, list items, paragraphs, code blocks, links and tables; the plugin's own elements
(class `rb-...`) are left out of the count. Each command step gets its header, right before
its own code block.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.loader import read_runbook
from engine.model import StepKind

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"
COUNTED = [
    "ul",
    "ol",
    "li",
    "p",
    "pre",
    "code",
    "a",
    "table",
    "tr",
    "td",
    "blockquote",
    "details",
    "summary",
    "input",
    "h1",
    "h2",
    "h3",
    "h4",
    "div",
]

LISTS = """\
---
title: Deploy the web tier
owner: web-team@example.com
tags: [web]
---

# Deploy the web tier

Follow the steps in order. Ask in #web if anything looks off.

1. Copy the files:
   ```bash
   cp -r build/ /srv/www/next/
   ```
2. Check them (blank lines around the fence):

   ```bash
   ls -l /srv/www/next/
   ```

3. Restart with a fence indented four spaces in the item:
    ```bash
    systemctl restart nginx
    ```
4. Confirm:
   - [ ] The dashboard is green
   - [ ] The pager is quiet
5. Nested lists:
   - On the primary:
     ```sh
     curl -fsS http://localhost/healthz
     ```
   - On the replica:

       ```sh
       curl -fsS http://replica/healthz
       ```

* A bullet with a fence two spaces in:
  ```bash
  echo two-space
  ```
* And the last bullet, with a [link](https://example.com/runbooks).

Closing remarks after the list.
"""

BOXES = """\
# Rotate the TLS certificates

Certificates expire every 90 days. See [the policy](https://example.com/tls).

!!! warning "Before you start"
    Tell the team in the channel.

    ```bash
    echo "rotating certificates now"
    ```

??? note "Optional clean-up"
    ```bash
    rm -rf /tmp/certs
    ```

=== "Debian"

    ```bash
    apt-get install -y certbot
    ```

=== "RHEL"

    ```bash
    dnf install -y certbot
    ```

> **From the on-call notes:**
>
> ```bash
> journalctl -u certbot --since today
> ```
>
> Look for "renewed".

    ```bash
    # a four-space-indented fence at the top level is an indented code block
    ```

Prose after the indented block.

<div class="note-from-html">
<p>An HTML block with a <a href="https://example.com">link</a>.</p>
</div>

<details><summary>Raw HTML details</summary>
<pre>not a step</pre>
</details>

## Renew

```bash
certbot renew
```

| host | role |
|------|------|
| web1 | edge |
"""

WIKI = """\
# Disk is full on a web host

Symptoms: alerts `DiskFull` for `/var`.

1. Log in to the host and look at the usage:

   ```console
   $ df -h /var
   Filesystem      Size  Used Avail Use% Mounted on
   /dev/sda3        20G   19G  1.0G  95% /var
   ```

2. Find the largest directories:

   ```
   $ du -xh /var | sort -h | tail
   ```

3. Clean the journal:
   ```shell
   journalctl --vacuum-time=3d
   ```
   then check again.

~~~bash
echo "a tilde fence"
~~~

How the alert is routed:

```mermaid
graph LR
  alert --> pager --> oncall
```
"""

CORPUS = {"lists.md": LISTS, "boxes.md": BOXES, "wiki.md": WIKI}


class Counts(HTMLParser):
    """Element counts in an article, leaving out the plugin's own elements (class rb-...)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.stack: list[tuple[str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ours = any(name == "class" and re.search(r"\brb-", v or "") for name, v in attrs)
        hidden = ours or any(skip for _, skip in self.stack)
        if tag not in {"input", "br", "img", "hr", "meta", "link"}:
            self.stack.append((tag, hidden))
        if not hidden and tag in COUNTED:
            self.counts[tag] += 1

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return


def article(page: Path) -> str:
    text = page.read_text(encoding="utf-8")
    match = re.search(r"<article\b.*?</article>", text, flags=re.S)
    assert match, f"no <article> in {page}"
    return match.group(0)


def counts(fragment: str) -> Counter[str]:
    parser = Counts()
    parser.feed(fragment)
    return parser.counts


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("structure")
    docs = root / "docs"
    docs.mkdir()
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config)
    config = re.sub(r"(?m)^strict:.*$", "strict: false", config)
    (root / "with.yml").write_text(config, encoding="utf-8")
    (root / "without.yml").write_text(re.sub(r"(?m)^\s*- runbook\s*$\n", "", config))
    env = {k: v for k, v in os.environ.items() if k not in {"RUNBOOK_JOURNAL", "MKDOCS_CONFIG"}}
    env.update(NO_MKDOCS_2_WARNING="1", RUNBOOK_JOURNAL=str(root / "none.db"))
    for name in ("with", "without"):
        result = subprocess.run(
            [str(MKDOCS), "build", "-q", "-f", f"{name}.yml", "-d", f"site-{name}"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    return root, root / "site-with", root / "site-without"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_plugin_keeps_every_element_of_the_page(
    builds: tuple[Path, Path, Path], name: str
) -> None:
    _, with_plugin, without = builds
    page = f"{name.removesuffix('.md')}/index.html"
    plain = counts(article(without / page))
    assert plain["pre"] >= 3
    assert counts(article(with_plugin / page)) == plain


def test_a_list_with_fences_stays_one_list(builds: tuple[Path, Path, Path]) -> None:
    _, with_plugin, _ = builds
    body = article(with_plugin / "lists/index.html")
    ordered = re.search(r"<ol>.*</ol>", body, flags=re.S)
    assert ordered, "no ordered list"
    items = re.findall(r"<li>", ordered.group(0))
    assert len(items) >= 5 + 2 + 2  # five steps, two checklist items, two nested bullets
    text = html.unescape(re.sub(r"<[^>]+>", "", ordered.group(0)))
    assert "cp -r build/" in text and "systemctl restart nginx" in text and "Check them" in text
    assert "rb-graph" not in ordered.group(0), "the graph is inside the list"
    assert body.index("rb-graph") < body.index("<ol>"), "the graph is not after the introduction"


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_command_step_has_its_header_before_its_code(
    builds: tuple[Path, Path, Path], name: str
) -> None:
    root, with_plugin, _ = builds
    runbook = read_runbook(root / "docs" / name, name)
    body = article(with_plugin / f"{name.removesuffix('.md')}/index.html")
    commands = [s for s in runbook.steps if s.kind is StepKind.COMMAND]
    assert commands, "the parser found no command step"
    for step in commands:
        assert body.count(f'id="step-{step.id}"') == 1, step.id
        after = body[body.index(f'id="step-{step.id}"') :]
        code = re.search(r"<pre\b[^>]*>(.*?)</pre>", after, flags=re.S)
        assert code, step.id
        text = html.unescape(re.sub(r"<[^>]+>", "", code.group(1)))
        first = next(line.strip() for line in step.body.splitlines() if line.strip())
        assert first.lstrip("$ ") in text, (step.id, text)


def test_mermaid_is_loaded_only_by_pages_with_an_authors_diagram(
    builds: tuple[Path, Path, Path],
) -> None:
    _, with_plugin, _ = builds
    wiki = (with_plugin / "wiki/index.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in wiki
    assert '<script src="../assets/runbook/mermaid.min.js"></script>' in wiki
    for page in ("lists", "boxes"):
        text = (with_plugin / page / "index.html").read_text(encoding="utf-8")
        assert "mermaid.min.js" not in text, page
    assert (with_plugin / "assets/runbook/mermaid.min.js").is_file()


SEEDS = ROOT.parent / "shared" / "seeds"


def test_real_runbooks_keep_their_structure(tmp_path: Path) -> None:
    """The real-world runbooks in ../shared/seeds (when present), repaired by `check --fix`."""
    seeds = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    if not seeds:
        pytest.skip(f"no seeds in {SEEDS}")
    docs = tmp_path / "docs"
    docs.mkdir()
    for seed in seeds:
        (docs / f"{seed.stem}.md").write_bytes(seed.read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in {"RUNBOOK_JOURNAL", "MKDOCS_CONFIG"}}
    env.update(NO_MKDOCS_2_WARNING="1", RUNBOOK_JOURNAL=str(tmp_path / "none.db"))
    subprocess.run(
        [str(MKDOCS.parent / "runbook"), "check", "--fix", "docs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^docs_dir:.*$", "docs_dir: docs", config)
    config = re.sub(r"(?m)^strict:.*$", "strict: false", config)
    (tmp_path / "with.yml").write_text(config, encoding="utf-8")
    (tmp_path / "without.yml").write_text(re.sub(r"(?m)^\s*- runbook\s*$\n", "", config))
    for name in ("with", "without"):
        result = subprocess.run(
            [str(MKDOCS), "build", "-q", "-f", f"{name}.yml", "-d", f"site-{name}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    headers = 0
    for seed in seeds:
        page = f"{seed.stem}/index.html"
        with_plugin = article(tmp_path / "site-with" / page)
        assert counts(with_plugin) == counts(article(tmp_path / "site-without" / page)), seed.name
        headers += with_plugin.count('<h6 class="rb-step"')
    assert headers > 0, "no step of any seed got a header"
