"""`supportdesk.mail.incoming` on mails built here: the limits against hostile input (each
rejected quickly, whole), the edge cases of headers and parts, and `html_to_text` and
`strip_reply` line by line. Real client output is in `tests/mail/corpus`."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from supportdesk.mail import incoming
from supportdesk.mail.incoming import Limits, Rejected, html_to_text, parse, strip_reply

HEAD = (
    b"From: Anna Schmidt <anna@example.org>\n"
    b"To: support@example.com\n"
    b"Subject: Help\n"
    b"Message-ID: <m1@example.org>\n"
    b"MIME-Version: 1.0\n"
)


def mixed(*parts: bytes, boundary: bytes = b"b0") -> bytes:
    body = b"".join(b"--" + boundary + b"\n" + part + b"\n" for part in parts)
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="'
        + boundary
        + b'"\n\n'
        + body
        + b"--"
        + boundary
        + b"--\n"
    )


TEXT = b"Content-Type: text/plain; charset=utf-8\n\nThe export fails.\n"


def attachment(name: bytes, data: bytes, kind: bytes = b"application/octet-stream") -> bytes:
    return (
        b"Content-Type: " + kind + b"\n"
        b'Content-Disposition: attachment; filename="' + name + b'"\n'
        b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(data)
    )


def rejected(raw: bytes, limits: Limits = incoming.DEFAULT_LIMITS) -> str:
    with pytest.raises(Rejected) as caught:
        parse(raw, limits)
    reason = str(caught.value)
    assert reason and "\n" not in reason
    return reason


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


# --- limits --------------------------------------------------------------------------------


def test_a_one_megabyte_header_line_is_rejected_before_parsing() -> None:
    raw = HEAD + b"X-Junk: " + b"a" * (1024 * 1024) + b"\n\nhello\n"
    seconds = timed(lambda: rejected(raw))
    assert "header block too large (more than 262144 bytes)" in rejected(raw)
    assert seconds < 0.5


def test_a_huge_folded_header_block_is_rejected_too() -> None:
    raw = HEAD + b"X-Junk: a\n" + b" folded line\n" * 30_000 + b"\nhello\n"
    assert "header block too large" in rejected(raw)


def test_a_part_with_a_huge_header_block_is_rejected() -> None:
    part = b"Content-Type: text/plain\nX-Junk: " + b"a" * 300_000 + b"\n\nhello\n"
    assert "MIME part header block too large" in rejected(mixed(TEXT, part))


def test_ten_thousand_parts_are_rejected_quickly() -> None:
    raw = mixed(*[b"Content-Type: text/plain\n\nx\n"] * 10_000)
    seconds = timed(lambda: rejected(raw))
    assert rejected(raw) == "too many MIME parts (more than 200)"
    assert seconds < 5


def test_nested_parts_count_against_the_limit() -> None:
    inner = b'Content-Type: multipart/mixed; boundary="b1"\n\n' + b"".join(
        [b"--b1\nContent-Type: text/plain\n\nx\n"] * 6
    )
    raw = mixed(TEXT, inner + b"--b1--\n")
    assert parse(raw, Limits(max_parts=9)).text == "The export fails."
    assert rejected(raw, Limits(max_parts=8)) == "too many MIME parts (more than 8)"


def test_a_25_megabyte_attachment_rejects_the_whole_mail() -> None:
    raw = mixed(TEXT, attachment(b"dump.bin", bytes(25 * 1024 * 1024)))
    reason = rejected(raw)
    assert "attachment 'dump.bin' too large (26214400 bytes, more than 10485760)" in reason


def test_an_attachment_at_the_limit_is_accepted() -> None:
    raw = mixed(TEXT, attachment(b"a.bin", bytes(1000)))
    assert len(parse(raw, Limits(max_attachment_bytes=1000)).attachments[0].data) == 1000
    assert "too large" in rejected(raw, Limits(max_attachment_bytes=999))


def test_more_attachments_than_allowed_reject_the_mail() -> None:
    files = [attachment(b"f%d.txt" % n, b"x") for n in range(11)]
    assert rejected(mixed(TEXT, *files)) == "too many attachments (11, more than 10)"
    assert len(parse(mixed(TEXT, *files[:10])).attachments) == 10


def test_a_message_over_max_bytes_is_rejected() -> None:
    raw = HEAD + b"\n" + b"x" * 2000
    assert "message too large" in rejected(raw, Limits(max_bytes=1000))


# --- broken mail ---------------------------------------------------------------------------


def test_a_missing_close_boundary_is_rejected() -> None:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="b0"\n\n--b0\n' + TEXT
    assert "close boundary not found (CloseBoundaryNotFoundDefect)" in rejected(raw)


def test_undecodable_base64_in_the_text_part_is_rejected() -> None:
    raw = HEAD + b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nQUJDR\n"
    assert "undecodable base64" in rejected(raw)


def test_no_from_header_is_rejected() -> None:
    raw = b"To: support@example.com\nSubject: x\n\nhello\n"
    assert rejected(raw) == "no From header"


def test_a_from_without_an_address_is_rejected() -> None:
    raw = b"From: undisclosed\nTo: support@example.com\n\nhello\n"
    assert "no usable From address" in rejected(raw)


def test_an_unexpected_failure_becomes_a_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> str:
        raise ValueError("boom\nsecond line")

    monkeypatch.setattr(incoming, "_message_id", broken)
    assert rejected(HEAD + b"\nhello\n") == "unreadable message: ValueError: boom second line"


# --- headers -------------------------------------------------------------------------------


def test_a_missing_message_id_is_fine() -> None:
    got = parse(b"From: anna@example.org\n\nhello\n")
    assert got.message_id is None
    assert got.sender == "anna@example.org"
    assert got.sender_name == ""
    assert got.text == "hello"


def test_a_message_id_without_brackets_is_normalised() -> None:
    got = parse(b"From: anna@example.org\nMessage-ID:  abc@host \n\nhello\n")
    assert got.message_id == "<abc@host>"


def test_recipients_and_references_are_collected_in_order_without_duplicates() -> None:
    raw = (
        b"From: Anna <ANNA@example.org>\n"
        b"To: Support <Support@Example.com>, other@example.org\n"
        b"Cc: support@example.com\n"
        b"Delivered-To: help@example.com\n"
        b"Delivered-To: support@example.com\n"
        b"X-Original-To: help@example.com\n"
        b"In-Reply-To: <b@x> (Anna's message of today)\n"
        b"References: <a@x>\n <b@x> <c@x>\n\nhi\n"
    )
    got = parse(raw)
    assert got.sender == "anna@example.org"
    assert got.recipients == ("support@example.com", "other@example.org", "help@example.com")
    assert got.references == ("<b@x>", "<a@x>", "<c@x>")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated"),
        (b"Precedence: bulk\n", "Precedence: bulk"),
        (b"Precedence: list\n", "Precedence: list"),
        (b"X-Autoreply: yes\n", "X-Autoreply header"),
        (b"X-Autorespond: vacation\n", "X-Autorespond header"),
    ],
)
def test_machine_mail_says_why(header: bytes, reason: str) -> None:
    assert parse(HEAD + header + b"\nhello\n").automatic == reason


def test_a_person_s_mail_is_not_automatic() -> None:
    assert parse(HEAD + b"Auto-Submitted: no\nPrecedence: first-class\n\nhi\n").automatic is None


def test_mail_from_a_mailer_daemon_is_automatic() -> None:
    raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>\n\nfailed\n"
    assert parse(raw).automatic == "sent by mailer-daemon@mx.example.org"


# --- bodies and attachments ----------------------------------------------------------------


def test_an_unknown_charset_decodes_as_utf8_with_replacement() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset=x-klingon\n\nk\xc3\xa4se \xff\n"
    assert parse(raw).text == "käse \ufffd"


def test_windows_1252_characters_labelled_latin1_are_read() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset=iso-8859-1\n\n\x93quoted\x94 \x80 5\n"
    assert parse(raw).text == "\u201cquoted\u201d \u20ac 5"


def test_html_only_mail_becomes_text() -> None:
    raw = HEAD + b"Content-Type: text/html\n\n<p>Hello&nbsp;<b>there</b></p><p>Bye</p>\n"
    assert parse(raw).text == "Hello there\n\nBye"


def test_filenames_are_made_safe_and_made_up_when_missing() -> None:
    nameless = b"Content-Type: image/png\nContent-ID: <img1>\n\n\x89PNG"
    raw = mixed(
        TEXT,
        attachment(b"../../etc/passwd", b"x"),
        attachment(b"C:\\\\Users\\\\evil\\\\a\x07b.txt", b"y"),
        nameless,
        attachment(b"..", b"z", b"text/plain"),
    )
    got = parse(raw).attachments
    assert [a.filename for a in got] == ["passwd", "ab.txt", "attachment-3.png", "attachment-4.txt"]
    assert [a.inline for a in got] == [False, False, True, False]


def test_an_attached_message_is_an_eml_attachment_and_not_the_body() -> None:
    inner = b"From: bank@example.net\nSubject: Your statement\n\nInner text.\n"
    part = b"Content-Type: message/rfc822\nContent-Disposition: attachment\n\n" + inner
    got = parse(mixed(TEXT, part))
    assert got.text == "The export fails."
    [eml] = got.attachments
    assert (eml.filename, eml.content_type, eml.inline) == (
        "attachment-1.eml",
        "message/rfc822",
        False,
    )
    assert b"Subject: Your statement" in eml.data and b"Inner text." in eml.data


# --- html_to_text ----------------------------------------------------------------------------


def test_html_to_text_drops_invisible_parts_and_decodes_entities() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<script>alert(1)</script><p>Fish &amp; chips &lt;3 &#8364;5</p></body></html>"
    )
    assert html_to_text(html) == "Fish & chips <3 \u20ac5"


def test_html_to_text_lines_lists_and_links() -> None:
    html = (
        "<div>Steps:</div><ol><li>open <a href='https://x.example/s'>settings</a></li>"
        "<li>press   save</li></ol><ul><li>one<ul><li>nested</li></ul></li></ul>"
        "<div>line<br>break</div><table><tr><td>a</td><td>b</td></tr></table>"
    )
    assert html_to_text(html) == (
        "Steps:\n1. open settings\n2. press save\n- one\n  - nested\nline\nbreak\na b"
    )


def test_html_to_text_keeps_pre_as_written() -> None:
    assert html_to_text("<p>Trace:</p><pre>  File x.py\n    raise E</pre>") == (
        "Trace:\n\n  File x.py\n    raise E"
    )


def test_html_to_text_quotes_blockquotes_for_strip_reply() -> None:
    html = (
        "<div>Yes.</div><div class='gmail_quote'><div>On Tue, Mar 5, 2024 at 10:15 AM "
        "Support &lt;s@example.com&gt; wrote:<br></div><blockquote>Hi<br><br>Try"
        "<blockquote>older</blockquote></blockquote></div>"
    )
    text = html_to_text(html)
    assert text == (
        "Yes.\nOn Tue, Mar 5, 2024 at 10:15 AM Support <s@example.com> wrote:\n\n"
        "> Hi\n>\n> Try\n>\n> > older"
    )
    assert strip_reply(text) == "Yes."


def test_html_to_text_marks_outlook_s_reply_header_block() -> None:
    html = (
        "<p class=MsoNormal>Still broken.<o:p></o:p></p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        "<p class=MsoNormal><b>From:</b> Support<br><b>Sent:</b> Monday<br>"
        "<b>Subject:</b> x</p></div><p class=MsoNormal>old text</p>"
    )
    text = html_to_text(html)
    assert text.startswith("Still broken.\n" + "_" * 32 + "\nFrom: Support\nSent: Monday")
    assert strip_reply(text) == "Still broken."


# --- strip_reply -----------------------------------------------------------------------------

QUOTE = "\n> Hello,\n> please try again.\n"


@pytest.mark.parametrize(
    "history",
    [
        "On Tue, Mar 5, 2024 at 10:15 AM Support <s@example.com> wrote:\n" + QUOTE,
        "On Tue, Mar 5, 2024 at 10:15 AM Example Support <support@example.com>\nwrote:\n" + QUOTE,
        "On 5 Mar 2024, at 10:15, Support <s@example.com> wrote:\n" + QUOTE,
        "On 05.03.24 10:15, Support wrote:\n" + QUOTE,
        "Support Team wrote:\n" + QUOTE,
        "Am Di., 5. März 2024 um 10:15 Uhr schrieb Support <s@example.com>:\n" + QUOTE,
        "Am 05.03.2024 um 10:15 schrieb Support:\n" + QUOTE,
        "Le mar. 5 mars 2024 à 10:15, Support <s@example.com> a écrit\u00a0:\n" + QUOTE,
        "El mar, 5 mar 2024 a las 10:15, Soporte (<s@example.com>) escribió:\n" + QUOTE,
        "2024年3月5日(火) 10:15 サポート <s@example.com>:\n" + QUOTE,
        "2024/03/05 10:15 に サポート さんは書きました:\n" + QUOTE,
        "-----Original Message-----\nFrom: Support\nSent: Tuesday\nTo: Anna\nSubject: x\n\nHi",
        "________________________________\nFrom: Support <s@example.com>\nSent: Tuesday\n\nHi",
        "From: Support <s@example.com>\nSent: Tuesday, March 5, 2024 10:15 AM\nTo: Anna\n\nHi",
        "*From:* Support <s@example.com>\n*Sent:* Tuesday\n*To:* Anna\n\nHi",
        "Von: Support <s@example.com>\nGesendet: Dienstag\nAn: Anna\nBetreff: x\n\nHallo",
        "-- \nAnna Schmidt\nACME GmbH\n\nOn Tue, Mar 5, 2024 Support wrote:\n" + QUOTE,
        "Sent from my iPhone\n" + QUOTE,
        "Get Outlook for iOS<https://aka.ms/o0ukef>\n",
        "Von meinem iPhone gesendet\n",
        QUOTE,
    ],
)
def test_strip_reply_cuts_history_and_signatures(history: str) -> None:
    assert strip_reply("The export still fails.\n\n" + history) == "The export still fails."


def test_strip_reply_of_nothing_but_a_quote_is_empty() -> None:
    assert strip_reply("On Tue, Mar 5, 2024 at 10:15 Support <s@example.com> wrote:\n> Hi\n") == ""


@pytest.mark.parametrize(
    "text",
    [
        "Hi,\n\nThanks, the fix works. However the invoice still shows the old amount.",
        "Steps:\n- open the page\n- click export\n\nIt fails.",
        "Warning: the mail I got from you was empty.\nThe rest of my message.",
        "Trace:\n    File x.py, line 3\n      raise E",
        "On Monday the export failed.\nHere is what your colleague wrote:\nnothing useful.",
        "From: my account page\nI cannot change the address.",
        "Quoting your docs:\n> the limit is 25 MB\nbut it is 10 MB for me.",
    ],
)
def test_strip_reply_keeps_a_person_s_own_words(text: str) -> None:
    assert strip_reply(text) == text


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "---------- Weitergeleitete Nachricht ---------",
    ],
)
def test_strip_reply_keeps_a_forwarded_message(marker: str) -> None:
    forwarded = f"{marker}\nFrom: Bank <b@example.net>\nDate: Tue\nTo: <a@example.org>\n\nPaid."
    text = f"See below.\n\n-- \nAnna\n\n{forwarded}\n"
    assert strip_reply(text) == f"See below.\n\n{forwarded}"


def test_strip_reply_drops_a_forward_inside_the_quoted_history() -> None:
    text = (
        "Done.\n\nOn Tue, 5 Mar 2024 Support wrote:\n> ---------- Forwarded message ---------\n> x"
    )
    assert strip_reply(text) == "Done."


def test_an_outlook_forward_without_a_marker_is_kept_when_the_subject_says_so() -> None:
    body = b"FYI\n\nFrom: Bank <b@example.net>\nSent: Tuesday\nTo: Anna\nSubject: Paid\n\nPaid.\n"
    raw = b"From: anna@example.org\nSubject: FW: Paid\n\n" + body
    assert parse(raw).text == body.decode().strip()
    assert parse(raw.replace(b"FW: Paid", b"RE: Paid")).text == "FYI"


def test_strip_reply_is_linear_on_hostile_lines() -> None:
    text = ("On " + "a " * 200_000 + "\n") * 5 + ("On 5 " + "x" * 250 + " wrote\n") * 20_000
    assert timed(lambda: strip_reply(text)) < 2


def test_parts_without_boundaries_are_counted_while_walking() -> None:
    blocks = b"".join(b"Final-Recipient: rfc822; r%d@example.org\n\n" % n for n in range(5))
    raw = (
        HEAD + b'Content-Type: multipart/report; report-type=delivery-status; boundary="b0"\n\n'
        b"--b0\n" + TEXT + b"--b0\nContent-Type: message/delivery-status\n\n" + blocks + b"--b0--\n"
    )
    assert parse(raw).automatic == "delivery report (delivery-status)"
    assert rejected(raw, Limits(max_parts=6)) == "too many MIME parts (more than 6)"


def test_envelope_of_a_mail_too_large_to_take() -> None:
    head = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <Juergen@Example.ORG>\r\nSubject: Big\x01 file\r\n"
        b"Message-ID: <big@example.org>\r\n\r\nthe body, cut off here"
    )
    assert incoming.envelope(head) == incoming.Envelope(
        "<big@example.org>", "juergen@example.org", "Big file"
    )
    # only the header fields, as the poller fetches them; and no usable From at all
    assert incoming.envelope(b"Subject: x\r\n\r\n") == incoming.Envelope(None, "", "x")
    assert incoming.envelope(b"From: nobody\r\n") == incoming.Envelope(None, "", "")
    # a header block past the limit is read no further
    long = b"Subject: " + b"a" * 100 + b"\r\nFrom: late@example.org\r\n\r\n"
    limits = incoming.Limits(max_header_bytes=50)
    assert incoming.envelope(long, limits).sender == ""
