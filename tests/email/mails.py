"""Inbound mails as mail clients write them, for the endpoint and receiver tests."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from channels.email.tokens import reply_address
from hub.models import Case

SECRET_KEY = "test-secret-key-for-reply-tokens-0123456789"
MAIL_SECRET = "provider-shared-secret"
DOMAIN = "reply.hub.test"


def reply_to(case: Case, *, party_id: uuid.UUID | None = None) -> str:
    """The reply address the hub puts on mail about ``case``."""
    return reply_address(SECRET_KEY, DOMAIN, case_id=case.id, party_id=party_id or case.party_id)


def citizen_mail(
    *,
    to: str,
    text: str = "Ik heb de stukken gestuurd.\n\nOp ma 3 mrt 2025 om 10:12 schreef Gemeente "
    "<noreply@hub.test>:\n\n> Wilt u de stukken sturen?\n",
    sender: str = "Jan Jansen <jan@example.nl>",
    subject: str = "Re: Uw vraag",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    authentication: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    mail = EmailMessage()
    if authentication:
        mail["Authentication-Results"] = authentication
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or make_msgid(domain="example.nl")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(text)
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64
