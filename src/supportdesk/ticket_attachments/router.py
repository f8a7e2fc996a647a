"""/ticket-attachments/{id}/download."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from supportdesk.auth.guard import authorize
from supportdesk.jsonapi import openapi
from supportdesk.jsonapi.query import parse_id
from supportdesk.jsonapi.requests import database
from supportdesk.routing import admin_router
from supportdesk.ticket_attachments import service
from supportdesk.ticket_attachments.storage import storage

router = admin_router("ticket messages")


@router.get(
    "/ticket-attachments/{attachment_id}/download",
    summary="Download an attachment's file",
    response_class=Response,
    responses={
        200: {
            "description": "The file, with its stored MIME type",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
        },
        **openapi.errors(404),
    },
)
async def download(request: Request, attachment_id: str) -> Response:
    await authorize(request, "ticket_messages.view")
    found = parse_id(attachment_id, "ticket_attachments")
    row, path = await service.for_download(database(request), storage(request), found)
    return FileResponse(
        path,
        media_type=row["mime_type"],
        headers={
            "Content-Disposition": service.content_disposition(row["filename"]),
            "X-Content-Type-Options": "nosniff",
        },
    )
