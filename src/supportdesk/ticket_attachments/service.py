"""Attachments: uploads that land on disk only with their rows, files that leave with them,
and downloads."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import UploadFile

from supportdesk.config import Settings
from supportdesk.db import Conn, Database, Row
from supportdesk.errors import PayloadTooLarge, ResourceNotFound, ValidationFailed
from supportdesk.events import log
from supportdesk.events.log import Event
from supportdesk.jsonapi.document import Related
from supportdesk.ticket_attachments import repository
from supportdesk.ticket_attachments.resource import TICKET_ATTACHMENTS
from supportdesk.ticket_attachments.storage import Storage

_MIME = re.compile(r"^[\w.+-]+/[\w.+-]+$")
FILE_FIELDS = ("attachments[]", "attachments")


@dataclass(frozen=True)
class Upload:
    stored_name: str
    size: int
    filename: str
    mime_type: str


def clean_filename(name: str | None) -> str:
    """The client's name as metadata: its last path segment, without control characters,
    at most 255 characters. Never used as a path."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:255] or "attachment"


def mime_type(declared: str | None, filename: str) -> str:
    declared = (declared or "").split(";")[0].strip().lower()
    if _MIME.match(declared) and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name (quotes, backslashes and anything unsafe
    replaced) and the exact name in RFC 5987 form."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def check_uploads(files: Sequence[UploadFile], settings: Settings) -> None:
    if len(files) > settings.max_attachments:
        raise ValidationFailed.field(
            "attachments", f"At most {settings.max_attachments} attachments per request."
        )
    for upload in files:
        if upload.size is not None and upload.size > settings.max_attachment_bytes:
            raise PayloadTooLarge(
                f"The attachment {clean_filename(upload.filename)!r} is larger than "
                f"{settings.max_attachment_bytes} bytes."
            )


@asynccontextmanager
async def pending_uploads(
    storage: Storage, files: Sequence[UploadFile], settings: Settings
) -> AsyncIterator[list[Upload]]:
    """Save the files to pending/ for the block, which writes their rows. The files are
    published if the block (and so its transaction) completes, and deleted if it fails."""
    check_uploads(files, settings)
    uploads: list[Upload] = []
    try:
        for upload in files:
            saved = await storage.save(upload.file, settings.max_attachment_bytes)
            name = clean_filename(upload.filename)
            uploads.append(
                Upload(saved.stored_name, saved.size, name, mime_type(upload.content_type, name))
            )
        yield uploads
    except BaseException:
        storage.discard(u.stored_name for u in uploads)
        raise
    storage.publish(u.stored_name for u in uploads)


async def insert(
    conn: Conn, message_id: int, ticket_id: int, uploads: Sequence[Upload], now: str
) -> list[Event]:
    """The uploads' rows; returns their `ticket_attachment.created` events."""
    created = []
    for upload in uploads:
        values = {
            "message_id": message_id,
            "filename": upload.filename,
            "stored_name": upload.stored_name,
            "mime_type": upload.mime_type,
            "filesize": upload.size,
            "created_at": now,
        }
        values["id"] = await repository.writer.insert(conn, values)
        created.append(log.created(TICKET_ATTACHMENTS, values, ticket_id))
    return created


class PendingDeletion:
    """Files whose rows a transaction is deleting: moved aside inside the transaction, deleted
    once it commits, put back if it fails. Use as `async with PendingDeletion(storage) as gone`
    around the transaction and call `gone.withdraw(names)` inside it."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.names: list[str] = []

    def withdraw(self, names: Sequence[str]) -> None:
        self.names.extend(self.storage.withdraw(names))

    async def __aenter__(self) -> PendingDeletion:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.storage.discard(self.names)
        else:
            self.storage.publish(self.names)


async def files_of_message(conn: Conn, message_id: int) -> list[str]:
    return await repository.stored_names_of_message(conn, message_id)


async def files_of_ticket(conn: Conn, ticket_id: int) -> list[str]:
    return await repository.stored_names_of_ticket(conn, ticket_id)


async def files_of_user(conn: Conn, user_id: int) -> list[str]:
    """Every file a user's forced deletion takes with it."""
    return await repository.stored_names_of_user(conn, user_id)


async def load_for_messages(
    conn: Conn, related: Related, message_ids: Sequence[int], *, include: bool
) -> None:
    rows = await repository.by_message_ids(conn, message_ids)
    linkage: dict[int, list[int]] = {message_id: [] for message_id in message_ids}
    for row in rows:
        linkage[row["message_id"]].append(row["id"])
    related.many["attachments"] = linkage
    if include:
        related.included.extend((TICKET_ATTACHMENTS, row) for row in rows)


async def for_download(db: Database, storage: Storage, attachment_id: int) -> tuple[Row, Path]:
    async with db.read() as conn:
        row = await repository.get(conn, attachment_id)
    if row is None:
        raise ResourceNotFound("ticket_attachments", attachment_id)
    path = storage.locate(row["stored_name"])
    if path is None:
        raise ResourceNotFound("ticket_attachments", attachment_id)
    return row, path


async def recover(db: Database, storage: Storage) -> tuple[int, int]:
    """Settle files left pending by a crash (see `storage`)."""
    async with db.read() as conn:
        pending = storage.pending_orphans()
        committed = await repository.committed(conn, list(pending)) if pending else set()
    return storage.settle(pending, committed)
