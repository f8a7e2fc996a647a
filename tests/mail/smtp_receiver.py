"""A real SMTP server for the tests (aiosmtpd in a thread) that keeps what it receives and can
be told to refuse, defer, stall or go away, as mail servers do."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.ports import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Receiver:
    """`answer` (e.g. `550 5.1.1 no such user`) replaces the 250 for every mail; `stall_s`
    holds each DATA from the `stall_from`-th on (counting from 1) that long before answering,
    and sets `stalling` when it starts to."""

    port: int = field(default_factory=free_port)
    user: str | None = None
    password: str | None = None
    answer: str | None = None
    stall_s: float = 0.0
    stall_from: int = 1
    mail_from_answer: str | None = None  # e.g. `530 5.7.0 Authentication required` to MAIL
    stalling: threading.Event = field(default_factory=threading.Event)
    data_calls: int = 0
    received: list[Received] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The receiver offers no STARTTLS: a login over the plain connection is asked for."""
        if not self.user:
            return f"smtp://127.0.0.1:{self.port}"
        return f"smtp://{self.user}:{self.password}@127.0.0.1:{self.port}?plain_auth=1"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.mail_from_answer is not None:
            return self.mail_from_answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_calls += 1
        if self.stall_s and self.data_calls >= self.stall_from:
            self.stalling.set()
            await asyncio.sleep(self.stall_s)
        if self.answer is not None:
            return self.answer
        with self._lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 Ok: queued"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode() == self.user and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
        self.data_calls = 0
        self.stall_s, self.stall_from = 0.0, 1
        self.mail_from_answer = None
        self.stalling.clear()
        self.answer = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} mails arrived, waited for {count}")
