"""Sign-in by e-mailed one-time link (SPEC 13, 14), through the `mail_out` job's step and a
real SMTP server: the same answer for any address, a mail only to a known one; opening the link
only shows a button (a mail scanner spends nothing); the button signs in once, and may set a
password; an expired link is 410."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from supportdesk.tables import sign_in_links
from tests.mail.mailer import Mailer
from tests.mail.smtp_receiver import Receiver
from tests.web.browser import PASSWORD
from tests.web.conftest import Browsers, People

PUBLIC_URL = "http://desk.example.com"
_LINK = re.compile(re.escape(PUBLIC_URL) + r"/login/link/([A-Za-z0-9_-]+)")


@pytest.fixture
async def mailer(app: FastAPI, smtp: Receiver) -> Mailer:
    app.state.settings = app.state.settings.model_copy(
        update={"smtp_url": smtp.url, "mail_from": "Desk <desk@example.com>",
                "public_url": PUBLIC_URL}
    )  # fmt: skip
    runner = Mailer(app, smtp)
    await runner.step()  # the first step sets the job's cursor
    return runner


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def ask_for_link(browsers: Browsers, email: str) -> httpx.Response:
    browser = browsers()
    page = await browser.get("/login")
    assert 'action="/login/link"' in page.text
    return await browser.post("/login/link", {"email": email})


async def links(app: FastAPI) -> list[dict[str, object]]:
    async with app.state.db.read() as conn:
        rows = await conn.fetch_all(select(sign_in_links).order_by(sign_in_links.c.id))
    return [dict(row) for row in rows]


async def mailed_token(browsers: Browsers, mailer: Mailer, smtp: Receiver, email: str) -> str:
    answer = await ask_for_link(browsers, email)
    assert answer.status_code == 200
    await mailer.step()
    (mail,) = [m for m in smtp.received if m.recipients == [email]]
    found = _LINK.search(text_of(mail.message))
    assert found is not None
    return found.group(1)


async def test_a_link_is_mailed_to_a_known_address_and_the_answer_is_the_same_for_any(
    app: FastAPI, browsers: Browsers, people: People, mailer: Mailer, smtp: Receiver
) -> None:
    known = await ask_for_link(browsers, "Cora@Example.com")
    unknown = await ask_for_link(browsers, "nobody@example.com")
    for answer, email in ((known, "Cora@Example.com"), (unknown, "nobody@example.com")):
        assert answer.status_code == 200
        assert f"If {email} has an account here, a sign-in link is on its way." in answer.text
    assert len(await links(app)) == 1
    await mailer.step()
    assert [m.recipients for m in smtp.received] == [["cora@example.com"]]
    message = smtp.received[0].message
    assert message["Subject"] == "Desk: your sign-in link"
    assert _LINK.search(text_of(message)) is not None


async def test_a_link_reaches_a_user_who_turned_mail_notifications_off(
    client: httpx.AsyncClient, browsers: Browsers, people: People, mailer: Mailer,
    smtp: Receiver,
) -> None:  # fmt: skip
    """Notifications are the mails about tickets; a sign-in link is asked for by the user."""
    response = await client.patch(
        f"/users/{people.customer['id']}", json={"email_notifications": False}
    )
    assert response.status_code == 200
    token = await mailed_token(browsers, mailer, smtp, People.email(people.customer))
    assert token


async def test_opening_the_link_shows_a_button_and_spends_nothing(
    app: FastAPI, browsers: Browsers, people: People, mailer: Mailer, smtp: Receiver
) -> None:
    token = await mailed_token(browsers, mailer, smtp, People.email(people.customer))
    scanner = browsers()
    for _ in range(2):
        page = await scanner.get(f"/login/link/{token}")
        assert page.status_code == 200
        assert "Sign in as Cora Customer" in page.text
        assert f'action="/login/link/{token}"' in page.text
    assert scanner.session_cookie is None
    ((link),) = await links(app)
    assert link["used_at"] is None

    person = browsers()
    await person.get(f"/login/link/{token}")
    signed_in = await person.post(f"/login/link/{token}", {"password": ""})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/portal/"
    assert (await person.get("/portal/")).status_code == 200
    # once only
    again = browsers()
    assert (await again.get(f"/login/link/{token}")).status_code == 410
    spent = await again.post(f"/login/link/{token}", {"password": ""})
    assert spent.status_code == 410
    assert "expired or was used already" in spent.text
    assert again.session_cookie is None


async def test_the_link_can_set_a_password(
    browsers: Browsers, people: People, mailer: Mailer, smtp: Receiver
) -> None:
    email = People.email(people.staff)
    token = await mailed_token(browsers, mailer, smtp, email)
    before = browsers()
    await before.sign_in(email)  # a session from before: setting a password ends it

    browser = browsers()
    await browser.get(f"/login/link/{token}")
    short = await browser.post(f"/login/link/{token}", {"password": "short"})
    assert short.status_code == 422
    assert "at least 8 characters" in short.text
    response = await browser.post(f"/login/link/{token}", {"password": "a fresh password"})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/"
    assert (await browser.get("/console/")).status_code == 200
    assert (await before.get("/console/")).status_code == 303

    assert (await browsers().sign_in(email, "a fresh password")).status_code == 303
    assert (await browsers().sign_in(email, PASSWORD)).status_code == 401


async def test_an_expired_link_is_410(
    app: FastAPI, browsers: Browsers, people: People, mailer: Mailer, smtp: Receiver
) -> None:
    token = await mailed_token(browsers, mailer, smtp, People.email(people.customer))
    async with app.state.db.transaction() as conn:
        await conn.execute(update(sign_in_links).values(expires_at="2020-01-01T00:00:00.000000Z"))
    browser = browsers()
    page = await browser.get(f"/login/link/{token}")
    assert page.status_code == 410
    assert page.headers["content-type"].startswith("text/html")
    response = await browser.post(f"/login/link/{token}", {"password": ""})
    assert response.status_code == 410
    assert browser.session_cookie is None
    assert (await browser.get("/login/link/made-up-token")).status_code == 410


async def test_without_mail_there_are_no_links(app: FastAPI, browsers: Browsers) -> None:
    browser = browsers()
    page = await browser.get("/login")
    assert 'action="/login/link"' not in page.text
    response = await browser.post("/login/link", {"email": "cora@example.com"})
    assert response.status_code == 400
    assert "Sign-in links need e-mail" in response.text
    assert await links(app) == []
