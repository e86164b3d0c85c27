"""HTML kept out of Python-Markdown until a page is rendered.

The plugin writes most of what it adds as HTML: step headers, the header box, run pages. Put
into the Markdown, every tag of it would be parsed by Python-Markdown only to be passed through
unchanged, which took a fifth of a runbook page's render time and most of a run page's. So the
Markdown carries a placeholder word instead, and `restore` puts the HTML back into the rendered
page (the plugin's `on_page_content`), before search indexing or any template sees it.
"""

from __future__ import annotations

import re
import secrets


class Stash:
    """Placeholders for HTML, for one build. Kept until the next build: a page may be rendered
    more than once (mkdocs-material's blog renders a post's excerpt too)."""

    def __init__(self) -> None:
        # Letters and digits only, so no Markdown extension changes it; random, so no text of
        # a page can be taken for one (the key is never published).
        self._key = f"rbstash{secrets.token_hex(6)}n"
        # Two patterns that each start with a literal, which `re` finds fast: one pattern with
        # an optional `(<p>)?` in front was fifty times slower.
        self._alone = re.compile(rf"<p>{self._key}(\d+)x</p>")
        self._anywhere = re.compile(rf"{self._key}(\d+)x")
        self._items: list[tuple[str, bool]] = []  # (HTML, is a block), by number

    def inline(self, html: str) -> str:
        """A placeholder word for `html` where it stands: in a paragraph, a list item, ..."""
        return self._put(html, block=False)

    def block(self, html: str) -> str:
        """A placeholder for block-level `html`: a paragraph of its own, in blank lines."""
        return f"\n\n{self._put(html, block=True)}\n\n"

    def restore(self, content: str) -> str:
        """The rendered page with its placeholders replaced by their HTML."""
        if self._key not in content:
            return content
        content = self._alone.sub(self._take_alone, content)
        return self._anywhere.sub(self._take, content)

    def _put(self, html: str, block: bool) -> str:
        self._items.append((html, block))
        return f"{self._key}{len(self._items) - 1}x"

    def _take_alone(self, match: re.Match[str]) -> str:
        """A placeholder that is a paragraph of its own: a block replaces the paragraph."""
        html, block = self._items[int(match.group(1))]
        return html if block else f"<p>{html}</p>"

    def _take(self, match: re.Match[str]) -> str:
        return self._items[int(match.group(1))][0]
