"""`SUPPORTDESK_SMTP_URL` read by supportdesk.mail.smtp.parse_url."""

from __future__ import annotations

import pytest

from supportdesk.mail.smtp import SmtpTarget, parse_url


def test_parse_url() -> None:
    assert parse_url("smtp://mail.example.com") == SmtpTarget(
        "mail.example.com", 25, None, None, tls=False, starttls=False
    )
    target = parse_url("smtp://desk%40example.com:p%40ss@mail.example.com?starttls=1")
    assert target == SmtpTarget(
        "mail.example.com", 587, "desk@example.com", "p@ss", tls=False, starttls=True
    )
    assert str(target) == "smtp://desk@example.com:***@mail.example.com:587?starttls=1"
    assert repr(target) == str(target)
    smtps = parse_url("smtps://u:pw@mail.example.com")
    assert (smtps.port, smtps.tls) == (465, True)
    relay = parse_url("smtp://u:pw@127.0.0.1:2525?plain_auth=1")
    assert relay.plain_auth and not relay.starttls
    assert str(relay) == "smtp://u:***@127.0.0.1:2525?plain_auth=1"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://u:secret@host", "must start with smtp:// or smtps://"),
        ("smtp://u:secret@:25", "names no host"),
        ("smtp://u:secret@host:99999", "port that is not a number"),
        ("smtp://u:secret@host?tls=1", "unknown options: tls"),
        ("smtps://u:secret@host?starttls=1", "TLS from the start"),
        ("smtps://u:secret@host?plain_auth=1", "TLS from the start"),
        ("smtp://u:secret@host?starttls=1&plain_auth=1", "not both"),
    ],
)
def test_parse_url_refuses(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as raised:
        parse_url(url)
    assert "secret" not in str(raised.value)
