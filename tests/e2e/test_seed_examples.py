"""Every example of the seed document, replayed against the real server with a key made
by the real CLI; each answer must have the shape the seed shows."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Server, run_cli

TICKET_ATTRIBUTES = {
    "subject",
    "status",
    "priority",
    "department",
    "user_id",
    "assigned_to",
    "created_at",
    "updated_at",
}


def identifier(value: Any, type_: str) -> None:
    assert set(value) == {"type", "id"} and value["type"] == type_ and isinstance(value["id"], str)


def ticket_resource(resource: dict[str, Any]) -> None:
    assert resource["type"] == "tickets" and isinstance(resource["id"], str)
    assert set(resource["attributes"]) >= TICKET_ATTRIBUTES
    for name in ("created_at", "updated_at"):
        assert (
            resource["attributes"][name].endswith("Z") and len(resource["attributes"][name]) == 27
        )


def test_seed_examples(server: Server) -> None:
    created = run_cli(
        "keys", "create", "--name", "e2e", "--all", "--database-url", server.database_url
    )
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("sdk_") and " " not in token
    john = run_cli(
        "users",
        "create",
        "--email",
        "john@example.com",
        "--first-name",
        "John",
        "--last-name",
        "Doe",
        "--database-url",
        server.database_url,
    )
    # user 1 is the demo staff login `serve` made with the demo key
    john_id = int(john.stdout.strip())
    assert john_id == 2
    for n in range(2, 5):
        run_cli(
            "users", "create", "--email", f"u{n}@example.com", "--database-url", server.database_url
        )
    staff = run_cli(
        "users",
        "create",
        "--email",
        "staff@example.com",
        "--staff",
        "--database-url",
        server.database_url,
    )
    staff_id = int(staff.stdout.strip())
    assert staff_id == 6

    api = f"{server.base_url}/api/v1/admin"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(base_url=api, headers=headers, timeout=10) as http:
        # Create a Ticket
        response = http.post(
            "/tickets",
            json={
                "subject": "Billing question",
                "user_id": john_id,
                "status": "open",
                "priority": "medium",
                "department": "billing",
            },
        )
        assert response.status_code == 201
        data = response.json()["data"]
        ticket_resource(data)
        assert data["attributes"]["assigned_to"] is None
        assert response.headers["location"] == f"{api}/tickets/{data['id']}"

        first = http.post(
            "/tickets",
            json={
                "subject": "Unable to access hosting panel",
                "user_id": john_id,
                "priority": "high",
                "department": "technical",
                "assigned_to": staff_id,
            },
        )
        ticket_id = int(first.json()["data"]["id"])
        # Managing Ticket Messages: the seed's example sends no Accept header
        customer_says = "I can't log into my hosting control panel. It shows an error."
        response = http.post(
            "/ticket-messages",
            json={"ticket_id": ticket_id, "message": customer_says, "user_id": john_id},
        )
        assert response.status_code == 201
        staff_says = "Hi John, I've reset your password. Please check your email."
        response = httpx.post(
            f"{api}/ticket-messages",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            json={"ticket_id": ticket_id, "message": staff_says, "user_id": staff_id},
        )
        assert response.status_code == 201
        message = response.json()["data"]
        assert message["type"] == "ticket_messages"
        assert message["attributes"]["user_id"] == staff_id
        assert http.get(f"/tickets/{ticket_id}").json()["data"]["attributes"]["status"] == "replied"
        for n in range(20):
            http.post(
                "/tickets",
                json={
                    "subject": f"Ticket {n}",
                    "user_id": john_id + 1 + n % 3,
                    "priority": ("low", "high")[n % 2],
                },
            )

        # List Tickets
        document = http.get("/tickets").json()
        assert len(document["data"]) == 15
        for resource in document["data"]:
            ticket_resource(resource)
            identifier(resource["relationships"]["user"]["data"], "users")
        assert set(document["links"]) >= {"first", "last", "prev", "next"}
        assert document["links"]["prev"] is None and document["links"]["next"].endswith("page=2")
        assert document["links"]["last"].endswith("page=2")
        assert {"current_page", "from", "path", "per_page", "to"} <= set(document["meta"])
        assert (
            document["meta"]["current_page"],
            document["meta"]["from"],
            document["meta"]["to"],
            document["meta"]["per_page"],
        ) == (1, 1, 15, 15)
        assert document["meta"]["path"] == f"{api}/tickets"

        # Retrieve a Ticket
        document = http.get(f"/tickets/{ticket_id}").json()
        ticket_resource(document["data"])
        identifier(document["data"]["relationships"]["user"]["data"], "users")
        for item in document["data"]["relationships"]["messages"]["data"]:
            identifier(item, "ticket_messages")
        assert document["data"]["attributes"]["assigned_to"] == staff_id

        # Ticket with Messages
        document = http.get(f"/tickets/{ticket_id}", params={"include": "messages,user"}).json()
        assert [m["id"] for m in document["data"]["relationships"]["messages"]["data"]] == [
            "1",
            "2",
        ]
        included = {(i["type"], i["id"]): i["attributes"] for i in document["included"]}
        assert included[("users", str(john_id))]["first_name"] == "John"
        assert {"first_name", "last_name", "email"} <= set(included[("users", str(john_id))])
        assert {"message", "user_id", "created_at"} <= set(included[("ticket_messages", "1")])
        assert included[("ticket_messages", "2")]["user_id"] == staff_id

        # Update a Ticket
        response = http.put(f"/tickets/{ticket_id}", json={"status": "closed", "priority": "low"})
        attributes = response.json()["data"]["attributes"]
        assert (attributes["status"], attributes["priority"], attributes["assigned_to"]) == (
            "closed",
            "low",
            staff_id,
        )

        # Common filters
        assert all(
            t["attributes"]["status"] == "open"
            for t in http.get("/tickets", params={"filter[status]": "open"}).json()["data"]
        )
        assert all(
            t["attributes"]["priority"] == "high"
            for t in http.get("/tickets", params={"filter[priority]": "high"}).json()["data"]
        )
        mine = http.get("/tickets", params={"filter[user_id]": str(john_id)}).json()
        assert mine["meta"]["total"] == 2 and all(
            t["attributes"]["user_id"] == john_id for t in mine["data"]
        )
        unassigned = http.get("/tickets", params={"filter[assigned_to]": "null"}).json()
        assert unassigned["meta"]["total"] == 21

        # Delete a Ticket
        response = http.delete(f"/tickets/{ticket_id}")
        assert response.status_code == 204 and response.content == b""
        assert http.get(f"/tickets/{ticket_id}").status_code == 404

        # the demo key printed by serve works too
        assert (
            httpx.get(
                f"{api}/tickets", headers={"Authorization": f"Bearer {server.demo_token}"}
            ).status_code
            == 200
        )
