"""The URL map: every resource router's routes, under /api/v1/admin (`routing.admin_router`)."""

from fastapi import FastAPI

from supportdesk.canned_replies.router import router as canned_replies_router
from supportdesk.events.router import router as events_router
from supportdesk.ticket_attachments.router import router as attachments_router
from supportdesk.ticket_messages.router import router as messages_router
from supportdesk.tickets.router import router as tickets_router
from supportdesk.users.router import router as users_router
from supportdesk.webhooks.router import router as webhooks_router

ROUTERS = (
    tickets_router,
    messages_router,
    attachments_router,
    users_router,
    events_router,
    webhooks_router,
    canned_replies_router,
)


def install(app: FastAPI) -> None:
    """Add every admin route to the app's own route list (why not `include_router`: see
    `supportdesk.routing`)."""
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
