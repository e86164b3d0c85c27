"""Heading slugs: lower case, words joined by hyphens, letters of any script kept.

"Första deployment" becomes `första-deployment`; the site uses the same rule for anchors
(pymdownx.slugs.slugify with case="lower"), so ids, links and anchors agree.
"""

from __future__ import annotations

import re
import unicodedata

_STRIP = re.compile(r"[^\w\s-]", re.UNICODE)
_SPACES = re.compile(r"[\s-]+", re.UNICODE)


def slugify(text: str) -> str:
    """The slug of a heading's plain text; empty when it has no letters or digits."""
    text = unicodedata.normalize("NFC", text)
    text = _STRIP.sub("", text).strip().lower()
    return _SPACES.sub("-", text).strip("-_")


class UniqueSlugs:
    """Slugs handed out once each: `slug`, then `slug_1`, `slug_2`... (as mkdocs' table of
    contents does). Each base remembers its last suffix, so 50,000 equal headings stay linear."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._taken = set(taken or ())
        self._suffix: dict[str, int] = {}

    def __call__(self, slug: str) -> str:
        candidate, n = slug, self._suffix.get(slug, 0)
        if n:
            candidate = f"{slug}_{n}"
        while candidate in self._taken:
            n += 1
            candidate = f"{slug}_{n}"
        self._suffix[slug] = n
        self._taken.add(candidate)
        return candidate
