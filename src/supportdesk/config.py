"""Settings: the only module that reads the environment.

Every value can come from a `SUPPORTDESK_*` variable or from a CLI option; the CLI hands its
options to the server's worker processes through `Settings.to_environ()`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from supportdesk import durations


def _parse_duration(value: Any) -> Any:
    return durations.parse(value) if isinstance(value, str) else value


CommaList = Annotated[tuple[str, ...], NoDecode]
# `7d`, `12h`, `0` (supportdesk.durations) in the environment; dumped back the same way
Duration = Annotated[
    timedelta, BeforeValidator(_parse_duration), PlainSerializer(durations.to_text)
]

DEFAULT_STATUSES = ("open", "replied", "customer-reply", "on-hold", "closed")
DEFAULT_PRIORITIES = ("low", "medium", "high", "urgent")
DEFAULT_DEPARTMENTS = ("technical", "billing", "sales")
# Standard Webhooks' schedule: the waits before the 2nd, 3rd, ... attempt of a delivery.
DEFAULT_WEBHOOK_RETRY_SCHEDULE = ("5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUPPORTDESK_", frozen=True, extra="ignore")

    database_url: str = "sqlite:///./supportdesk.db"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    storage_dir: str = "./storage"
    statuses: CommaList = DEFAULT_STATUSES
    priorities: CommaList = DEFAULT_PRIORITIES
    departments: CommaList = DEFAULT_DEPARTMENTS
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_message_length: int = Field(5000, ge=1)
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_attachments: int = Field(10, ge=1, le=100)
    # The workflow (SPEC section 6): the status a message sets, by who wrote it, and the status
    # `tickets autoclose` sets.
    owner_reply_status: str = "customer-reply"
    staff_reply_status: str = "replied"
    closed_status: str = "closed"
    log_level: str = "info"
    # requests per minute per API key (0: no limit); a key's own limit overrides it
    rate_limit_per_minute: int = Field(6000, ge=0)
    # a shared store for rate limits across instances; without it, across this host's workers
    redis_url: str | None = None
    # how often each process looks for new events when the database cannot notify (SQLite)
    event_poll_interval: float = Field(0.05, gt=0, le=10)
    # seconds of silence after which an event stream sends a comment line (keeps proxies open)
    stream_heartbeat: float = Field(15.0, gt=0, le=300)
    # the longest long poll (`GET /events?wait=`) this server grants, in seconds
    event_wait_limit: float = Field(30.0, ge=0, le=30)
    # Background jobs (SPEC 11). `serve` runs them in every worker unless this is off (the
    # workers compete for each job's lease, so each job runs in one place); `worker` always does.
    jobs: bool = True
    # how long a ticket stays in the staff-reply status before the autoclose job closes it (0: off)
    autoclose_after: Duration = timedelta(days=7)
    # how long events are kept before the prune job deletes them (0: forever)
    events_retain: Duration = timedelta(0)
    # Webhook URLs that resolve to loopback, private, link-local, multicast or reserved
    # addresses are refused unless this is set (a receiver on this host or network).
    webhook_allow_private: bool = False
    # comma-separated durations (`5s,5m,2h`); a delivery gives up after the last one
    webhook_retry_schedule: CommaList = DEFAULT_WEBHOOK_RETRY_SCHEDULE
    # E-mail (SPEC 13). Without an SMTP URL nothing is mailed or queued; without an IMAP URL
    # nothing is polled. The URLs carry passwords: never in a repr, a log line or an error.
    # (The mail package checks the URLs and the address: `cli.common.load_settings`.)
    smtp_url: str | None = Field(None, repr=False)
    mail_from: str = "Support <support@localhost>"
    # the address people reach this server at, for links in mail (default http://HOST:PORT)
    public_url: str | None = None
    imap_url: str | None = Field(None, repr=False)
    imap_poll: Duration = timedelta(seconds=60)
    # signs reply addresses; generated and stored in the database when unset
    mail_secret: str | None = Field(None, repr=False)
    # a mail from an unknown address opens a ticket for a new customer (off: it is rejected)
    mail_create_users: bool = True
    # a directory of templates that replace the built-in ones of the same name
    mail_templates: str | None = None
    # The browser (SPEC 14): how long a sign-in lasts
    session_lifetime: Duration = timedelta(days=14)
    # how long the records of mail sent (once sent or failed) and received are kept (0: forever)
    mail_retain: Duration = timedelta(days=90)

    @field_validator(
        "statuses", "priorities", "departments", "webhook_retry_schedule", mode="before"
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            items = tuple(item.strip() for item in value.split(",") if item.strip())
            if not items:
                raise ValueError("needs at least one value")
            return items
        return value

    @field_validator("statuses", "priorities")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("needs at least one value")
        if len(set(value)) != len(value):
            raise ValueError("values must be unique")
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _durations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            durations.parse(item)
        return value

    @model_validator(mode="after")
    def _workflow_statuses_exist(self) -> Settings:
        for name in ("owner_reply_status", "staff_reply_status", "closed_status"):
            if getattr(self, name) not in self.statuses:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of the statuses")
        return self

    @field_validator("imap_poll")
    @classmethod
    def _poll(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL such as https://help.example.com")
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        """Where links in mail point: `public_url`, else this server's own address."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def max_upload_bytes(self) -> int:
        """The largest request body: a multipart message with every attachment at its limit."""
        return self.max_attachments * self.max_attachment_bytes + self.max_body_bytes

    def to_environ(self) -> None:
        """Publish these settings as environment variables, for the server's worker processes."""
        for name, value in self.model_dump().items():
            if value is None:
                continue
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            os.environ[f"SUPPORTDESK_{name.upper()}"] = text
