"""Runbook pages as pure functions: the Markdown keeps the author's lines, the graph is sized
to help, and `decorate` puts each step header before its own code block."""

from __future__ import annotations

import dataclasses
import html
import re
import textwrap

from engine.publish.decorate import Decoration, decorate, fences
from engine.publish.home import HomeEntry, home_html
from engine.publish.page import GRAPH_OPEN_STEPS, graph_html, mermaid_source, runbook_markdown
from engine.publish.stash import Stash
from tests.conftest import plan


def many_steps(count: int, id_length: int = 8) -> str:
    parts = ["# Many steps\n\nIntro.\n"]
    for number in range(count):
        step_id = f"s{number:0{id_length}d}"
        parts.append(f"\n```bash {{id: {step_id}}}\necho {number}\n```\n")
    return "".join(parts)


def test_the_markdown_keeps_every_line_of_the_author() -> None:
    text = """\
    # Deploy

    1. Copy:
       ```bash {id: copy}
       cp a b
       ```
    2. Check:
       - [ ] Files are there
    """
    steps = plan(text)
    source_text = textwrap.dedent(text)
    runbook = dataclasses.replace(steps.runbook, text=source_text)  # as the loader sets it
    markdown, decoration = runbook_markdown(runbook, steps, "runbook run x.md", Stash())
    source = source_text.splitlines()
    lines = markdown.splitlines()
    assert len(lines) == len(source)
    assert lines[3] == "   ```bash"  # the annotation is gone, the indentation kept
    assert lines[7].startswith("   - [ ] Files are there rbstash")  # the badge joins its line
    assert [line for line, _, html in decoration.headers if "step-copy" in html] == [3]


def test_a_small_graph_is_open_a_larger_one_collapsed() -> None:
    small = graph_html(plan(many_steps(GRAPH_OPEN_STEPS)))
    assert re.match(r'<details class="rb-graph" data-search-exclude open>', small)
    large = graph_html(plan(many_steps(GRAPH_OPEN_STEPS + 1)))
    assert large.startswith('<details class="rb-graph" data-search-exclude>')
    assert "rb-graph-draw" in large


def test_a_graph_too_large_to_draw_is_a_list_of_steps() -> None:
    steps = plan(many_steps(700, id_length=40))
    assert len(mermaid_source(steps)) > 50_000
    listed = graph_html(steps)
    assert "rb-graph-draw" not in listed
    assert listed.count("<li>") == 700
    assert f'<a href="#step-s{0:040d}">' in listed


def test_nodes_link_to_steps_and_manual_labels_show_no_link_target() -> None:
    text = """\
    # Release

    ```bash {id: build}
    make
    ```

    - [ ] Tell [the release channel](https://chat.example.com/releases) it is out
    """
    source = mermaid_source(plan(text))
    assert 'click s0 href "#step-build"' in source
    assert "the release channel it is out" in source
    assert "chat.example.com" not in source


def test_headers_go_before_their_code_even_with_identical_blocks_elsewhere() -> None:
    source = [
        "# T",
        "```bash",  # line 1: not a step (say, an example)
        "echo same",
        "```",
        "> ```bash",  # line 4: a step in a block quote
        "> echo same",
        "> ```",
    ]
    assert [(f.start, f.end, f.text) for f in fences(source)] == [
        (1, 3, "echo same"),
        (4, 6, "echo same"),
    ]
    page = (
        "<h1>T</h1>"
        '<div class="highlight"><pre><code>echo same</code></pre></div>'
        '<blockquote><div class="language-bash highlight"><pre><code><span>echo</span> same'
        "</code></pre></div></blockquote>"
    )
    out = decorate(page, Decoration("", "", ((5, "echo same", "<h6>HEADER</h6>"),)), source)
    assert out.index("<h6>HEADER</h6>") > out.index("<blockquote>")
    assert '<h6>HEADER</h6><div class="language-bash highlight">' in out


def test_the_graph_goes_after_the_introduction() -> None:
    page = "<h1>T</h1><p>Intro.</p>\n<p>More.</p><ol><li>x</li></ol><h2>A</h2>"
    out = decorate(page, Decoration("<BOX>", "<GRAPH>", ()), ["# T"])
    assert out.index("<BOX>") < out.index("<p>Intro.")
    assert out.index("<GRAPH>") == out.index("<h2>") - len("<GRAPH>")


def test_the_home_page_escapes_and_lists_every_runbook() -> None:
    entries = [
        HomeEntry("Restore <b>it</b>", "restore/", "restore.md", "Back", "dba", ("pg",), 4),
        HomeEntry("Archive", "archive/", "archive.md", "", "", (), 1),
    ]
    out = home_html(entries, "runs/", 12)
    assert "Restore &lt;b&gt;it&lt;/b&gt;" in out and "<b>it" not in out
    assert out.index("Archive") < out.index("Restore")  # by title
    assert '<a href="runs/">12 runs recorded</a>' in out
    assert html.unescape(out).count("never run") == 2
    assert '<option value="pg">pg</option>' in out


def test_a_step_outside_a_fence_gets_its_header_before_the_block_showing_it() -> None:
    source = ["# T", "", "!!! note", "", "        $ systemctl restart web", ""]
    page = (
        '<h1>T</h1><div class="admonition note"><div class="highlight"><pre><code>'
        "$ systemctl restart web</code></pre></div></div>"
    )
    decoration = Decoration("", "", ((4, "systemctl restart web", "<h6>HEADER</h6>"),))
    out = decorate(page, decoration, source)
    assert '<div class="admonition note"><h6>HEADER</h6><div class="highlight">' in out


def test_steps_in_admonitions_and_tabs_get_their_headers_by_source_line() -> None:
    """Whatever steps the parser makes of commands in `!!!` and `===` blocks: each header goes
    before the code block of the fence holding the step's line."""
    source = [
        "# T",
        "",
        '!!! warning "First"',
        "    ```bash",
        "    echo warn",
        "    ```",
        "",
        '=== "Debian"',
        "",
        "    ```bash",
        "    apt-get install -y curl",
        "    ```",
    ]
    page = (
        '<h1>T</h1><div class="admonition warning"><p class="admonition-title">First</p>'
        '<div class="language-bash highlight"><pre><span></span><code>echo warn\n</code></pre>'
        '</div></div><div class="tabbed-set"><div class="tabbed-block">'
        '<div class="language-bash highlight"><pre><span></span><code>apt-get install -y curl\n'
        "</code></pre></div></div></div>"
    )
    headers = ((3, "echo warn", "<h6>A</h6>"), (10, "apt-get install -y curl", "<h6>B</h6>"))
    out = decorate(page, Decoration("", "", headers), source)
    assert '</p><h6>A</h6><div class="language-bash highlight"><pre><span></span><code>echo' in out
    assert '<div class="tabbed-block"><h6>B</h6><div class="language-bash' in out


def test_alternatives_fork_from_the_step_before_and_join_at_the_step_after() -> None:
    text = """\
    # Free disk space

    ```bash
    df -h /var
    ```

    ## Option A: clear the journal

    ```bash
    journalctl --vacuum-size=200M
    ```

    ```bash
    df -h /var
    ```

    ## Option B: drop old images

    ```bash
    docker image prune -af
    ```

    ## Afterwards

    ```bash
    df -h /var
    ```
    """
    source = mermaid_source(plan(text))
    node = dict(re.findall(r'^\s*(s\d+)\["([^"]+)"\]$', source, flags=re.M))
    by_label = {label: name for name, label in node.items()}
    first, a1, a2 = (
        by_label[i]
        for i in (
            "free-disk-space-1",
            "option-a-clear-the-journal-1",
            "option-a-clear-the-journal-2",
        )
    )
    b1, after = by_label["option-b-drop-old-images-1"], by_label["afterwards-1"]
    assert f'{first} -->|"Option A: clear the journal"| {a1}' in source
    assert f'{first} -->|"Option B: drop old images"| {b1}' in source
    assert f"{a1} --> {a2}" in source
    assert f"{a2} --> {after}" in source and f"{b1} --> {after}" in source
    assert f"{a2} --> {b1}" not in source  # the options are not one after the other


def test_nodes_are_styled_by_what_the_engine_judged_and_the_legend_names_only_those() -> None:
    text = """\
    # Rotate

    ```bash
    kubectl delete secret tls-old
    ```

    ```bash
    vim /etc/app.conf
    ```
    """
    drawn = graph_html(plan(text))
    source = mermaid_source(plan(text))
    assert "classDef danger" in source and "class s0 danger" in source
    assert "class s1 interactive" in source
    assert "follow" not in source
    assert "rb-legend-danger" in drawn and "rb-legend-interactive" in drawn
    assert "rb-legend-follow" not in drawn


def test_a_headings_target_leaves_the_heading_and_labels_its_graph_section() -> None:
    text = """\
    ---
    targets:
      web: {group: [web1, web2]}
    ---
    # Deploy

    ## Restart the web tier {target: web} ##

    ```bash
    systemctl restart app
    ```
    """
    steps = plan(text)
    runbook = dataclasses.replace(steps.runbook, text=textwrap.dedent(text))
    markdown, _ = runbook_markdown(runbook, steps, "runbook run x.md", Stash())
    assert markdown.splitlines()[6] == "## Restart the web tier ##"
    assert 'subgraph g0["Restart the web tier · on web"]' in mermaid_source(steps)
    assert "target=web" in html.unescape(
        runbook_markdown(runbook, steps, "x", Stash())[1].headers[0][2]
    )
