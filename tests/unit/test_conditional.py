"""Entity tags and the two comparisons of RFC 9110 section 13.1 (`jsonapi.conditional`)."""

from __future__ import annotations

import pytest

from supportdesk.jsonapi.conditional import entity_tag, match, none_match

TAG = entity_tag(b'{"data": {}}')


def test_entity_tags_are_strong_quoted_and_follow_the_bytes() -> None:
    assert TAG.startswith('"') and TAG.endswith('"') and len(TAG) == 34
    assert entity_tag(b'{"data": {}}') == TAG
    assert entity_tag(b'{"data":{}}') != TAG


@pytest.mark.parametrize(
    ("header", "weak", "strong"),
    [
        (TAG, True, True),
        ("*", True, True),
        (" * ", True, True),
        (f"W/{TAG}", True, False),
        (f'"a", {TAG}', True, True),
        (f'"a",{TAG}', True, True),
        (f'"a" ,\t W/{TAG}', True, False),
        (f'W/"a", {TAG}, "b"', True, True),
        (f" {TAG} ", True, True),
        ('"a"', False, False),
        ('"a", W/"b"', False, False),
        (TAG.strip('"'), False, False),  # not an entity tag
        (f"{TAG[:-1]}", False, False),  # unterminated
        ("", False, False),
        ("**", False, False),
        (f'"{TAG}"', False, False),  # a different opaque tag
    ],
)
def test_comparisons(header: str, weak: bool, strong: bool) -> None:
    assert none_match(header, TAG) is weak
    assert match(header, TAG) is strong
