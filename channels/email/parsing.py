"""Reading an inbound mail: pure functions from raw MIME to what the hub needs of it.

Nothing here trusts the mail: the From address is kept as the sender's claim, header values
lose control characters, an unknown character set is read with replacement characters, and
HTML is only ever turned into text.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from channels.email.quotes import html_to_text, strip_reply

MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
AUTH_METHODS = ("spf", "dkim", "dmarc")
RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    declared_type: str
    content: bytes


@dataclass(frozen=True)
class DeliveryStatus:
    """A delivery status notification (RFC 3464) about a mail the hub may have sent."""

    original_ids: list[str]
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    diagnostic: str | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    subject: str | None
    sender: str
    sender_name: str | None
    recipients: list[str]
    thread_ids: list[str]
    text: str
    body: str
    authentication: dict[str, str]
    attachments: list[Attachment] = field(default_factory=list)
    # Set when the mail is a delivery status notification (a bounce).
    delivery_status: DeliveryStatus | None = None
    # Who gave the verdict: the authserv-id of the Authentication-Results header used.
    authentication_by: str | None = None
    # An out-of-office or other automatic answer ("auto-replied"), per RFC 3834; else None.
    auto_submitted: str | None = None


def clean_header(value: object, *, limit: int = 300) -> str:
    """A header value on one line, without control characters, at most ``limit`` long."""
    return CONTROL.sub(" ", str(value or "")).strip()[:limit]


def message_ids(value: str) -> list[str]:
    """The ``<id@host>`` message ids in an In-Reply-To or References header, in order."""
    return MESSAGE_ID.findall(value or "")


def authentication_verdict(message: Message) -> dict[str, str]:
    """SPF, DKIM and DMARC results of the topmost Authentication-Results header (the one
    our own boundary server added; lower ones may come from anyone). "none" when absent."""
    verdict = dict.fromkeys(AUTH_METHODS, "none")
    header = message.get("authentication-results")
    if header is None:
        return verdict
    # The first field is the server's id; each further ;-separated field is method=result.
    for resinfo in clean_header(header, limit=4000).split(";")[1:]:
        found = re.match(r"\s*([a-z0-9-]+)\s*=\s*([a-z]+)", resinfo, re.IGNORECASE)
        if found is None:
            continue
        method, result = found.group(1).lower(), found.group(2).lower()
        if method in verdict and verdict[method] == "none":
            verdict[method] = result[:20]
    return verdict


def part_text(part: Message) -> str:
    """A text part's content as a string, whatever its transfer encoding and character set."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _leaves(message: Message) -> Iterator[Message]:
    """The mail's single parts in order. A mail attached to it (message/rfc822) is one part
    of its own: its text is not this mail's body."""
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        yield message
        return
    payload = message.get_payload()
    for part in payload if isinstance(payload, list) else []:
        if isinstance(part, Message):
            yield from _leaves(part)


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment" or part.get_content_type() == "message/rfc822":
        return True
    if part.get_content_maintype() == "text" and not part.get_filename():
        return False
    return part.get_content_maintype() != "multipart"


def _body_parts(message: Message) -> tuple[Message | None, Message | None]:
    """The first plain-text and the first HTML part that are the mail's body, not files."""
    plain: Message | None = None
    html: Message | None = None
    for part in _leaves(message):
        if _is_attachment(part):
            continue
        if part.get_content_type() == "text/plain" and plain is None:
            plain = part
        elif part.get_content_type() == "text/html" and html is None:
            html = part
    return plain, html


def attachments_of(message: Message) -> list[Attachment]:
    found: list[Attachment] = []
    for part in _leaves(message):
        if not _is_attachment(part):
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            forwarded = inner[0] if isinstance(inner, list) and inner else None
            decoded: object = forwarded.as_bytes() if isinstance(forwarded, Message) else b""
        else:
            decoded = part.get_payload(decode=True)
        if not isinstance(decoded, bytes):
            continue
        found.append(
            Attachment(
                filename=clean_header(_decoded(part.get_filename()), limit=255) or None,
                declared_type=part.get_content_type(),
                content=decoded,
            )
        )
    return found


def read_texts(message: Message) -> tuple[str, str]:
    """The mail's full text and the reply with quotes and signature removed. An HTML-only
    mail is converted to text; its quote element is cut before the text rules apply."""
    plain, html = _body_parts(message)
    text = part_text(plain) if plain is not None else ""
    if text.strip() or html is None:
        # Some clients send an empty text part beside the HTML one: then the HTML counts.
        return text.strip(), strip_reply(text)
    markup = part_text(html)
    text = html_to_text(markup)
    return text, strip_reply(html_to_text(markup, cut_at_quote=True) or text)


def unreadable_mail(raw: bytes) -> ParsedMail:
    """What is left to say of a mail the parser gave up on: it goes to review as it is."""
    return ParsedMail(
        message_id=f"<sha256-{hashlib.sha256(raw).hexdigest()}@hub.invalid>",
        subject=None,
        sender="",
        sender_name=None,
        recipients=[],
        thread_ids=[],
        text="",
        body="(This mail could not be read; the raw message is attached.)",
        authentication=dict.fromkeys(AUTH_METHODS, "none"),
    )


def parse_mail(raw: bytes) -> ParsedMail:
    """What the hub reads from a raw MIME message. A mail without a Message-ID gets one made
    from its content, so that posting the same mail twice still applies it once."""
    message = email.message_from_bytes(raw, _class=EmailMessage, policy=email.policy.compat32)
    found = message_ids(clean_header(message.get("message-id")))
    message_id = found[0] if found else f"<sha256-{hashlib.sha256(raw).hexdigest()}@hub.invalid>"
    sender_name, sender = parseaddr(clean_header(message.get("from"), limit=1000))
    recipients = [
        address
        for _, address in getaddresses(
            [
                clean_header(value, limit=4000)
                for h in RECIPIENT_HEADERS
                for value in message.get_all(h, [])
            ]
        )
        if address
    ]
    thread_ids = message_ids(clean_header(message.get("in-reply-to"), limit=1000))
    for reference in message_ids(clean_header(message.get("references"), limit=10000)):
        if reference not in thread_ids:
            thread_ids.append(reference)
    text, body = read_texts(message)
    subject = clean_header(_decoded(message.get("subject"))) or None
    return ParsedMail(
        message_id=message_id,
        subject=subject,
        sender=sender.lower()[:320],
        sender_name=clean_header(_decoded(sender_name), limit=200) or None,
        recipients=recipients,
        thread_ids=thread_ids[:50],
        text=text,
        body=body,
        authentication=authentication_verdict(message),
        attachments=attachments_of(message),
        auto_submitted=automatic(message),
        delivery_status=delivery_status_of(message),
        authentication_by=clean_header(message.get("authentication-results"), limit=4000)
        .split(";")[0]
        .strip()[:100]
        or None,
    )


def delivery_status_of(message: Message) -> DeliveryStatus | None:
    """The first recipient's status in a ``multipart/report; report-type=delivery-status``
    mail, with the Message-ID of the mail it reports on; None for any other mail."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    parts = message.get_payload()
    if not isinstance(parts, list):
        return None
    action = status = ""
    diagnostic: str | None = None
    original_ids: list[str] = []
    for part in parts:
        if not isinstance(part, Message):
            continue
        kind = part.get_content_type()
        if kind == "message/delivery-status" and not action:
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if isinstance(block, Message) and block.get("action"):
                    action = clean_header(block.get("action"), limit=20).lower()
                    status = clean_header(block.get("status"), limit=20)
                    diagnostic = clean_header(block.get("diagnostic-code"), limit=300) or None
                    break
        elif kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_ids += message_ids(clean_header(inner[0].get("message-id")))
        elif kind == "text/rfc822-headers":
            headers = email.message_from_string(part_text(part), policy=email.policy.compat32)
            original_ids += message_ids(clean_header(headers.get("message-id")))
    if not action or not original_ids:
        return None
    return DeliveryStatus(original_ids, action, status, diagnostic)


def automatic(message: Message) -> str | None:
    """Why the mail looks sent by a machine (RFC 3834's Auto-Submitted, or the headers of
    common out-of-office responders); None for a mail a person sent."""
    auto = clean_header(message.get("auto-submitted"), limit=40).lower()
    if auto and auto != "no":
        return auto.split(";")[0].strip()
    precedence = clean_header(message.get("precedence"), limit=40).lower()
    if precedence in ("auto_reply", "bulk", "junk"):
        return precedence
    if message.get("x-autoreply") or message.get("x-autorespond"):
        return "auto-replied"
    return None


def _decoded(value: object) -> str:
    """A header decoded from RFC 2047 encoded words ("=?utf-8?q?…?=")."""
    if value is None:
        return ""
    try:
        parts = email.header.decode_header(str(value))
    except (ValueError, LookupError):
        return str(value)
    decoded: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            try:
                decoded.append(chunk.decode(charset or "ascii", errors="replace"))
            except LookupError:
                decoded.append(chunk.decode("utf-8", errors="replace"))
        else:
            decoded.append(chunk)
    return "".join(decoded)
