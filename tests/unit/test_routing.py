"""The admin routes sit on the app itself, not behind included-router nodes that every request
would walk (`supportdesk.routing`)."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import Route

from supportdesk import api
from supportdesk.app import create_app
from supportdesk.config import Settings
from supportdesk.routing import PREFIX


def test_admin_routes_are_registered_flat() -> None:
    app = create_app(Settings(database_url="sqlite:///unused.db"))
    assert all(isinstance(route, Route) for route in app.router.routes)
    admin = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path.startswith(PREFIX)]
    declared = [route for router in api.ROUTERS for route in router.routes]
    assert admin == declared
    assert len(declared) == 22
