"""Field types for request bodies (SPEC section 1): strings are trimmed and an empty one counts
as missing; integers are JSON integers or strings of digits, never booleans or fractions.
Errors carry a type that `jsonapi.body` words the way Laravel does."""

from __future__ import annotations

from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from supportdesk import timestamps

MAX_ID = 2**63 - 1


def _error(kind: str, **ctx: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, kind, ctx)


def _clean(value: Any, nullable: bool) -> str | None:
    if value is None:
        if nullable:
            return None
        raise _error("required")
    if not isinstance(value, str):
        raise _error("string_type")
    if "\x00" in value:  # PostgreSQL text cannot hold it; refused on both databases
        raise _error("nul")
    cleaned: str = value.strip()
    if not cleaned:
        if nullable:
            return None
        raise _error("required")
    return cleaned


def check_text(
    value: Any, max_length: int, *, nullable: bool = False, min_length: int = 1, strip: bool = True
) -> str | None:
    if strip:
        cleaned = _clean(value, nullable)
    else:  # passwords keep their spaces
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise _error("string_type") if value is not None else _error("required")
        if "\x00" in value:
            raise _error("nul")
        cleaned = value or None
        if cleaned is None and not nullable:
            raise _error("required")
    if cleaned is None:
        return None
    if len(cleaned) > max_length:
        raise _error("too_long", max=max_length)
    if len(cleaned) < min_length:
        raise _error("too_short", min=min_length)
    return cleaned


def text(
    max_length: int, *, nullable: bool = False, min_length: int = 1, strip: bool = True
) -> BeforeValidator:
    return BeforeValidator(
        lambda value: check_text(
            value, max_length, nullable=nullable, min_length=min_length, strip=strip
        )
    )


def _integer(value: Any, nullable: bool) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            value = None
        elif value.isascii() and value.isdigit():
            value = int(value)
        else:
            raise _error("integer")
    if value is None:
        if nullable:
            return None
        raise _error("required")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _error("integer")
    return value


def integer(*, nullable: bool = False) -> BeforeValidator:
    return BeforeValidator(lambda value: _integer(value, nullable))


def id_list(max_items: int) -> BeforeValidator:
    """A JSON array of 1..`max_items` ids (integers or strings of digits); duplicates are
    dropped, the order kept."""

    def check(value: Any) -> list[int]:
        if value is None:
            raise _error("required")
        if not isinstance(value, list) or not 1 <= len(value) <= max_items:
            raise _error("id_list", max=max_items)
        try:
            ids = [_integer(item, False) for item in value]
        except PydanticCustomError:
            raise _error("id_list", max=max_items) from None
        return [i for i in dict.fromkeys(ids) if i is not None]

    return BeforeValidator(check)


def check_boolean(value: Any) -> bool:
    """JSON `true` or `false` only: a string or a number is as ambiguous here as a boolean is
    in an integer field."""
    if not isinstance(value, bool):
        raise _error("boolean")
    return value


Boolean = Annotated[bool, BeforeValidator(check_boolean)]

# Booleans written as text, where JSON's cannot be (a query string, a multipart form field).
TEXT_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def choice(setting: str, *, nullable: bool = False) -> BeforeValidator:
    """One of the values the validation context lists under `setting` (from Settings)."""

    def check(value: Any, info: ValidationInfo) -> str | None:
        cleaned = _clean(value, nullable)
        if cleaned is None:
            return None
        allowed = (info.context or {}).get(setting, ())
        if cleaned not in allowed:
            raise _error("choice")
        return cleaned

    return BeforeValidator(check)


def _email(value: Any) -> str | None:
    cleaned = _clean(value, False)
    assert cleaned is not None
    if len(cleaned) > 255:
        raise _error("too_long", max=255)
    try:
        validate_email(cleaned, check_deliverability=False)
    except EmailNotValidError:
        raise _error("email") from None
    return cleaned


def _timestamp(value: Any) -> str | None:
    cleaned = _clean(value, True)
    if cleaned is None:
        return None
    try:
        return timestamps.parse(cleaned)
    except ValueError:
        raise _error("date") from None


Email = Annotated[str | None, BeforeValidator(_email)]
NullableTimestamp = Annotated[str | None, BeforeValidator(_timestamp)]
