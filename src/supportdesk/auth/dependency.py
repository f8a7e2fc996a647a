"""The FastAPI dependency every admin route uses: authenticate, then check the permission."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from supportdesk.auth import service
from supportdesk.auth.keys import ApiKey
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
        service.require(key, permission)
        return key

    return dependency
