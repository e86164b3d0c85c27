"""A parameter's `type` (str, int, float, bool): how a value given as text is read and
checked. Pure and small: the run path asks it without loading the front-matter reader."""

from __future__ import annotations

import re

PARAM_TYPES = ("str", "int", "float", "bool")
_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})
TYPE_NAMES = {"str": "text", "int": "whole number", "float": "number", "bool": "true or false"}


def typed_value(text: str, kind: str) -> str | None:
    """A value's text for its parameter type (None when it is not one): text stays as written."""
    text = text.strip() if kind != "str" else text
    if kind == "int":
        return str(int(text, 10)) if re.fullmatch(r"[+-]?\d+", text) else None
    if kind == "float":
        try:
            number = float(text)
        except ValueError:
            return None
        return repr(number) if number == number and abs(number) != float("inf") else None
    if kind == "bool":
        lowered = text.lower()
        return "true" if lowered in _TRUE else "false" if lowered in _FALSE else None
    return text
