"""The placeholders of canned replies: finding unknown ones, filling known ones (pure logic)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportdesk.canned_replies import placeholders
from supportdesk.canned_replies.placeholders import PLACEHOLDERS, render, unknown, values
from supportdesk.canned_replies.schemas import CannedReplyCreate
from supportdesk.errors import ValidationFailed
from supportdesk.jsonapi.body import validate

TICKET = {
    "id": 42,
    "subject": "Printer on fire",
    "status": "open",
    "priority": "urgent",
    "department": None,
    "user_id": 7,
}
CUSTOMER = {"id": 7, "first_name": "Ada", "last_name": None, "email": "ada@example.com"}
AGENT = {"id": 9, "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com"}


def test_values_come_from_the_ticket_the_customer_and_the_agent() -> None:
    assert values(TICKET, CUSTOMER, AGENT) == {
        "ticket.id": "42",
        "ticket.subject": "Printer on fire",
        "ticket.status": "open",
        "ticket.priority": "urgent",
        "ticket.department": "",
        "customer.first_name": "Ada",
        "customer.last_name": "",
        "customer.email": "ada@example.com",
        "agent.first_name": "Grace",
        "agent.last_name": "Hopper",
    }
    no_agent = values(TICKET, CUSTOMER, None)
    assert no_agent["agent.first_name"] == no_agent["agent.last_name"] == ""
    assert values(TICKET, None, None)["customer.email"] == ""


def test_every_placeholder_names_a_record_and_an_attribute() -> None:
    for name in PLACEHOLDERS:
        record, dot, attribute = name.partition(".")
        assert dot and record in ("ticket", "customer", "agent") and attribute.isidentifier()
    # the ones SPEC section 12 names
    assert {"ticket.id", "ticket.subject", "customer.first_name", "agent.first_name"} <= set(
        PLACEHOLDERS
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hi {{ customer.first_name }},", "Hi Ada,"),
        ("{{customer.first_name}}{{ agent.first_name}}{{ticket.id }}", "AdaGrace42"),
        ("{{\tticket.subject\n}}", "Printer on fire"),
        ("[{{ customer.last_name }}]", "[]"),
        ("{{{ ticket.id }}}", "{42}"),
        ("{{ ticket.id }", "{{ ticket.id }"),
        ("{ { ticket.id } }", "{ { ticket.id } }"),
        ("{{ ticket.id }}{{ ticket.id }}", "4242"),
        ("{{ nope }} {{ ticket.id }}", "{{ nope }} 42"),
        ("", ""),
    ],
)
def test_render(body: str, expected: str) -> None:
    assert render(body, values(TICKET, CUSTOMER, AGENT)) == expected


def test_values_are_never_expanded_again() -> None:
    tricky = {**TICKET, "subject": "{{ agent.first_name }} {{ ticket.id }}"}
    sneaky = {**CUSTOMER, "first_name": "{{ customer.first_name }}"}
    filled = values(tricky, sneaky, AGENT)
    assert render("{{ ticket.subject }}/{{ customer.first_name }}", filled) == (
        "{{ agent.first_name }} {{ ticket.id }}/{{ customer.first_name }}"
    )
    # a value that completes a placeholder with the text around it stays literal too
    assert render("{{ ticket.status }} ticket.id }}", {"ticket.status": "{{"}) == "{{ ticket.id }}"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("plain text", []),
        ("{{ ticket.id }} {{ticket.subject}}", []),
        ("{{ ticket.number }}", ["ticket.number"]),
        ("{{ Ticket.Id }} {{ x }} {{ x }}", ["Ticket.Id", "x"]),
        ("{{}} {{ ticket subject }}", ["", "ticket subject"]),
        ("{{ " + "y" * 100 + " }}", ["y" * 40 + "..."]),
        ("{{ ticket.id }", []),
        ("{{ a {{ ticket.id }}", []),
    ],
)
def test_unknown(body: str, names: list[str]) -> None:
    assert unknown(body) == names


def test_describe_lists_every_placeholder() -> None:
    text = placeholders.describe()
    for name in PLACEHOLDERS:
        assert f"`{{{{ {name} }}}}`" in text


def test_the_body_field_refuses_unknown_placeholders() -> None:
    context: dict[str, Any] = {"departments": ("billing",), "max_message_length": 20}
    ok = validate(CannedReplyCreate, {"name": "n", "body": " {{ticket.id}} "}, context)
    assert ok.body == "{{ticket.id}}"
    with pytest.raises(ValidationFailed) as raised:
        validate(CannedReplyCreate, {"name": "n", "body": "{{ a }}{{ b }}"}, context)
    message = raised.value.errors["body"][0]
    assert message.startswith("The body field has unknown placeholders: {{ a }}, {{ b }}.")
    with pytest.raises(ValidationFailed) as raised:
        validate(CannedReplyCreate, {"name": "n", "body": "x" * 21}, context)
    assert raised.value.errors == {
        "body": ["The body field must not be greater than 20 characters."]
    }


_ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
_BRACEY_TEXT = st.lists(
    st.sampled_from(["{", "}", "{{", "}}", " ", "ticket.id", "agent.first_name", "x", "\n"]),
    max_size=30,
).map("".join)
_VALUES = st.fixed_dictionaries(dict.fromkeys(PLACEHOLDERS, _BRACEY_TEXT))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_ANY_TEXT, _BRACEY_TEXT), _VALUES)
def test_rendering_never_raises(body: str, filled: dict[str, str]) -> None:
    assert isinstance(render(body, filled), str)
    assert isinstance(unknown(body), list)


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT.filter(lambda text: "{{" not in text or "}}" not in text), _VALUES)
def test_text_without_placeholders_renders_to_itself(body: str, filled: dict[str, str]) -> None:
    assert unknown(body) == []
    assert render(body, filled) == body


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            _ANY_TEXT.map(lambda t: t.replace("{", "(")),
            st.sampled_from([f"{{{{ {name} }}}}" for name in PLACEHOLDERS]),
        ),
        max_size=10,
    ),
    _VALUES,
)
def test_each_placeholder_becomes_its_value_once(parts: list[str], filled: dict[str, str]) -> None:
    """Text with no `{` of its own, and placeholders between: the result is the same text with
    each placeholder replaced by its value, whatever braces the values hold."""
    expected = "".join(
        filled.get(part[3:-3], part) if part.startswith("{{ ") else part for part in parts
    )
    assert render("".join(parts), filled) == expected
