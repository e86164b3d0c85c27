"""Secret masking: secret values, and their base64 and URL-encoded forms, become [secret:NAME].

Applied to everything before it is shown or recorded. The streaming form holds back the tail
of each chunk that could be the start of a secret, so a value split across chunks is caught.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

MIN_LENGTH = 3  # shorter values would mask ordinary text everywhere


def _forms(value: str) -> set[bytes]:
    """The value as shown, shell-quoted, URL-encoded (strict, default, JavaScript-style,
    form-style, upper or lower case escapes) and base64-encoded (standard and URL-safe)."""
    raw = value.encode("utf-8")
    encoded = {
        quote(value, safe=""),
        quote(value),
        quote(value, safe="!'()*~"),
        quote_plus(value),
    }
    encoded |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), e) for e in encoded}
    forms = {raw, shlex.quote(value).encode(), *(e.encode() for e in encoded)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms.add(encoded)
        forms.add(encoded.rstrip(b"="))
    return {f for f in forms if len(f) >= MIN_LENGTH}


class Masker:
    """Replaces every form of every secret value in bytes or text."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._replacement: dict[bytes, bytes] = {}
        for name, value in secrets.items():
            if value and len(value) >= MIN_LENGTH:
                for form in _forms(value):
                    self._replacement.setdefault(form, f"[secret:{name}]".encode())
        forms = sorted(self._replacement, key=len, reverse=True)
        self._pattern = re.compile(b"|".join(re.escape(f) for f in forms)) if forms else None
        self.longest = max((len(f) for f in forms), default=0)
        self._forms = forms

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask_bytes(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        return self._pattern.sub(lambda m: self._replacement[m.group(0)], data)

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
