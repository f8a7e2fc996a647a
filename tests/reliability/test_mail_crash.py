"""The mail outbox through a `kill -9` (SPEC 13: one mail per event and recipient, also
across a restart): `supportdesk serve` sends to a real SMTP server that holds one mail open;
the server is killed while it waits, started again on the same database, and every mail then
arrives, the one in flight at the kill at most twice, every other exactly once."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import serving, stop
from tests.mail.smtp_receiver import Receiver

TICKETS = 5  # each: the customer's "opened" and the assignee's "new ticket"


def wait_for(receiver: Receiver, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"{len(receiver.received)} of {count} mails arrived"
        time.sleep(0.05)


@pytest.mark.timeout(240)
def test_a_kill_9_mid_batch_resends_at_most_the_mail_in_flight(
    tmp_path: Path, empty_database_url: str, smtp: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPPORTDESK_SMTP_URL", smtp.url)
    monkeypatch.setenv("SUPPORTDESK_MAIL_FROM", "Support <support@example.net>")
    with serving(tmp_path, empty_database_url) as first:
        http = httpx.Client(
            base_url=f"{first.base_url}/api/v1/admin",
            headers={"Authorization": f"Bearer {first.demo_token}"},
            timeout=20,
        )
        customer = http.post("/users", json={"email": "carla@example.org"}).json()["data"]
        agent = http.post("/users", json={"email": "agent@example.net", "role_id": 1}).json()
        body = {"subject": "Warm-up", "user_id": int(customer["id"])}
        assert http.post("/tickets", json=body).status_code == 201
        # the job set its cursor when the server started: the warm-up's mails go out, the
        # customer's and the unassigned ticket's to every staff user (the agent and the demo
        # staff login `serve` made)
        warm = 3
        wait_for(smtp, warm, 30)
        # hold the fifth mail of the batch open at the receiver
        smtp.stall_s, smtp.stall_from = 60.0, smtp.data_calls + 5
        body["assigned_to"] = int(agent["data"]["id"])
        for n in range(TICKETS):
            body["subject"] = f"Ticket {n}"
            assert http.post("/tickets", json=body).status_code == 201
        assert smtp.stalling.wait(30), "no mail was held open"
        stop(first.process, signal.SIGKILL)
    sent_before = len(smtp.received)
    smtp.stall_s = 0.0
    with serving(tmp_path, empty_database_url, token=first.demo_token):
        # the killed server's lease expires first (SPEC 11: within 30 s)
        wait_for(smtp, warm + 2 * TICKETS, 60)
        time.sleep(2.0)  # anything sent twice would have arrived by now
    ids = Counter(mail.message["Message-ID"] for mail in smtp.received[warm:])
    assert len(ids) == 2 * TICKETS
    twice = [mail_id for mail_id, count in ids.items() if count > 1]
    assert len(twice) <= 1 and all(ids[mail_id] == 2 for mail_id in twice)
    assert sent_before < warm + 2 * TICKETS
