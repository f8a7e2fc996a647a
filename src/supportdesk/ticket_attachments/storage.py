"""Attachment files on disk, kept in step with the database across failures and crashes.

Files live at `<storage>/files/<2 hex>/<stored name>`; the stored name is generated (a UUID),
the client's file name never touches a path. A file whose row is not yet committed (an upload)
or no longer committed (a delete) waits in `<storage>/pending/`, named
`<stored name>~<host>~<pid>` after the process that put it there:

- upload: write to pending -> commit the rows -> move to files/ (on failure: delete it);
- delete: move to pending -> commit the deletion -> delete it (on failure: move it back).

After a crash, `service.recover` (run by `supportdesk serve` before it serves) settles every
pending file whose process is gone: back to files/ if its row exists, deleted if not. So no
committed attachment loses its file and no file outlives its row.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from supportdesk.errors import PayloadTooLarge

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Saved:
    stored_name: str
    size: int


class Storage:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.files = self.root / "files"
        self.pending = self.root / "pending"
        self._owner = f"{socket.gethostname()}~{os.getpid()}"

    def path(self, stored_name: str) -> Path:
        return self.files / stored_name[:2] / stored_name

    def _pending(self, stored_name: str) -> Path:
        return self.pending / f"{stored_name}~{self._owner}"

    def _save(self, source: BinaryIO, limit: int) -> Saved:
        self.pending.mkdir(parents=True, exist_ok=True)
        stored_name = uuid.uuid4().hex
        target = self._pending(stored_name)
        size = 0
        try:
            with target.open("xb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"An attachment is larger than {limit} bytes.")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Saved(stored_name, size)

    async def save(self, source: BinaryIO, limit: int) -> Saved:
        """Copy an upload into pending/; 413 (and nothing left behind) past `limit` bytes."""
        return await run_in_threadpool(self._save, source, limit)

    # Renames and unlinks touch metadata only: quick enough to run inline, even inside a
    # transaction, which must not suspend.

    def publish(self, names: Iterable[str]) -> None:
        """pending/ -> files/: after an upload's rows were committed, or after a deletion
        failed."""
        for name in names:
            final = self.path(name)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._pending(name), final)

    def discard(self, names: Iterable[str]) -> None:
        """Delete pending files: after a failed upload, or after a deletion committed."""
        for name in names:
            self._pending(name).unlink(missing_ok=True)

    def withdraw(self, names: Iterable[str]) -> list[str]:
        """Before a deletion commits: files/ -> pending/. Returns the names moved."""
        moved = []
        self.pending.mkdir(parents=True, exist_ok=True)
        for name in names:
            try:
                os.replace(self.path(name), self._pending(name))
            except FileNotFoundError:
                continue
            moved.append(name)
        return moved

    def locate(self, stored_name: str) -> Path | None:
        path = self.path(stored_name)
        return path if path.is_file() else None

    def pending_orphans(self) -> dict[str, Path]:
        """Pending files whose process is gone: of this host, by pid; of other hosts, which
        cannot be checked, only when older than a day."""
        if not self.pending.is_dir():
            return {}
        host = socket.gethostname()
        orphans: dict[str, Path] = {}
        for entry in self.pending.iterdir():
            stored_name, _, owner = entry.name.partition("~")
            owner_host, _, pid = owner.rpartition("~")
            if owner_host == host and pid.isdigit() and _alive(int(pid)):
                continue
            if owner_host != host and not _older_than_a_day(entry):
                continue
            orphans[stored_name] = entry
        return orphans

    def settle(self, orphans: dict[str, Path], committed: set[str]) -> tuple[int, int]:
        """Orphans with a committed row go back to files/, the others are deleted.
        Returns (restored, deleted)."""
        restored = deleted = 0
        for stored_name, entry in orphans.items():
            if stored_name in committed:
                final = self.path(stored_name)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(entry, final)
                restored += 1
            else:
                entry.unlink(missing_ok=True)
                deleted += 1
        return restored, deleted


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _older_than_a_day(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > 86_400
    except FileNotFoundError:
        return False


def storage(request: Request) -> Storage:
    """The app's attachment storage (made by `create_app`)."""
    files: Storage = request.app.state.storage
    return files
