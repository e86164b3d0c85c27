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


def unique_slug(slug: str, taken: set[str]) -> str:
    """`slug`, or `slug_1`, `slug_2`... when already taken (as mkdocs' table of contents does)."""
    candidate, n = slug, 0
    while candidate in taken:
        n += 1
        candidate = f"{slug}_{n}"
    taken.add(candidate)
    return candidate
