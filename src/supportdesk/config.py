"""Settings: the only module that reads the environment.

Every value can come from a `SUPPORTDESK_*` variable or from a CLI option; the CLI hands its
options to the server's worker processes through `Settings.to_environ()`.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from supportdesk.timestamps import parse_duration

CommaList = Annotated[tuple[str, ...], NoDecode]

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
    # Webhook URLs that resolve to loopback, private, link-local, multicast or reserved
    # addresses are refused unless this is set (a receiver on this host or network).
    webhook_allow_private: bool = False
    # comma-separated durations (`5s,5m,2h`); a delivery gives up after the last one
    webhook_retry_schedule: CommaList = DEFAULT_WEBHOOK_RETRY_SCHEDULE

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
            parse_duration(item)
        return value

    @model_validator(mode="after")
    def _workflow_statuses_exist(self) -> Settings:
        for name in ("owner_reply_status", "staff_reply_status", "closed_status"):
            if getattr(self, name) not in self.statuses:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of the statuses")
        return self

    def to_environ(self) -> None:
        """Publish these settings as environment variables, for the server's worker processes."""
        for name, value in self.model_dump().items():
            if value is None:
                continue
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            os.environ[f"SUPPORTDESK_{name.upper()}"] = text
