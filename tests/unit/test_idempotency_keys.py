"""The pure parts of Idempotency-Key (SPEC 12): the header's syntax, the request fingerprint,
and which answers are kept."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from supportdesk.errors import InvalidIdempotencyKey
from supportdesk.idempotency.keys import Fingerprint, fingerprint, is_kept, parse_key

BASE = ("POST", "/api/v1/admin/tickets", b"include=user", "application/json", b'{"a": 1}')


@pytest.mark.parametrize(
    "value", ["a", "0", "~" * 255, "order-2024/01:retry#1", "550e8400-e29b-41d4-a716-446655440000"]
)
def test_valid_keys(value: str) -> None:
    assert parse_key([value]) == value


@pytest.mark.parametrize(
    "values",
    [
        [""],
        [" "],
        ["a b"],
        ["x" * 256],
        ["tab\t"],
        ["caf\u00e9"],
        ["nul\x00"],
        ["\x7f"],
        ["a", "a"],
    ],
    ids=["empty", "space", "inner-space", "256", "tab", "latin-1", "nul", "del", "twice"],
)
def test_invalid_keys(values: list[str]) -> None:
    with pytest.raises(InvalidIdempotencyKey) as error:
        parse_key(values)
    assert error.value.status == 400
    assert error.value.code == "invalid_idempotency_key"


def test_a_fingerprint_is_sha256_hex_and_stable() -> None:
    value = fingerprint(*BASE)
    assert len(value) == 64 and int(value, 16) >= 0
    assert fingerprint(*BASE) == value


@pytest.mark.parametrize(
    "changed",
    [
        ("GET", *BASE[1:]),
        (BASE[0], "/api/v1/admin/users", *BASE[2:]),
        (*BASE[:2], b"", *BASE[3:]),
        (*BASE[:2], b"include=user&x=1", *BASE[3:]),
        (*BASE[:3], "application/vnd.api+json", BASE[4]),
        (*BASE[:4], b'{"a": 2}'),
        (*BASE[:4], b'{"a":1}'),  # bytes, not meaning: a client retries with the same bytes
    ],
)
def test_every_part_counts(changed: tuple[str, str, bytes, str, bytes]) -> None:
    assert fingerprint(*changed) != fingerprint(*BASE)


def test_parameters_of_a_non_multipart_type_and_case_do_not_count() -> None:
    assert fingerprint(*BASE[:3], "Application/JSON; charset=utf-8", BASE[4]) == fingerprint(*BASE)


def test_parts_cannot_be_shifted_into_each_other() -> None:
    assert fingerprint("POST", "/a", b"b", "", b"") != fingerprint("POST", "/ab", b"", "", b"")
    assert fingerprint("POST", "/a", b"", "", b"x") != fingerprint("POST", "/a", b"x", "", b"")


def multipart(boundary: str, content: bytes, filename: str = "a.txt") -> tuple[str, bytes]:
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="message"\r\n\r\nhello\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="attachments[]"; filename="{filename}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", body


def test_a_multipart_boundary_does_not_count() -> None:
    path = "/api/v1/admin/ticket-messages"
    first = fingerprint("POST", path, b"", *multipart("abc123", b"file"))
    content_type, body = multipart("zz-9999-boundary", b"file")
    assert fingerprint("POST", path, b"", content_type, body) == first
    quoted = content_type.replace("boundary=zz-9999-boundary", 'boundary="zz-9999-boundary"')
    assert fingerprint("POST", path, b"", quoted, body) == first
    # but every other byte does
    assert fingerprint("POST", path, b"", *multipart("abc123", b"File")) != first
    assert fingerprint("POST", path, b"", *multipart("abc123", b"file", "b.txt")) != first


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_different_multipart_contents_never_collide(one: bytes, two: bytes) -> None:
    assume(b"--b1" not in one and b"--b2" not in two)  # a boundary never occurs in its body
    path = "/api/v1/admin/ticket-messages"
    same = fingerprint("POST", path, b"", *multipart("b1", one)) == fingerprint(
        "POST", path, b"", *multipart("b2", two)
    )
    assert same == (one == two)


@given(
    st.sampled_from(["application/json", "multipart/form-data; boundary=xyz"]),
    st.lists(st.sampled_from([b"--", b"xy", b"z", b"-", b"--xyz", b"a", b"\r\n"]), max_size=30),
    st.lists(st.integers(min_value=0, max_value=40), max_size=10),
)
def test_chunk_by_chunk_equals_at_once(
    content_type: str, parts: list[bytes], cuts: list[int]
) -> None:
    """However the body arrives, delimiters split across chunks included."""
    body = b"".join(parts)
    digest = Fingerprint("POST", "/p", b"q", content_type)
    start = 0
    for cut in sorted(min(c, len(body)) for c in cuts):
        digest.update(body[start:cut])
        start = cut
    digest.update(body[start:])
    assert digest.hexdigest() == fingerprint("POST", "/p", b"q", content_type, body)


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (200, True),
        (201, True),
        (202, True),
        (204, True),
        (400, True),
        (404, True),
        (409, True),
        (413, True),
        (422, True),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
    ],
)
def test_which_answers_are_kept(status: int, kept: bool) -> None:
    assert is_kept(status) is kept
