"""Incoming mail, the pure half: one raw RFC 5322 message in, an `Inbound` out (who wrote, to
whom, about what, the new text, the attachments, whether a machine sent it), or `Rejected` with
a one-line reason. Nothing here touches the database or the network: the IMAP poller and
`supportdesk mail ingest` feed the bytes in and decide what the result means for tickets.

Mail is hostile input from anyone, so the limits are checked on the raw bytes before the stdlib
parser sees them (a 1 MB header is refused by a byte search, not parsed), parts are counted as
they are walked, and a mail is accepted whole or not at all: a broken part, one attachment too
many or too large rejects it, never a ticket message with half its files.

Quoted history is cut line by line with our own patterns rather than with `mailparser_reply`:
on real client output that library misses Spanish and French (non-breaking space) attribution
lines and Outlook's underscore separator, cuts forwarded messages, lists and any paragraph
starting "Thanks,", strips indentation, and backtracks quadratically on a long line that starts
with "On " (seconds for 16 kB). Every pattern here looks at one line, or two for the wrapped
attribution Gmail writes, and runs in linear time.
"""

from __future__ import annotations

import codecs
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email import errors, policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses
from html.parser import HTMLParser


class Rejected(Exception):
    """A mail we refuse; str(exc) is the reason, one line, for the `mail.rejected` event and
    stderr."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 40 * 1024 * 1024  # the whole raw message
    max_parts: int = 200  # MIME parts in all (nested included)
    max_header_bytes: int = 256 * 1024  # the raw header block of the message, and of any part
    max_attachment_bytes: int = 10 * 1024 * 1024  # one decoded attachment
    max_attachments: int = 10


@dataclass(frozen=True)
class Attachment:
    filename: str  # safe: no path separators or control characters; made up when none is given
    content_type: str  # e.g. "image/png"
    data: bytes  # decoded
    inline: bool  # Content-Disposition inline or referenced by Content-ID (an inline image)


@dataclass(frozen=True)
class Inbound:
    message_id: str | None  # "<id@host>", None when absent
    sender: str  # the From address, lower-cased; never ""
    sender_name: str  # the From display name, decoded; "" when none
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To; lower-cased, first kept
    subject: str  # RFC 2047 decoded, whitespace collapsed
    references: tuple[str, ...]  # In-Reply-To then References, "<...>" each, first kept
    text: str  # the new text only: quoted history and signature cut off; may be ""
    attachments: tuple[Attachment, ...]
    automatic: str | None  # why this is machine mail; None for a person's mail


DEFAULT_LIMITS = Limits()

# as stored, for an attached message's bytes: no refolding of its long header lines
_AS_IS = policy.default.clone(refold_source="none")
# the stdlib's own table only, so made-up names do not depend on the host's /etc/mime.types
_MIME_TYPES = mimetypes.MimeTypes()
_BOUNDARY = re.compile(rb'boundary\s*=\s*"?([^"\s;]{1,200})', re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# a forward's subject, in Outlook's languages too: its quoted header block is the payload
_FORWARD_SUBJECT = re.compile(r"(?:fwd?|wg|tr|rv|enc|转发|転送)\s*[:\uff1a]", re.IGNORECASE)

# parser defects that mean the structure or an encoding is broken, not merely untidy headers
_BROKEN = {
    errors.StartBoundaryNotFoundDefect: "start boundary not found",
    errors.CloseBoundaryNotFoundDefect: "close boundary not found",
    errors.NoBoundaryInMultipartDefect: "multipart without a boundary",
    errors.MultipartInvariantViolationDefect: "multipart without parts",
    errors.InvalidBase64LengthDefect: "undecodable base64",
    errors.InvalidBase64CharactersDefect: "characters outside base64",
}

# labels whose real-world text is the superset Windows and browsers use (WHATWG Encoding)
_CHARSETS = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "gb2312": "gbk",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
}


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Inbound:
    """The mail in `raw`; Rejected with the reason when it breaks a limit, is malformed or has
    no usable From. Any other failure of the parser is a rejection too, never an exception."""
    _check_raw(raw, limits)
    try:
        return _parse(raw, limits)
    except Rejected:
        raise
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        raise Rejected(f"unreadable message: {type(exc).__name__}: {detail}") from exc


def _check_raw(raw: bytes, limits: Limits) -> None:
    if len(raw) > limits.max_bytes:
        raise Rejected(f"message too large ({len(raw)} bytes, more than {limits.max_bytes})")
    limit = limits.max_header_bytes
    if _header_length(raw, 0, limit) > limit:
        raise Rejected(f"header block too large (more than {limit} bytes)")
    boundaries = set(_BOUNDARY.findall(raw))
    if len(boundaries) > limits.max_parts:
        raise Rejected(f"too many MIME parts (more than {limits.max_parts})")
    if not boundaries:
        return
    alternatives = b"|".join(re.escape(boundary) for boundary in boundaries)
    delimiter = re.compile(rb"^--(?:" + alternatives + rb")(--)?[ \t]*\r?\n", re.MULTILINE)
    parts = 1
    for line in delimiter.finditer(raw):
        if line.group(1) is not None:
            continue  # a close delimiter: no part follows
        parts += 1
        if parts > limits.max_parts:  # before the parser spends seconds on ten thousand
            raise Rejected(f"too many MIME parts (more than {limits.max_parts})")
        if _header_length(raw, line.end(), limit) > limit:
            raise Rejected(f"MIME part header block too large (more than {limit} bytes)")


def _header_length(raw: bytes, start: int, limit: int) -> int:
    """Bytes from `start` to the blank line ending a header block, looking no further than just
    past `limit` (so a huge block costs one bounded search)."""
    if raw.startswith((b"\n", b"\r\n"), start):
        return 0
    end = min(len(raw), start + limit + 3)
    ends = [
        at for at in (raw.find(b"\n\n", start, end), raw.find(b"\n\r\n", start, end)) if at >= 0
    ]
    return (min(ends) if ends else end) - start


# Control characters (NUL among them) that a database text column refuses or a reader cannot
# see: dropped from everything kept as text. Tab and newline stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_ADDRESS = 254  # RFC 5321's longest forward path, and what `mail_inbox.sender` holds


def _parse(raw: bytes, limits: Limits) -> Inbound:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    parts = _walk(message, limits)
    sender, sender_name = _sender(message)
    if len(sender) > MAX_ADDRESS or _CONTROL.search(sender):
        raise Rejected(f"the From address is not a usable address ({len(sender)} characters)")
    sender_name = _CONTROL.sub("", sender_name)
    subject = _subject(message)
    body, attachments = _contents(parts, limits)
    text = _CONTROL.sub("", _new_text(body, forwarding=_FORWARD_SUBJECT.match(subject) is not None))
    return Inbound(
        message_id=_message_id(message),
        sender=sender,
        sender_name=sender_name,
        recipients=tuple(
            dict.fromkeys(
                address
                for name in ("To", "Cc", "Delivered-To", "X-Original-To")
                for address in _addresses(message, name)
            )
        ),
        subject=subject,
        references=tuple(
            dict.fromkeys(
                found
                for name in ("In-Reply-To", "References")
                for value in message.get_all(name, [])
                for found in _MESSAGE_ID.findall(str(value))
            )
        ),
        text=text,
        attachments=attachments,
        automatic=_automatic(message, sender),
    )


@dataclass(frozen=True)
class Envelope:
    """What is read of a mail too large to take, to record it: who sent what."""

    message_id: str | None
    sender: str  # "" when the From field is missing or unusable
    subject: str


def envelope(head: bytes, limits: Limits = DEFAULT_LIMITS) -> Envelope:
    """The Message-ID, sender and subject in the header block at the start of `head` (the
    block is read no further than the header limit); what cannot be read is left out."""
    block = head[: _header_length(head, 0, limits.max_header_bytes)]
    message = BytesParser(policy=policy.default).parsebytes(block, headersonly=True)
    try:
        sender, _ = _sender(message)
    except Exception:  # a From field the header registry cannot read is no sender either
        sender = ""
    if len(sender) > MAX_ADDRESS or _CONTROL.search(sender):
        sender = ""
    return Envelope(_message_id(message), sender, _subject(message))


def _subject(message: EmailMessage) -> str:
    return _CONTROL.sub("", " ".join(str(message.get("Subject", "")).split()))


def _walk(message: EmailMessage, limits: Limits) -> list[tuple[EmailMessage, bool]]:
    """Every part in document order, each with whether it lies inside an attached message
    (counted against the limit, but its text and files belong to that message)."""
    found: list[tuple[EmailMessage, bool]] = []
    stack: list[tuple[EmailMessage, bool]] = [(message, False)]
    while stack:
        part, attached = stack.pop()
        found.append((part, attached))
        if len(found) > limits.max_parts:
            raise Rejected(f"too many MIME parts (more than {limits.max_parts})")
        if not attached:
            _check_defects(part)
        children = _children(part)
        inside = attached or part.get_content_maintype() == "message"
        stack.extend((child, inside) for child in reversed(children))
    return found


def _children(part: EmailMessage) -> list[EmailMessage]:
    payload = part.get_payload() if part.is_multipart() else []
    return [child for child in payload if isinstance(child, EmailMessage)]


def _check_defects(part: EmailMessage) -> None:
    for defect in part.defects:
        reason = _BROKEN.get(type(defect))
        if reason is not None:
            raise Rejected(
                f"broken MIME: {reason} ({type(defect).__name__}) in {part.get_content_type()}"
            )


def _sender(message: EmailMessage) -> tuple[str, str]:
    header = message.get("From")
    if header is None:
        raise Rejected("no From header")
    for address in getattr(header, "addresses", ()):
        if "@" in address.addr_spec:
            return address.addr_spec.lower(), " ".join(address.display_name.split())
    raise Rejected(f"no usable From address in {' '.join(str(header).split())[:200]!r}")


def _addresses(message: EmailMessage, name: str) -> Iterator[str]:
    for value in message.get_all(name, []):
        if hasattr(value, "addresses"):  # To and Cc: the header registry parsed them
            found = [address.addr_spec for address in value.addresses]
        else:
            found = [address for _, address in getaddresses([str(value)])]
        yield from (address.lower() for address in found if "@" in address)


def _message_id(message: EmailMessage) -> str | None:
    value = " ".join(str(message.get("Message-ID", "")).split())
    found = _MESSAGE_ID.search(value)
    if found:
        return found.group()
    bare = value.strip("<> ")
    return f"<{bare.split()[0]}>" if bare else None


def _automatic(message: EmailMessage, sender: str) -> str | None:
    """The most telling sign first: a bounce says so by its type and sender, and mostly carries
    `Auto-Submitted` as well."""
    if message.get_content_type() == "multipart/report":
        return f"delivery report ({_param(message, 'report-type') or 'of no type'})"
    if sender.split("@")[0] in ("mailer-daemon", "postmaster"):
        return f"sent by {sender}"
    submitted = str(message.get("Auto-Submitted", "")).split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in message:
            return f"{name} header"
    return None


def _contents(
    parts: list[tuple[EmailMessage, bool]], limits: Limits
) -> tuple[str, tuple[Attachment, ...]]:
    """The body text (the first text/plain part that is not an attachment, else the first
    text/html one made text) and the attachments: every other part that is not a container,
    a calendar invitation or a bounce's report as much as a PDF."""
    plain: EmailMessage | None = None
    html: EmailMessage | None = None
    files: list[EmailMessage] = []
    for part, attached in parts:
        if attached or (part.is_multipart() and part.get_content_maintype() != "message"):
            continue
        kind = part.get_content_type()
        if part.get_content_disposition() == "attachment" or part.get_filename():
            files.append(part)
        elif kind == "text/plain":
            plain = part if plain is None else plain
        elif kind == "text/html":
            html = part if html is None else html
        else:
            files.append(part)
    if len(files) > limits.max_attachments:
        raise Rejected(f"too many attachments ({len(files)}, more than {limits.max_attachments})")
    attachments = tuple(_attachment(part, number, limits) for number, part in enumerate(files, 1))
    if plain is not None:
        return _text(plain), attachments
    if html is not None:
        return html_to_text(_text(html)), attachments
    return "", attachments


def _decoded(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    _check_defects(part)  # decoding base64 records its defects on the part
    return payload if isinstance(payload, bytes) else b""


def _text(part: EmailMessage) -> str:
    charset = (part.get_content_charset() or "utf-8").strip().lower()
    try:
        codec = codecs.lookup(_CHARSETS.get(charset, charset)).name
    except LookupError:
        codec = "utf-8"
    text = _decoded(part).decode(codec, errors="replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _param(part, "format") == "flowed":
        return _unflow(text, delete_space=_param(part, "delsp") == "yes")
    return text


def _param(part: EmailMessage, name: str) -> str:
    value = part.get_param(name, "")
    return (collapse_rfc2231_value(value) if isinstance(value, tuple) else value).lower()


def _unflow(text: str, delete_space: bool) -> str:
    """RFC 3676 format=flowed as plain lines: a line ending in a space continues on the next
    line of the same quote depth; the signature delimiter "-- " stays a line of its own."""
    lines: list[str] = []
    joining = False
    previous_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content.removeprefix(" ")  # space-stuffing
        if joining and depth == previous_depth:
            lines[-1] += content
        else:
            lines.append((">" * depth + " " if depth else "") + content)
        joining = content.endswith(" ") and content != "-- "
        if joining and delete_space:
            lines[-1] = lines[-1][:-1]
        previous_depth = depth
    return "\n".join(lines)


def _attachment(part: EmailMessage, number: int, limits: Limits) -> Attachment:
    kind = part.get_content_type()
    if part.get_content_maintype() == "message":
        data = b"".join(inner.as_bytes(policy=_AS_IS) for inner in _children(part))
    else:
        data = _decoded(part)
    filename = _safe_filename(part.get_filename() or "", kind, number)
    if len(data) > limits.max_attachment_bytes:
        raise Rejected(
            f"attachment {filename!r} too large ({len(data)} bytes, more than "
            f"{limits.max_attachment_bytes})"
        )
    # Gmail gives every attachment a Content-ID: an explicit "attachment" wins over it
    disposition = part.get_content_disposition()
    inline = disposition == "inline" or (disposition is None and "Content-ID" in part)
    return Attachment(filename=filename, content_type=kind, data=data, inline=inline)


def _safe_filename(name: str, content_type: str, number: int) -> str:
    """The last path segment without control or format characters, at most 200 characters
    (the extension kept); `attachment-<n><ext>` when nothing is left."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = name.strip().strip(".").strip()
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = stem[: 199 - len(extension)] + dot + extension if dot else name[:200]
    if name:
        return name
    unknown = ".txt" if content_type.startswith("text/") else ".bin"
    extension = _MIME_TYPES.guess_extension(content_type) or unknown
    return f"attachment-{number}{extension}"


# --- HTML to text -------------------------------------------------------------------------

_SKIPPED = frozenset({"script", "style", "head", "title", "template"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset",
        "figure", "footer", "form", "header", "li", "main", "nav", "ol", "section", "table",
        "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote"})
_SEPARATOR = "_" * 32  # what Outlook's own text part puts above the quoted header block


class _TextWriter(HTMLParser):
    """Collects lines; text inside <blockquote> gets one "> " per level, as a text part's
    quotes do, so `strip_reply` treats both alike."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []  # the pieces of the line being written (joined once)
        self.skipping: list[str] = []
        self.depth = 0
        self.pre = 0
        self.lists: list[int] = []  # per open list: the next number, or 0 for bullets
        self.bullet = ""  # written before the next text of a list item

    def write(self, text: str) -> None:
        if not self.line:
            text = text.lstrip(" ")
            if text and self.bullet:
                self.line.append(self.bullet)
                self.bullet = ""
        elif self.line[-1].endswith(" ") and text.startswith(" "):
            text = text[1:]
        if text:
            self.line.append(text)

    def newline(self) -> None:
        self.lines.append(("> " * self.depth + "".join(self.line)).rstrip())
        self.line = []

    def end_line(self) -> None:
        if self.line:
            self.newline()

    def blank_line(self) -> None:
        self.end_line()
        self.newline()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "body":
            self.skipping.clear()  # an unclosed <head> ends here
        if tag in _SKIPPED:
            self.skipping.append(tag)
        elif tag == "br":
            self.newline()
        elif tag == "hr" or (
            tag == "div"
            and (
                attributes.get("id") == "divRplyFwdMsg"
                or "border-top" in attributes.get("style", "").replace(" ", "")
            )
        ):
            self.separator()
        elif tag in ("ul", "ol"):
            self.end_line()
            self.lists.append(1 if tag == "ol" else 0)
        elif tag == "li":
            self.end_line()
            self.bullet = self._bullet()
        elif tag in ("td", "th") and self.line:
            self.write(" ")
        else:
            self._start_block(tag, attributes)

    def separator(self) -> None:
        self.end_line()
        if not self.lines or self.lines[-1].lstrip("> ") != _SEPARATOR:
            self.line = [_SEPARATOR]
            self.newline()

    def _bullet(self) -> str:
        if not self.lists or self.lists[-1] == 0:
            return "  " * max(len(self.lists) - 1, 0) + "- "
        number = self.lists[-1]
        self.lists[-1] += 1
        return "  " * (len(self.lists) - 1) + f"{number}. "

    def _start_block(self, tag: str, attributes: dict[str, str]) -> None:
        if tag == "p" and "MsoNormal" in attributes.get("class", ""):
            self.end_line()  # Word's paragraphs are lines, spaced by empty ones
        elif tag in _PARAGRAPHS:
            self.blank_line()
        elif tag in _BLOCKS:
            self.end_line()
        if tag == "blockquote":
            self.depth += 1
        elif tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
            return
        if tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        if tag in _BLOCKS or tag in _PARAGRAPHS:
            self.end_line()
        if tag == "blockquote" and self.depth:
            self.depth -= 1
        elif tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _PARAGRAPHS and tag != "p":
            self.newline()  # the empty line below, outside the quote that ended

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self.line.append(first)
            for line in rest:
                self.newline()
                self.line = [line]
            return
        self.write(re.sub(r"\s+", " ", data.replace("\xa0", " ")))


def html_to_text(html: str) -> str:
    """Readable text from an HTML body: no script, style or head; blocks and <br> as line
    breaks, paragraphs spaced by an empty line, list items as "- " (or "1. "), links as their
    text, <blockquote> as "> " lines, and Outlook's reply header block after a separator line,
    as Outlook's own text part writes it."""
    writer = _TextWriter()
    writer.feed(html)
    writer.close()
    writer.end_line()
    lines: list[str] = []
    for line in writer.lines:
        if _is_blank(line) and (not lines or _is_blank(lines[-1])):
            continue  # no empty line at the top, none twice
        lines.append(line)
    while lines and _is_blank(lines[-1]):
        lines.pop()
    return "\n".join(lines).strip()


def _is_blank(line: str) -> bool:
    return not line.strip("> ")


# --- Cutting quoted history ---------------------------------------------------------------

_LONGEST_HEADER_LINE = 300  # attribution and header lines are short; longer ones are text
_ATTRIBUTION_START = re.compile(
    r"(?:On|Am|Le|El|Op|Il|Em|Den|Dne|W dniu)\s|\d{4}[年/.-]\s?\d{1,2}[月/.-]", re.IGNORECASE
)
_ATTRIBUTION_WORDS = (
    "wrote", "schrieb", "écrit", "escribió", "schreef", "scritto", "escreveu", "skrev",
    "napsal", "書きました", "書き込みました",
)  # fmt: skip
_HEADER_NAME = re.compile(r"[*\s]*([^\W\d_][^:\uff1a*]{0,24}?)[*\s]*[:\uff1a]")
_FROM_NAMES = frozenset({"from", "von", "de", "van", "da", "od", "från", "fra", "差出人", "发件人"})
_OTHER_HEADER_NAMES = frozenset(
    {
        "sent", "date", "to", "cc", "subject", "gesendet", "datum", "an", "betreff",
        "envoyé", "à", "objet", "enviado", "fecha", "para", "asunto", "verzonden", "aan",
        "onderwerp", "inviato", "a", "oggetto", "送信日時", "宛先", "件名", "日付",
        "发送时间", "收件人", "主题",
    }
)  # fmt: skip
_ORIGINAL_MESSAGE = re.compile(
    r"-{3,}\s*(?:original message|ursprüngliche nachricht|original-nachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht|元のメッセージ)\s*-{3,}",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"-*\s*(?:forwarded message|weitergeleitete nachricht|message transf[ée]r[ée]"
    r"|mensaje reenviado|mensagem encaminhada|messaggio inoltrato|doorgestuurd bericht"
    r"|転送されたメッセージ)\s*-*"
    r"|(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|inicio del mensaje reenviado)\s*:",
    re.IGNORECASE,
)
_SENT_FROM = re.compile(
    r"(?:sent from my|sent with|sent via|get outlook for|gesendet von|von meinem"
    r"|envoyé de mon|envoyé depuis|enviado desde mi|enviado do meu|inviato da|verzonden met)"
    r"\b[\w .,:/<>@-]{0,80}|\S{0,20}から送信",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """The new text of a reply: the history below an attribution ("On ... wrote:" in English,
    German, French, Spanish, Dutch, Italian, Portuguese, Japanese and more, wrapped over two
    lines or not), an Outlook header block ("From:/Sent:/To:/Subject:", "-----Original
    Message-----", the underscore separator) or trailing "> " lines is cut, and so are a
    signature after "-- " and "Sent from my iPhone". A forwarded message ("---------- Forwarded
    message ---------", "Begin forwarded message:") is what the sender wants us to read, so it
    is kept whole after their own words. Lines lose trailing spaces; the result is stripped."""
    return _new_text(text, forwarding=False)


def _new_text(text: str, forwarding: bool) -> str:
    """`strip_reply`; when `forwarding` (the subject says Fwd:) and no forward line marks where
    the forwarded message starts, the first quoted header block does."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    forward = next(
        (at for at, line in enumerate(lines) if _FORWARD.fullmatch(line.strip())), len(lines)
    )
    history = next((at for at in range(forward) if _starts_history(lines, at)), None)
    if forwarding and history is not None:
        forward, history = history, None
    own = _without_signature(lines[: forward if history is None else history])
    forwarded = lines[forward:] if history is None else []
    if own and forwarded:
        own.append("")
    return "\n".join(own + forwarded).strip()


def _starts_history(lines: list[str], at: int) -> bool:
    line = lines[at].strip()
    if not line or len(line) > _LONGEST_HEADER_LINE or line.startswith(">"):
        return False
    if _ORIGINAL_MESSAGE.fullmatch(line):
        return True
    if set(line) == {"_"} and len(line) >= 20:
        following = _next_text(lines, at + 1)
        return following is not None and _header_name(lines[following]) in _FROM_NAMES
    if _header_name(line) in _FROM_NAMES:
        names = {_header_name(lines[below]) for below in range(at + 1, min(at + 6, len(lines)))}
        return bool(names & _OTHER_HEADER_NAMES)
    if _is_attribution(line):
        following = _next_text(lines, at + 1)
        quoted = following is not None and lines[following].startswith(">")
        return quoted or _opens_attribution(line)
    # Gmail wraps a long attribution: "On ..., Name <address>" then "wrote:"
    if at + 1 == len(lines) or line.endswith((".", "!", "?")):
        return False
    second = lines[at + 1].strip()
    if _is_attribution(second) and _opens_attribution(second):
        return False  # the attribution starts on the next line
    wrapped = f"{line} {second}"
    return _is_attribution(wrapped) and _opens_attribution(wrapped)


def _is_attribution(line: str) -> bool:
    """An "On <date>, <name> wrote:" line in one of its languages, or Gmail's Japanese
    "<date> <name> <address>:"."""
    if len(line) > 2 * _LONGEST_HEADER_LINE or not line.endswith((":", "\uff1a")):
        return False
    if any(word in line for word in _ATTRIBUTION_WORDS):
        return True
    return line.endswith(">:") and re.match(r"\d{4}年", line) is not None


def _opens_attribution(line: str) -> bool:
    """Starts as clients start one ("On", "Am", "Le", ..., or a date) and names a date."""
    return _ATTRIBUTION_START.match(line) is not None and any(char.isdigit() for char in line)


def _header_name(line: str) -> str | None:
    found = _HEADER_NAME.match(line)
    return found.group(1).strip().lower() if found else None


def _next_text(lines: list[str], start: int) -> int | None:
    return next((at for at in range(start, len(lines)) if lines[at].strip()), None)


def _without_signature(lines: list[str]) -> list[str]:
    """`lines` without a signature ("-- " and below, "Sent from my ..."), then without trailing
    quoted, empty or separator lines."""
    for at, line in enumerate(lines):
        if line.strip() == "--" or _SENT_FROM.fullmatch(line.strip()):
            lines = lines[:at]
            break
    while lines and (not lines[-1].strip("_ ") or lines[-1].startswith(">")):
        lines.pop()
    return lines
