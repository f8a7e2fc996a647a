"""Every `.eml` in `corpus/` is a mail as a real client writes it (Gmail, Outlook, Apple Mail,
Thunderbird, bounces, auto-replies, charsets); its `.json` sibling says what `parse` must make of
it: the kept text, subject, sender, attachments, why it is automatic, or why it is rejected.
Optional keys (`sender_name`, `message_id`, `references`, `recipients`) are checked when given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from supportdesk.mail.incoming import Inbound, Rejected, parse

CORPUS = Path(__file__).parent / "corpus"
MAILS = sorted(CORPUS.glob("*.eml"))


def expected(mail: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(mail.with_suffix(".json").read_text(encoding="utf-8"))
    return data


def test_the_corpus_covers_the_required_clients() -> None:
    assert len(MAILS) >= 16
    assert all(mail.with_suffix(".json").exists() for mail in MAILS)


@pytest.mark.parametrize("mail", MAILS, ids=[mail.stem for mail in MAILS])
def test_corpus_mail(mail: Path) -> None:
    want = expected(mail)
    if want["rejected"] is not None:
        with pytest.raises(Rejected) as rejected:
            parse(mail.read_bytes())
        assert want["rejected"] in str(rejected.value)
        assert "\n" not in str(rejected.value)
        return
    got = parse(mail.read_bytes())
    assert got.text == want["text"]
    assert got.subject == want["subject"]
    assert got.sender == want["sender"]
    assert attachments(got) == want["attachments"]
    if want["automatic"] is None:
        assert got.automatic is None
    else:
        assert got.automatic is not None and want["automatic"] in got.automatic
    for key in ("sender_name", "message_id"):
        if key in want:
            assert getattr(got, key) == want[key]
    for key in ("references", "recipients"):
        if key in want:
            assert list(getattr(got, key)) == want[key]


def attachments(got: Inbound) -> list[dict[str, Any]]:
    return [
        {
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "inline": attachment.inline,
            "size": len(attachment.data),
        }
        for attachment in got.attachments
    ]
