"""Where resource routes are declared: `admin_router(tag)` puts them under /api/v1/admin.

`api.install(app)` adds the routes of every admin router to the app itself, flat, instead of
`include_router`: since FastAPI 0.137 an included router stays a node of the route tree that
every request walks (route-tree version checks, per-branch contexts, scope bookkeeping), which
cost a fifth of a cheap read here. A route declared on a router that already carries the prefix
is complete, and matched directly once it is in the app's list (bench/README.md, change 8).
"""

from __future__ import annotations

from fastapi import APIRouter

PREFIX = "/api/v1/admin"


def admin_router(tag: str) -> APIRouter:
    return APIRouter(prefix=PREFIX, tags=[tag])
