"""What a heading (or an option's label) says its section is for: a rollback plan, a condition,
reference to look things up in. Pure, and small: the run loop asks it without loading the
parser's inference tables."""

from __future__ import annotations

import re

# "Rollback", "How to roll back", "Revert", "Undo", "Back out", "Backout plan", "Rollback (if
# needed)". Only such a heading: "Revert the DNS change" or "Undo maintenance mode" are steps of
# the procedure (a clean-up), not a plan B.
_ROLLBACK = re.compile(
    r"^\W*(how\s+to\s+)?(roll(ing)?[\s-]?back|revert(ing)?|undo(ing)?|back(ing)?[\s-]?out)"
    r"(\s+(plan|procedure|steps|instructions))?\s*(\(.*\)|\bif\b.*|:.*)?$",
    re.IGNORECASE,
)
# Sections an engineer reads when something is wrong or looks things up in, not steps of the
# procedure: their steps are offered, not run in turn.
_REFERENCE = re.compile(
    r"^\W*(appendix|useful\s+commands|handy\s+commands|reference|cheat\s*-?sheet|"
    r"troubleshoot(ing)?|debugging|faq|see\s+also|related|further\s+reading|known\s+issues)\b",
    re.IGNORECASE,
)
# A label that says when to take it: "If it will not stop", "In case the port stays open".
_CONDITION = re.compile(r"(if|in case|only if|when|should)\b", re.IGNORECASE)


def is_rollback(title: str) -> bool:
    """Whether a heading names what to do when the change goes wrong."""
    return _ROLLBACK.match(title) is not None


def is_reference(title: str) -> bool:
    """Whether a heading names troubleshooting, an appendix, useful commands, ..."""
    return _REFERENCE.match(title) is not None


def is_optional(title: str) -> bool:
    """Whether a section or an option is there for when it is needed: under a condition, a
    rollback, troubleshooting or reference."""
    return _CONDITION.match(title) is not None or is_rollback(title) or is_reference(title)
