"""The pure parts of a webhook delivery: signatures the `standardwebhooks` library accepts, the
retry schedule with Retry-After, and which addresses are refused."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from supportdesk.config import Settings
from supportdesk.webhooks import delivery

BODY = b'{"type":"user.created","timestamp":"2026-12-02T00:00:00.000000Z","data":{}}'
DEFAULT_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def test_a_signature_is_the_standard_one() -> None:
    secret = delivery.new_secret()
    moment = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    expected = Webhook(secret).sign("evt_7", moment, BODY.decode())
    assert delivery.sign(secret, "evt_7", int(moment.timestamp()), BODY) == expected


def test_headers_carry_one_signature_per_secret_and_each_verifies() -> None:
    new, old = delivery.new_secret(), delivery.new_secret()
    headers = delivery.headers(42, [new, old], BODY)
    assert headers["webhook-id"] == "evt_42"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers)["type"] == "user.created"


def test_the_default_schedule_and_a_configured_one() -> None:
    assert delivery.retry_delays(Settings().webhook_retry_schedule) == DEFAULT_DELAYS


def test_the_schedule_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE", "1s, 2m,3h")
    assert delivery.retry_delays(Settings().webhook_retry_schedule) == (1, 120, 10800)
    monkeypatch.setenv("SUPPORTDESK_WEBHOOK_RETRY_SCHEDULE", "1s,soon")
    with pytest.raises(ValidationError, match="invalid duration 'soon'"):
        Settings()


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 5),
        (2, None, 300),
        (9, None, 86400),
        (10, None, None),  # the schedule is spent
        (1, 120.0, 120),  # Retry-After later than the schedule wins
        (2, 10.0, 300),  # ... but never makes a retry earlier
        (1, 7 * 86400.0, 86400),  # ... and never more than 24 h away
        (10, 60.0, None),
    ],
)
def test_retry_in(attempt: int, retry_after: float | None, expected: float | None) -> None:
    assert delivery.retry_in(attempt, DEFAULT_DELAYS, retry_after) == expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert delivery.parse_retry_after(" 120 ", now) == 120
    assert (
        delivery.parse_retry_after(format_datetime(now + timedelta(minutes=10), True), now) == 600
    )
    assert delivery.parse_retry_after(format_datetime(now - timedelta(minutes=1), True), now) == 0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert delivery.parse_retry_after(bad, now) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::ffff:192.168.1.1", "private"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_refused_addresses(address: str, kind: str | None) -> None:
    assert delivery.refusal(ipaddress.ip_address(address)) == kind


async def test_resolution_refuses_private_hosts_unless_allowed() -> None:
    refused = re.escape("localhost resolves to 127.0.0.1, a loopback")
    with pytest.raises(delivery.Refused, match=refused):
        await delivery.resolve("http://localhost/hook", allow_private=False)
    assert ipaddress.ip_address("127.0.0.1") in await delivery.resolve(
        "http://localhost/hook", allow_private=True
    )
    assert await delivery.resolve("https://93.184.215.14/", allow_private=False) == [
        ipaddress.ip_address("93.184.215.14")
    ]
