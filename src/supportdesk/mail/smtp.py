"""Sending mail over SMTP with aiosmtplib (SPEC 13).

`SUPPORTDESK_SMTP_URL` is `smtp://[user:pass@]host[:port]` (upgraded with STARTTLS when the
server offers it; `?starttls=1` refuses to go on without it) or `smtps://...` (TLS from the
start, port 465 by default). Certificates are checked against the system's trust store. A
password is never sent over a connection that is not encrypted, unless `?plain_auth=1` says
that is meant (a relay on this host, say).

Failures come in three kinds, because the outbox treats them differently: `Unavailable` (no
connection, a timeout, a refused login, a 421) means the server cannot be used now, `Deferred`
(another 4xx answer to one mail) means try that mail again later, and `Refused` (a 5xx answer
to one mail) means it will never go. None of their messages ever contains the
password.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool  # TLS from the start (smtps)
    starttls: bool
    plain_auth: bool = False  # log in even when the connection is not encrypted

    def __str__(self) -> str:
        scheme = "smtps" if self.tls else "smtp"
        login = f"{self.user}:***@" if self.user else ""
        query = "?starttls=1" if self.starttls else "?plain_auth=1" if self.plain_auth else ""
        return f"{scheme}://{login}{self.host}:{self.port}{query}"

    __repr__ = __str__

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> SmtpTarget:
    """ValueError with one line that never repeats the password."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://, e.g. smtp://user:pass@host:587")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a port that is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError("names no host, e.g. smtp://user:pass@host:587")
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls", "plain_auth"}
    if unknown:
        raise ValueError(
            f"has unknown options: {', '.join(sorted(unknown))} (only starttls=1, plain_auth=1)"
        )
    starttls, plain_auth = (
        query.get(name, ["0"])[-1] in ("1", "true", "yes") for name in ("starttls", "plain_auth")
    )
    tls = parts.scheme == "smtps"
    if tls and (starttls or plain_auth):
        raise ValueError("smtps:// is TLS from the start: drop starttls=1 and plain_auth=1")
    if starttls and plain_auth:
        raise ValueError("starttls=1 requires TLS, plain_auth=1 allows going without: not both")
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if tls else 587 if starttls else 25),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
        starttls=starttls,
        plain_auth=plain_auth,
    )


class Unavailable(Exception):
    """The server cannot take mail now; the same mail may succeed later."""


class Deferred(Exception):
    """The server would not take this mail now (a 4xx answer to it); try it again later."""


class Refused(Exception):
    """The server refused this mail for good (a 5xx answer)."""


class Connection:
    """One SMTP session, kept for a batch: `async with Connection(target, helo) as smtp:
    await smtp.send(message, sender, recipients)`."""

    def __init__(self, target: SmtpTarget, helo: str, timeout: float = TIMEOUT_S) -> None:
        self.target = target
        # no user here: aiosmtplib would log in over whatever connection it got (`_login`)
        self._client = aiosmtplib.SMTP(
            hostname=target.host,
            port=target.port,
            local_hostname=helo,
            timeout=timeout,
            use_tls=target.tls,
            # smtp://: upgraded when the server offers STARTTLS (aiosmtplib's None), so a
            # password never crosses in clear to a server that could have protected it
            start_tls=True if target.starttls else None,
            tls_context=ssl.create_default_context(),
        )

    async def __aenter__(self) -> Self:
        try:
            await self._client.connect()
            await self._login()
        except aiosmtplib.SMTPAuthenticationError:
            raise Unavailable(
                f"SMTP login failed for {self.target.user} at {self.target.where} "
                "(wrong user or password)"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Unavailable(
                f"cannot reach the SMTP server {self.target.where}: {_why(exc)}"
            ) from None
        return self

    async def _login(self) -> None:
        target = self.target
        if target.user is None:
            return
        encrypted = self._client.get_transport_info("sslcontext") is not None
        if not encrypted and not target.plain_auth:
            self._client.close()
            raise Unavailable(
                f"the SMTP server {target.where} offers no STARTTLS: the password is not sent "
                "over a plain connection (use smtps://, or add ?plain_auth=1 for a relay you "
                "trust the path to)"
            )
        await self._client.login(target.user, target.password or "")

    async def __aexit__(self, *_: object) -> None:
        if self._client.is_connected:
            try:
                await self._client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self._client.close()

    async def send(self, message: EmailMessage | bytes, sender: str, recipients: list[str]) -> str:
        """Send one mail; returns the server's answer to it (`250 2.0.0 Ok: queued as ...`)."""
        try:
            if isinstance(message, bytes):
                _, answer = await self._client.sendmail(sender, recipients, message)
            else:
                _, answer = await self._client.send_message(
                    message, sender=sender, recipients=recipients
                )
        except (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPHeloError) as exc:
            # about the desk's own address or session, not this mail: every mail would get it
            raise Unavailable(_answer(exc.code, exc.message).args[0]) from None
        except (UnicodeEncodeError, aiosmtplib.SMTPNotSupported) as exc:
            # an address this server cannot carry (non-ASCII without SMTPUTF8): this mail only
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._client.rset()
            raise Refused(f"the SMTP server cannot take this mail: {_why(exc)}") from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            worst = max(exc.recipients, key=lambda r: r.code)
            raise _answer(worst.code, f"refused {worst.recipient}: {worst.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _answer(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise Unavailable(f"lost the SMTP server {self.target.where}: {_why(exc)}") from None
        return answer


def _answer(code: int, message: str) -> Exception:
    """5xx: refused for good; 421 (the server is closing the session): unavailable; any
    other answer: deferred."""
    text = f"the SMTP server answered {code} {' '.join(message.split())}"
    if 500 <= code < 600:
        return Refused(text)
    return Unavailable(text) if code == 421 else Deferred(text)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return "no answer in time"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, aiosmtplib.SMTPConnectError) and cause is not None:
        return _why(cause)
    return " ".join(str(exc).split()) or type(exc).__name__
