"""The URL map: every resource router under /api/v1/admin."""

from fastapi import APIRouter

from supportdesk.tickets.router import router as tickets_router
from supportdesk.users.router import router as users_router

PREFIX = "/api/v1/admin"

router = APIRouter(prefix=PREFIX)
router.include_router(tickets_router)
router.include_router(users_router)
