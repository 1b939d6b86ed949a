"""Outbound mail over SMTP (aiosmtplib): a text and an HTML part rendered from the channel's
templates, the hub's own Message-ID, and the case's reply address as Reply-To.

The Message-ID is made from the outbox row's id, so a retry after a crash sends the same id
(a mail client shows one mail) and the worker records it as the provider id, which is how a
reply's In-Reply-To finds its case. Nothing a citizen or staff member typed reaches a header
with a line break in it.
"""

from __future__ import annotations

import email.errors
import email.policy
import logging
import re
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape

from channels.email.tokens import reply_address
from hub.config import Settings
from hub.ports import DeliveryReport, Outbound, TemporaryFailure

log = logging.getLogger("channels.email")

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("nl", "en")
GENERIC_TEMPLATE = "notice"
MESSAGE_ID = re.compile(r"^<[^<>\s]{1,250}>$")
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


def one_line(value: object, *, limit: int = 300) -> str:
    """A header value: control characters and line breaks become a space, so input can
    never start a header of its own."""
    return " ".join(LINE_BREAKS.sub(" ", str(value or "")).split())[:limit]


def paragraphs(text: str) -> list[list[str]]:
    """Paragraphs (split on blank lines) of lines, for templates to keep the line breaks."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return [block.split("\n") for block in blocks if block.strip()]


def template_environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # HTML templates escape everything they show; the text part is plain text.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        keep_trailing_newline=True,
    )
    environment.filters["paragraphs"] = paragraphs
    return environment


ENVIRONMENT = template_environment()


def render(template: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """The text and HTML parts of ``template`` in ``language`` (nl when not available); a
    template name without templates of its own is rendered with the generic notice."""
    language = language if language in LANGUAGES else "nl"
    parts: list[str] = []
    for kind in ("txt", "html"):
        try:
            chosen = ENVIRONMENT.get_template(f"{template}.{language}.{kind}.j2")
        except TemplateNotFound:
            chosen = ENVIRONMENT.get_template(f"{GENERIC_TEMPLATE}.{language}.{kind}.j2")
        parts.append(chosen.render(**context, language=language).strip() + "\n")
    return parts[0], parts[1]


def address_of(mailbox: str) -> str | None:
    """The bare address of ``mailbox`` when it is one well-formed address, else None."""
    if LINE_BREAKS.search(mailbox):
        return None
    _, address = parseaddr(mailbox)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return None
    return address


class MailComposer:
    """Writes an outbound message as a MIME mail: text and HTML parts from the templates, our
    own Message-ID, and the case's signed reply address as Reply-To."""

    def __init__(self, settings: Settings) -> None:
        sender = address_of(settings.mail_from)
        if sender is None:
            raise ValueError("HUB_MAIL_FROM is not a mail address")
        self.settings = settings
        self.sender = sender
        self.domain = sender.rpartition("@")[2]

    def message_id(self, message: Outbound) -> str:
        return f"<{message.id.hex}@{self.domain}>"

    def compose(self, message: Outbound) -> EmailMessage:
        """The MIME message for ``message``; raises ValueError for an unusable recipient."""
        recipient = address_of(message.recipient)
        if recipient is None:
            raise ValueError("the recipient is not a mail address")
        context: dict[str, Any] = {
            key: value
            for key, value in message.context.items()
            if key in ("case_reference", "case_title", "agency_name", "party_name", "author_name")
        }
        case_path = message.context.get("case_path")
        if isinstance(case_path, str) and case_path.startswith("/"):
            context["portal_url"] = self.settings.base_url.rstrip("/") + case_path
        context["body"] = message.body
        context["subject"] = one_line(message.subject)
        text, html = render(message.template, message.language, context)

        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = one_line(self.settings.mail_from, limit=500)
        name = one_line(message.context.get("party_name"), limit=200)
        local, _, domain = recipient.rpartition("@")
        mail["To"] = Address(display_name=name, username=local, domain=domain)
        mail["Subject"] = one_line(message.subject)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = self.message_id(message)
        if message.case_id is not None and message.party_id is not None:
            mail["Reply-To"] = reply_address(
                self.settings.secret_key.get_secret_value(),
                self.settings.inbound_mail_domain,
                case_id=message.case_id,
                party_id=message.party_id,
            )
        answered = one_line(message.context.get("in_reply_to"))
        if MESSAGE_ID.match(answered):
            mail["In-Reply-To"] = answered
            mail["References"] = answered
        mail["Content-Language"] = message.language if message.language in LANGUAGES else "nl"
        if message.template != "reply":
            # A notice is sent by the hub, not a person: responders must not answer it
            # (RFC 3834), which keeps out-of-office loops off the case.
            mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(text)
        mail.add_alternative(html, subtype="html")
        return mail

    def composed(self, message: Outbound, provider: str) -> EmailMessage | DeliveryReport:
        """The mail, or the permanent failure to report when it cannot be written."""
        try:
            mail = self.compose(message)
            mail.as_bytes()  # what cannot be written as a mail never will be
        except (ValueError, TypeError, email.errors.MessageError) as problem:
            return DeliveryReport(
                status="permanent-failure",
                provider=provider,
                detail=f"cannot be written as a mail: {one_line(problem, limit=200)}",
            )
        return mail


class DevMailAdapter(MailComposer):
    """Development without an SMTP server: the mail is written exactly as it would be sent,
    as ``<outbox id>.eml`` in the development mail folder, which the development outbox
    page links to — reply address and all, so a developer can answer it."""

    channel = "email"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.folder = settings.data_dir / "dev-mail"

    async def send(self, message: Outbound) -> DeliveryReport:
        mail = self.composed(message, "dev-outbox")
        if isinstance(mail, DeliveryReport):
            return mail
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{message.id}.eml").write_bytes(mail.as_bytes())
        return DeliveryReport(
            status="delivered", provider="dev-outbox", provider_id=self.message_id(message)
        )


class SmtpAdapter(MailComposer):
    """Sends mail through the SMTP server in the settings.

    ``tls_context`` replaces the default certificate checks (a test's self-signed server,
    a private CA); by default the server's certificate is verified against the system's.
    """

    channel = "email"

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpAdapter needs HUB_SMTP_HOST")
        super().__init__(settings)
        self.tls_context = tls_context

    async def send(self, message: Outbound) -> DeliveryReport:
        mail = self.composed(message, "smtp")
        if isinstance(mail, DeliveryReport):
            return mail
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                mail,
                sender=self.sender,
                recipients=[address_of(message.recipient) or message.recipient],
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                tls_context=self.tls_context,
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [r.code for r in refused.recipients]
            detail = "; ".join(
                f"{r.code} {one_line(r.message, limit=150)}" for r in refused.recipients
            )
            if codes and all(500 <= code < 600 for code in codes):
                return DeliveryReport(status="permanent-failure", provider="smtp", detail=detail)
            raise TemporaryFailure(f"recipient deferred: {detail}") from refused
        except aiosmtplib.SMTPDataError as refused:
            detail = f"{refused.code} {one_line(refused.message, limit=200)}"
            if 500 <= refused.code < 600:
                return DeliveryReport(status="permanent-failure", provider="smtp", detail=detail)
            raise TemporaryFailure(f"message deferred: {detail}") from refused
        except aiosmtplib.SMTPResponseException as failure:
            # The server refused us rather than the recipient (sender, login, greeting):
            # a matter for the operator, so the worker keeps trying within its budget.
            raise TemporaryFailure(
                f"server said {failure.code} {one_line(failure.message, limit=200)}"
            ) from failure
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
            raise TemporaryFailure(f"cannot reach the mail server: {type(failure).__name__}") from (
                failure
            )
        log.info("mail for outbox %s handed to %s", message.id, settings.smtp_host)
        return DeliveryReport(
            status="delivered", provider="smtp", provider_id=self.message_id(message)
        )
