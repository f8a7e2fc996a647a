"""The URL map: every resource router under /api/v1/admin."""

from fastapi import APIRouter

from supportdesk.ticket_attachments.router import router as attachments_router
from supportdesk.ticket_messages.router import router as messages_router
from supportdesk.tickets.router import router as tickets_router
from supportdesk.users.router import router as users_router

PREFIX = "/api/v1/admin"

router = APIRouter(prefix=PREFIX)
router.include_router(tickets_router)
router.include_router(messages_router)
router.include_router(attachments_router)
router.include_router(users_router)
