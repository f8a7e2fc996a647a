"""A whole conversation through the real server, and autoclose from the real CLI beside it."""

from __future__ import annotations

import sqlite3

import httpx

from tests.e2e.conftest import Server, run_cli


def test_conversation(server: Server) -> None:
    api = f"{server.base_url}/api/v1/admin"
    with httpx.Client(
        base_url=api, headers={"Authorization": f"Bearer {server.demo_token}"}, timeout=10
    ) as http:
        customer = http.post("/users", json={"email": "c@example.com", "first_name": "Cam"}).json()[
            "data"
        ]["id"]
        staff = http.post("/users", json={"email": "s@example.com", "role_id": 1}).json()["data"][
            "id"
        ]

        def status(ticket: str) -> str:
            value: str = http.get(f"/tickets/{ticket}").json()["data"]["attributes"]["status"]
            return value

        # the customer opens a ticket and writes the first message
        ticket = http.post(
            "/tickets",
            json={"subject": "Site is down", "user_id": customer, "department": "technical"},
        ).json()["data"]["id"]
        assert status(ticket) == "open"
        first = http.post(
            "/ticket-messages",
            json={"ticket_id": ticket, "user_id": customer, "message": "My site returns 502."},
        )
        assert first.status_code == 201
        assert status(ticket) == "customer-reply"

        # staff answers with an attachment
        log = b"upstream timed out\n" * 500
        answer = http.post(
            "/ticket-messages",
            data={"ticket_id": ticket, "user_id": staff, "message": "Fixed; the log is attached."},
            files=[("attachments[]", ("nginx error.log", log, "text/plain"))],
            params={"include": "attachments"},
        )
        assert answer.status_code == 201, answer.text
        attachment = answer.json()["included"][0]
        assert status(ticket) == "replied"
        download = http.get(f"/ticket-attachments/{attachment['id']}/download")
        assert download.content == log
        assert download.headers["content-disposition"].startswith(
            'attachment; filename="nginx error.log"'
        )

        # the customer replies, staff closes it
        http.post(
            "/ticket-messages",
            json={"ticket_id": ticket, "user_id": customer, "message": "Works now, thanks!"},
        )
        assert status(ticket) == "customer-reply"
        assert http.put(f"/tickets/{ticket}", json={"status": "closed"}).status_code == 200

        document = http.get(f"/tickets/{ticket}", params={"include": "messages,user"}).json()
        assert [
            m["attributes"]["message"]
            for m in document["included"]
            if m["type"] == "ticket_messages"
        ] == [
            "My site returns 502.",
            "Fixed; the log is attached.",
            "Works now, thanks!",
        ]
        assert document["data"]["attributes"]["status"] == "closed"
        assert [
            t["id"] for t in http.get("/tickets", params={"filter[search]": "502"}).json()["data"]
        ] == [ticket]


def test_autoclose_beside_the_running_server(server: Server) -> None:
    api = f"{server.base_url}/api/v1/admin"
    db = ["--database-url", server.database_url]
    with httpx.Client(
        base_url=api, headers={"Authorization": f"Bearer {server.demo_token}"}, timeout=10
    ) as http:
        customer = http.post("/users", json={"email": "c@example.com"}).json()["data"]["id"]
        staff = http.post("/users", json={"email": "s@example.com", "role_id": 1}).json()["data"][
            "id"
        ]
        tickets = []
        for n in range(3):
            ticket = http.post(
                "/tickets", json={"subject": f"Question {n}", "user_id": customer}
            ).json()["data"]["id"]
            http.post(
                "/ticket-messages",
                json={"ticket_id": ticket, "user_id": staff, "message": "Answered"},
            )
            tickets.append(ticket)
        # ticket 0 was answered 8 days ago, ticket 1 six days ago, ticket 2 just now
        with sqlite3.connect(server.database_path) as conn:
            conn.execute(
                "UPDATE tickets SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
                (tickets[0],),
            )
        result = run_cli("tickets", "autoclose", "--after", "7d", *db)
        assert f"closed ticket {tickets[0]} " in result.stdout
        assert "1 ticket(s) closed" in result.stdout
        statuses = [
            http.get(f"/tickets/{t}").json()["data"]["attributes"]["status"] for t in tickets
        ]
        assert statuses == ["closed", "replied", "replied"]
        again = run_cli("tickets", "autoclose", "--after", "7d", *db)
        assert "0 ticket(s) closed" in again.stdout
        everything = run_cli("tickets", "autoclose", "--after", "0s", *db)
        assert "2 ticket(s) closed" in everything.stdout
        bad = run_cli("tickets", "autoclose", "--after", "soon", *db, check=False)
        assert bad.returncode != 0 and "invalid duration" in bad.stderr
