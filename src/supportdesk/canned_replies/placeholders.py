"""The placeholders of canned replies: finding them in a body and filling them in. Pure logic,
no I/O.

A placeholder is `{{`, a name, `}}`; whitespace inside the braces is optional
(`{{ticket.id}}`, `{{ ticket.id }}`). Anything between a `{{` and the next `}}` (with no brace
in between) is read as a placeholder, so a mistyped name (`{{ ticket subject }}`) is refused
when the reply is saved instead of reaching a customer as it stands.

Filling is one pass over the body: each placeholder is replaced by its value as it stands, and
the values are never read again, so a ticket subject that itself holds `{{ agent.first_name }}`
is inserted literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# name -> what it stands for (the OpenAPI descriptions list them from here)
PLACEHOLDERS: dict[str, str] = {
    "ticket.id": "the ticket's number",
    "ticket.subject": "the ticket's subject",
    "ticket.status": "the ticket's status",
    "ticket.priority": "the ticket's priority",
    "ticket.department": "the ticket's department (empty when it has none)",
    "customer.first_name": "the first name of the ticket's owner",
    "customer.last_name": "the last name of the ticket's owner",
    "customer.email": "the email address of the ticket's owner",
    "agent.first_name": "the agent's first name (the staff user rendering, else the assignee)",
    "agent.last_name": "the agent's last name",
}

_PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
# how much of an unknown placeholder an error message quotes
_QUOTED = 40


def _name(match: re.Match[str]) -> str:
    return match.group(1).strip()


def unknown(body: str) -> list[str]:
    """The names of the placeholders in `body` that are not in `PLACEHOLDERS`, each once, in
    order of appearance (long ones cut short, for error messages)."""
    names = (_name(match) for match in _PLACEHOLDER.finditer(body))
    bad = (name if len(name) <= _QUOTED else f"{name[:_QUOTED]}..." for name in names)
    return list(dict.fromkeys(name for name in bad if name not in PLACEHOLDERS))


def render(body: str, values: Mapping[str, str]) -> str:
    """`body` with each known placeholder replaced by its value in `values` (an empty string
    when `values` lacks it). Unknown placeholders stay as they are. Never raises."""

    def fill(match: re.Match[str]) -> str:
        name = _name(match)
        if name not in PLACEHOLDERS:
            return match.group(0)
        return values.get(name, "")

    return _PLACEHOLDER.sub(fill, body)


def values(
    ticket: Mapping[str, Any], customer: Mapping[str, Any] | None, agent: Mapping[str, Any] | None
) -> dict[str, str]:
    """Each placeholder's value: `ticket.subject` is the ticket's `subject`, `agent.last_name`
    the agent's `last_name`; a missing record or a null attribute gives an empty string."""
    records = {"ticket": ticket, "customer": customer, "agent": agent}
    out: dict[str, str] = {}
    for name in PLACEHOLDERS:
        record, _, attribute = name.partition(".")
        row = records[record]
        value = None if row is None else row.get(attribute)
        out[name] = "" if value is None else str(value)
    return out


def describe() -> str:
    """The placeholder list as Markdown, for the OpenAPI descriptions."""
    items = "\n".join(f"- `{{{{ {name} }}}}`: {meaning}" for name, meaning in PLACEHOLDERS.items())
    return (
        "Placeholders (whitespace inside the braces optional; any other `{{ ... }}` is refused "
        f"with 422):\n\n{items}"
    )
