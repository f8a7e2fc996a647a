"""Request bodies of the users endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator

from supportdesk.jsonapi.fields import Email, NullableTimestamp, check_boolean, integer, text


class UserUpdate(BaseModel):
    first_name: Annotated[str | None, text(255, nullable=True)] = None
    last_name: Annotated[str | None, text(255, nullable=True)] = None
    email: Email = None
    password: Annotated[str | None, text(255, min_length=8, strip=False)] = None
    email_verified_at: NullableTimestamp = None
    role_id: Annotated[int | None, integer(nullable=True)] = None
    # SPEC 13: whether supportdesk mails this user (default true)
    email_notifications: Annotated[bool | None, BeforeValidator(check_boolean)] = None


class UserCreate(UserUpdate):
    email: Email
