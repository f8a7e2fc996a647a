"""A property of the ticket metrics (SPEC 12): whatever sequence of message creates (public
or notes, by the customer or staff), deletes, kind changes, owner changes and merges a client
makes, every ticket's metrics equal a recomputation from its messages, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportdesk.app import create_app, lifespan
from supportdesk.auth.service import create_key
from supportdesk.config import Settings
from tests import factories

TICKETS = 3
Op = tuple[Any, ...]

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("post"),
            st.integers(0, TICKETS - 1),
            st.sampled_from(["owner", "agent", "other_agent"]),
            st.booleans(),
        ),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("toggle"), st.integers(0, 50)),
        st.tuples(
            st.just("owner"), st.integers(0, TICKETS - 1), st.sampled_from(["owner", "agent"])
        ),
        st.tuples(st.just("merge"), st.integers(0, TICKETS - 1), st.integers(0, TICKETS - 1)),
    ),
    max_size=14,
)


def expected(ticket: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics recomputed here, from the messages as the API lists them."""
    owner = ticket["user_id"]
    public = [m for m in messages if not m["internal"]]
    staff = [m["created_at"] for m in public if m["user_id"] != owner]
    customer = [m["created_at"] for m in public if m["user_id"] == owner]
    return {
        "message_count": len(messages),
        "first_response_at": min(staff, default=None),
        "last_staff_message_at": max(staff, default=None),
        "last_customer_message_at": max(customer, default=None),
    }


async def scenario(config: Settings, ops: list[Op]) -> None:
    app = create_app(config)
    async with lifespan(app):
        _, token = await create_key(app.state.db, "property", ("*",), ())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver/api/v1/admin",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            await play(client, ops)


async def play(client: httpx.AsyncClient, ops: list[Op]) -> None:
    people = {
        "owner": (await factories.user(client))["id"],
        "agent": (await factories.staff(client))["id"],
        "other_agent": (await factories.staff(client))["id"],
    }
    tickets = [(await factories.ticket(client, people["owner"]))["id"] for _ in range(TICKETS)]
    messages: list[dict[str, Any]] = []  # alive, as created
    for op in ops:
        if op[0] == "post":
            _, t, author, internal = op
            body = {
                "ticket_id": tickets[t],
                "user_id": people[author],
                "message": "text",
                "internal": internal,
            }
            response = await client.post("/ticket-messages", json=body)
            assert response.status_code in (201, 422), response.text
            if response.status_code == 201:
                messages.append(response.json()["data"])
            else:  # a note by someone who is not staff, or a message to a merged ticket
                errors = response.json()["errors"]
                assert (internal and author == "owner") or "merged into" in errors["ticket_id"][0]
        elif op[0] in ("delete", "toggle") and messages:
            message = messages[op[1] % len(messages)]
            if op[0] == "delete":
                response = await client.delete(f"/ticket-messages/{message['id']}")
                assert response.status_code == 204
                messages.remove(message)
            else:
                internal = not message["attributes"]["internal"]
                response = await client.patch(
                    f"/ticket-messages/{message['id']}", json={"internal": internal}
                )
                assert response.status_code in (200, 422), response.text
                if response.status_code == 200:
                    message["attributes"]["internal"] = internal
        elif op[0] == "owner":
            response = await client.patch(
                f"/tickets/{tickets[op[1]]}", json={"user_id": people[op[2]]}
            )
            assert response.status_code == 200, response.text
        elif op[0] == "merge":
            response = await client.post(
                f"/tickets/{tickets[op[1]]}/merge",
                json={"source_ids": [tickets[op[2]]], "user_id": people["agent"]},
            )
            # into itself or between tickets merged already: refused, nothing written
            assert response.status_code in (200, 422), response.text
    for ticket_id in tickets:
        ticket = (await client.get(f"/tickets/{ticket_id}")).json()["data"]["attributes"]
        listed = await client.get(
            "/ticket-messages", params={"filter[ticket_id]": ticket_id, "per_page": "100"}
        )
        thread = [m["attributes"] for m in listed.json()["data"]]
        assert {name: ticket[name] for name in expected(ticket, thread)} == expected(ticket, thread)
        if ticket["merged_into"] is not None:
            assert ticket["status"] == "closed" and ticket["resolved_at"] is not None


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_metrics_always_equal_a_recomputation(
    database_url: str, tmp_path_factory: Any, ops: list[Op]
) -> None:
    storage = tmp_path_factory.mktemp("storage")
    config = Settings(database_url=database_url, storage_dir=str(storage), jobs=False)
    asyncio.run(scenario(config, ops))
