"""Request bodies of the users endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel

from supportdesk.jsonapi.fields import Email, NullableTimestamp, integer, text


class UserUpdate(BaseModel):
    first_name: Annotated[str | None, text(255, nullable=True)] = None
    last_name: Annotated[str | None, text(255, nullable=True)] = None
    email: Email = None
    password: Annotated[str | None, text(255, min_length=8, strip=False)] = None
    email_verified_at: NullableTimestamp = None
    role_id: Annotated[int | None, integer(nullable=True)] = None


class UserCreate(UserUpdate):
    email: Email
