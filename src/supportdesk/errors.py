"""The error hierarchy. Every expected failure is raised as one of these and rendered by
`jsonapi.errors` into SPEC section 7's body: `message`, `code` and, for 422, `errors`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class SupportdeskError(Exception):
    status = 500
    code = "internal"
    headers: Mapping[str, str] | None = None  # sent with the error body (`Retry-After`)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadQuery(SupportdeskError):
    status = 400
    code = "invalid_query"


class InvalidJson(SupportdeskError):
    status = 400
    code = "invalid_json"


class InvalidBody(SupportdeskError):
    status = 400
    code = "invalid_body"


class Unauthenticated(SupportdeskError):
    status = 401
    code = "unauthenticated"


class Forbidden(SupportdeskError):
    status = 403
    code = "forbidden"


class NotFound(SupportdeskError):
    status = 404
    code = "not_found"


class ResourceNotFound(NotFound):
    def __init__(self, type_: str, resource_id: object) -> None:
        super().__init__(f"No {type_} resource with id {resource_id}.")


class Conflict(SupportdeskError):
    status = 409
    code = "conflict"


class PreconditionFailed(SupportdeskError):
    """412: an `If-Match` (or, on a write, an `If-None-Match`) that the current representation
    of the resource does not satisfy; nothing was written."""

    status = 412
    code = "precondition_failed"


class IdempotencyKeyInFlight(Conflict):
    """The first request with this Idempotency-Key has not answered yet (SPEC 12)."""

    code = "idempotency_key_in_flight"
    headers = {"Retry-After": "1"}

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still in progress; retry once it has answered."
        )


class InvalidIdempotencyKey(SupportdeskError):
    status = 400
    code = "invalid_idempotency_key"


class PayloadTooLarge(SupportdeskError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(SupportdeskError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(SupportdeskError):
    """422 with Laravel's `errors` object: field -> list of messages."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        first = next(iter(self.errors.values()))[0]
        extra = sum(len(messages) for messages in self.errors.values()) - 1
        suffix = f" (and {extra} more error{'s' if extra > 1 else ''})" if extra else ""
        super().__init__(first + suffix)

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class IdempotencyKeyReused(ValidationFailed):
    """The Idempotency-Key was first used with another request (method, path, query or body):
    422 in the validation shape, `errors` naming the header."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            {"Idempotency-Key": ["This Idempotency-Key was already used with a different request."]}
        )


class TooManyRequests(SupportdeskError):
    status = 429
    code = "rate_limited"


class DatabaseUnavailable(SupportdeskError):
    status = 503
    code = "database_unavailable"
