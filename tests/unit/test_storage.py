"""Attachment storage across failures: pending files settle by whether their row committed."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path

import pytest

from supportdesk.errors import PayloadTooLarge
from supportdesk.ticket_attachments.service import clean_filename, content_disposition, mime_type
from supportdesk.ticket_attachments.storage import Storage


async def test_save_publish_withdraw_discard(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    saved = await storage.save(io.BytesIO(b"abc"), limit=10)
    assert saved.size == 3 and storage.locate(saved.stored_name) is None
    storage.publish([saved.stored_name])
    path = storage.locate(saved.stored_name)
    assert path is not None and path.read_bytes() == b"abc"
    assert storage.withdraw([saved.stored_name, "missing"]) == [saved.stored_name]
    assert storage.locate(saved.stored_name) is None
    storage.publish([saved.stored_name])  # a failed deletion puts it back
    assert storage.locate(saved.stored_name) is not None
    storage.withdraw([saved.stored_name])
    storage.discard([saved.stored_name])
    assert list(tmp_path.rglob("*.*")) == [] and not any(p.is_file() for p in tmp_path.rglob("*"))


async def test_save_over_the_limit_leaves_nothing(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(PayloadTooLarge):
        await storage.save(io.BytesIO(b"x" * 11), limit=10)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_recovery_after_a_crash(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.pending.mkdir(parents=True)
    host = socket.gethostname()
    dead = 2**22 + 12345  # above pid_max on Linux: no such process
    (storage.pending / f"committed~{host}~{dead}").write_bytes(b"keep")
    (storage.pending / f"uncommitted~{host}~{dead}").write_bytes(b"drop")
    (storage.pending / f"inflight~{host}~{os.getpid()}").write_bytes(b"busy")
    (storage.pending / "elsewhere~otherhost~1").write_bytes(b"other host, recent")
    orphans = storage.pending_orphans()
    assert set(orphans) == {"committed", "uncommitted"}
    assert storage.settle(orphans, {"committed"}) == (1, 1)
    restored = storage.locate("committed")
    assert restored is not None and restored.read_bytes() == b"keep"
    assert sorted(p.name.split("~")[0] for p in storage.pending.iterdir()) == [
        "elsewhere",
        "inflight",
    ]


def test_names_types_and_disposition() -> None:
    assert clean_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_filename("\u202egnp.exe") == "gnp.exe"
    assert mime_type("text/html; charset=utf-8", "x") == "text/html"
    assert mime_type(None, "a.png") == "image/png"
    assert (
        content_disposition('a"b.txt')
        == """attachment; filename="a_b.txt"; filename*=UTF-8''a%22b.txt"""
    )
