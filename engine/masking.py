"""Secret masking: secret values, and the forms they take in output, become [secret:NAME].

The forms: shell-quoted, URL-encoded, JSON-escaped, and base64 at each of the three byte
offsets a secret can sit at inside a longer encoded text (HTTP Basic `user:pass`). A raw value
split by terminal control sequences (colour codes, `\\r`) is caught as well. Applied to
everything before it is shown or recorded. The streaming form holds back the tail of each
chunk that could be the start of a secret, so a value split across chunks is caught.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

MIN_LENGTH = 3  # shorter values would mask ordinary text everywhere
MIN_BASE64 = 4  # a shorter fragment of base64 would mask ordinary text everywhere

# What a terminal shows as nothing between two characters: SGR and other CSI codes, OSC
# titles, and carriage returns.
_CONTROL = rb"(?:\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\r)"
_CONTROLS = re.compile(_CONTROL)
_OPEN_CONTROL = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*)?$")


def _base64_forms(raw: bytes) -> set[bytes]:
    """Base64 of the value wherever it starts in a longer text: for each offset the part of
    the encoding that depends on the value's bytes alone (standard and URL-safe)."""
    forms = set()
    for offset, skip in ((0, 0), (1, 2), (2, 3)):
        data = b"\0" * offset + raw
        whole = len(data) // 3 * 4
        for encoder in (base64.b64encode, base64.urlsafe_b64encode):
            fragment = encoder(data)[skip:whole]
            if len(fragment) >= MIN_BASE64:
                forms.add(fragment)
    return forms


def _json_forms(value: str) -> set[str]:
    """The value inside a JSON string, as encoders write it (\\u escapes in either case,
    `/` escaped or not)."""
    ascii_ = json.dumps(value, ensure_ascii=True)[1:-1]
    forms = {ascii_, json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.add(re.sub(r"\\u[0-9a-f]{4}", lambda m: "\\u" + m.group(0)[2:].upper(), ascii_))
    forms |= {f.replace("/", "\\/") for f in forms}
    return forms


def _forms(value: str) -> set[bytes]:
    """The value as shown, shell-quoted, URL-encoded (strict, default, JavaScript-style,
    form-style, upper or lower case escapes), JSON-escaped and base64-encoded."""
    raw = value.encode("utf-8")
    encoded = {
        quote(value, safe=""),
        quote(value),
        quote(value, safe="!'()*~"),
        quote_plus(value),
    }
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}
    forms = {raw, shlex.quote(value).encode(), *(e.encode() for e in encoded)}
    forms |= {j.encode("utf-8") for j in _json_forms(value)}
    for encoded_ in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms.add(encoded_)
        forms.add(encoded_.rstrip(b"="))
    forms |= _base64_forms(raw)
    return {f for f in forms if len(f) >= MIN_LENGTH}


def _split_pattern(raw: bytes) -> bytes:
    """The value with terminal control sequences allowed between its characters."""
    chars = raw.decode("utf-8", "replace")
    pieces = [re.escape(c.encode("utf-8")) for c in chars]
    return (_CONTROL + b"*").join(pieces)


class Masker:
    """Replaces every form of every secret value in bytes or text."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._replacement: dict[bytes, bytes] = {}
        self._raw: list[tuple[bytes, bytes]] = []
        for name, value in secrets.items():
            if value and len(value) >= MIN_LENGTH:
                replacement = f"[secret:{name}]".encode()
                for form in _forms(value):
                    self._replacement.setdefault(form, replacement)
                self._raw.append((value.encode("utf-8"), replacement))
        forms = sorted(self._replacement, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(f) for f in forms)) if forms else None
        self._split = [
            (re.compile(_split_pattern(raw)), replacement) for raw, replacement in self._raw
        ]
        self.longest = max((len(f) for f in forms), default=0)
        self._forms = forms

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask_bytes(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        data = self._pattern.sub(lambda m: self._replacement[m.group(0)], data)
        if b"\x1b" in data or b"\r" in data:
            for pattern, replacement in self._split:
                data = pattern.sub(replacement, data)
        return data

    def mask(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self.mask_bytes(text.encode("utf-8")).decode("utf-8", "replace")

    def pending_prefix(self, data: bytes) -> int:
        """How many trailing bytes could begin a secret form (to hold back until more come)."""
        best = 0
        for form in self._forms:
            for size in range(min(len(form) - 1, len(data)), best, -1):
                if data.endswith(form[:size]):
                    best = size
                    break
        return max(best, self._pending_split(data))

    def _pending_split(self, data: bytes) -> int:
        """A trailing start of a raw value with control sequences inside it (or an unfinished
        control sequence at the very end)."""
        window = data[-(self.longest * 8 + 256) :]
        if b"\x1b" not in window and b"\r" not in window:
            return 0
        best = 0
        for raw, _ in self._raw:
            start = window.find(raw[:1])
            while start >= 0:
                tail = window[start:]
                cleaned = _CONTROLS.sub(b"", _OPEN_CONTROL.sub(b"", tail))
                if cleaned and raw.startswith(cleaned) and len(cleaned) < len(raw):
                    best = max(best, len(tail))
                    break
                start = window.find(raw[:1], start + 1)
        return best


class StreamMasker:
    """Masks a byte stream chunk by chunk; `flush` releases what was held back."""

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self._masker:
            return chunk
        data = self._masker.mask_bytes(self._pending + chunk)
        keep = self._masker.pending_prefix(data)
        self._pending = data[len(data) - keep :] if keep else b""
        return data[: len(data) - keep] if keep else data

    def flush(self) -> bytes:
        data, self._pending = self._masker.mask_bytes(self._pending), b""
        return data
