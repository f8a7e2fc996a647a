"""The FastAPI dependency every admin route uses: authenticate, count the request against the
key's rate limit (429), then check the permission (403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from supportdesk.auth import service
from supportdesk.auth.keys import ApiKey
from supportdesk.auth.ratelimit import RateLimiter
from supportdesk.errors import TooManyRequests
from supportdesk.jsonapi.requests import database


def authorized(permission: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency returning the request's key once it holds `permission` (401/403 before any
    other check, so a missing resource is 404 only for an authorised caller)."""

    async def dependency(request: Request) -> ApiKey:
        address = request.client.host if request.client else None
        key = await service.authenticate(
            database(request), request.headers.get("authorization"), address
        )
        request.state.key_id = key.id
        limiter: RateLimiter = request.app.state.limiter
        verdict = await limiter.check(key.id, key.rate_limit)
        if verdict is not None:
            request.state.response_headers = verdict.headers()
            if not verdict.allowed:
                raise TooManyRequests(
                    f"Rate limit of {verdict.limit} requests a minute reached; "
                    f"retry in {verdict.reset_s} s."
                )
        service.require(key, permission)
        return key

    return dependency
