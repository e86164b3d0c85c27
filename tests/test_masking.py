"""Masking: a secret is hidden in every form it takes in output, whole or streamed in pieces."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.masking import Masker, StreamMasker


def streamed(masker: Masker, data: bytes, size: int) -> bytes:
    stream = StreamMasker(masker)
    out = b"".join(stream.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + stream.flush()


def test_http_basic_credentials_are_masked_at_every_offset() -> None:
    masker = Masker({"pw": "hunter2-xyz"})
    for user in ("a", "ab", "abc", "admin", "operator"):
        header = b"Authorization: Basic " + base64.b64encode(f"{user}:hunter2-xyz".encode())
        masked = masker.mask_bytes(header)
        assert b"[secret:pw]" in masked, user
        for offset in range(3):
            fragment = base64.b64encode(b"\0" * offset + b"hunter2-xyz")[3:12]
            assert fragment not in masked


@given(prefix=st.binary(max_size=7), suffix=st.binary(max_size=7))
@settings(max_examples=200, deadline=None)
def test_base64_of_a_secret_inside_any_text_never_shows_its_middle(
    prefix: bytes, suffix: bytes
) -> None:
    secret = "correct horse battery"
    encoded = base64.b64encode(prefix + secret.encode() + suffix)
    masked = Masker({"s": secret}).mask_bytes(encoded)
    assert b"[secret:s]" in masked
    # Nothing of the encoding that depends only on the secret's middle is left.
    middle = base64.b64encode(secret.encode()[3:18])[:8]
    assert middle not in masked or middle in base64.b64encode(prefix + suffix)


def test_json_escapes_of_a_non_ascii_secret_are_masked() -> None:
    secret = "pässwörd/Ünïcode"
    masker = Masker({"s": secret})
    for encoded in (
        json.dumps({"password": secret}),
        json.dumps({"password": secret}, ensure_ascii=False),
        json.dumps({"password": secret})
        .replace("\\u00e4", "\\u00E4")
        .replace("\\u00f6", "\\u00F6")
        .replace("\\u00dc", "\\u00DC")
        .replace("\\u00ef", "\\u00EF"),
        json.dumps({"password": secret}).replace("/", "\\/"),
    ):
        masked = masker.mask(encoded)
        assert masked == '{"password": "[secret:s]"}', encoded


def test_a_secret_split_by_colour_codes_or_carriage_returns_is_masked() -> None:
    masker = Masker({"token": "tok-12345"})
    for shown in (
        b"token: tok-\x1b[1m12345\x1b[0m done",
        b"token: t\x1b[31mo\x1b[0mk-12345 done",
        b"token: tok-123\r45 done",
        b"token: tok\x1b]0;title\x07-12345 done",
    ):
        masked = masker.mask_bytes(shown)
        assert b"12345" not in masked and b"[secret:token]" in masked, shown
        for size in (1, 2, 3, 5, 64):
            chunked = streamed(masker, shown, size)
            assert b"12345" not in chunked and b"[secret:token]" in chunked, (shown, size)


@given(
    before=st.binary(max_size=20),
    after=st.binary(max_size=20),
    size=st.integers(1, 16),
    codes=st.lists(
        st.sampled_from([b"\x1b[0m", b"\x1b[1;31m", b"\r", b""]), min_size=9, max_size=9
    ),
)
@settings(max_examples=200, deadline=None)
def test_streamed_secret_with_control_codes_is_masked_in_any_chunking(
    before: bytes, after: bytes, size: int, codes: list[bytes]
) -> None:
    secret = b"s3cr3t-val"
    shown = secret[:1] + b"".join(c + bytes([b]) for c, b in zip(codes, secret[1:], strict=True))
    data = before.replace(b"\x1b", b"") + shown + after.replace(b"\x1b", b"")
    out = streamed(Masker({"s": secret.decode()}), data, size)
    assert b"[secret:s]" in out
    assert b"cr3t" not in _plain(out)


def _plain(data: bytes) -> bytes:
    return data.replace(b"\x1b[0m", b"").replace(b"\x1b[1;31m", b"").replace(b"\r", b"")


def test_the_existing_forms_are_still_masked() -> None:
    masker = Masker({"pw": "p@ss w'rd"})
    assert masker.mask("x p@ss w'rd y") == "x [secret:pw] y"
    assert masker.mask("x p%40ss%20w%27rd y") == "x [secret:pw] y"
    assert masker.mask("x " + base64.b64encode(b"p@ss w'rd").decode() + " y") == "x [secret:pw] y"
    assert not Masker({})
    assert Masker({}).mask("abc") == "abc"
