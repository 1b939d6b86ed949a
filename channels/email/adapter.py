"""Outbound mail over SMTP (aiosmtplib): a text and an HTML part rendered from the channel's
templates, the hub's own Message-ID, and the case's reply address as Reply-To.

The Message-ID is made from the outbox row's id, so a retry after a crash sends the same id
(a mail client shows one mail) and the worker records it as the provider id, which is how a
reply's In-Reply-To finds its case. Nothing a citizen or staff member typed reaches a header
with a line break in it.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import functools
import logging
import re
import ssl
import time
import uuid
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, parseaddr, quote
from pathlib import Path
from typing import Any

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, Template, TemplateNotFound, select_autoescape

from channels.email.tokens import reply_address
from hub.config import Settings
from hub.ports import DeliveryReport, Outbound, TemporaryFailure

log = logging.getLogger("channels.email")

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("nl", "en")
GENERIC_TEMPLATE = "notice"
MESSAGE_ID = re.compile(r"^<[^<>\s]{1,250}>$")
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
SPECIALS = re.compile(r'[][\\()<>@,:;".]')
# A plain address: dot-atom local part, and a domain of dot-separated labels.
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
BARE_ADDRESS = re.compile(rf"{ATOM}(?:\.{ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Some servers take only so many mails on one connection; a fresh one now and then is cheap.
MAILS_PER_CONNECTION = 100
# Mails written ahead of their send (SmtpAdapter.prepare) and kept until then, at most.
PREPARED_AT_MOST = 4096
# An address SMTP takes as it is between < and >: printable ASCII, no space, < or >.
PLAIN_PATH = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")


_date_of_second: tuple[int, str] = (0, "")


def mail_date() -> str:
    """Now as a Date header (RFC 5322, GMT), made once a second: ``formatdate`` costs as much
    as a tenth of writing the whole mail."""
    global _date_of_second  # a cache of one value
    second = int(time.time())
    if _date_of_second[0] != second:
        _date_of_second = (second, formatdate(second, usegmt=True))
    return _date_of_second[1]


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
        # The templates ship with the code: no file system check before every mail.
        auto_reload=False,
    )
    environment.filters["paragraphs"] = paragraphs
    return environment


ENVIRONMENT = template_environment()


def render(template: str, language: str, context: dict[str, Any]) -> tuple[str, str]:
    """The text and HTML parts of ``template`` in ``language`` (nl when not available); a
    template name without templates of its own is rendered with the generic notice."""
    language = language if language in LANGUAGES else "nl"
    text, html = (
        chosen.render(**context, language=language).strip() + "\n"
        for chosen in templates_for(template, language)
    )
    return text, html


@functools.lru_cache(maxsize=256)
def templates_for(template: str, language: str) -> tuple[Template, Template]:
    """The text and HTML templates that render ``template`` in ``language``."""
    chosen: list[Template] = []
    for kind in ("txt", "html"):
        try:
            chosen.append(ENVIRONMENT.get_template(f"{template}.{language}.{kind}.j2"))
        except TemplateNotFound:
            chosen.append(ENVIRONMENT.get_template(f"{GENERIC_TEMPLATE}.{language}.{kind}.j2"))
    return chosen[0], chosen[1]


def address_of(mailbox: str) -> str | None:
    """The bare address of ``mailbox`` when it is one well-formed address, else None."""
    if BARE_ADDRESS.fullmatch(mailbox):
        return mailbox  # the usual case, without the cost of parseaddr (about 0.1 ms)
    if LINE_BREAKS.search(mailbox):
        return None
    _, address = parseaddr(mailbox)
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        return None
    return address


@dataclass(frozen=True)
class Mail:
    """A message written out for SMTP: the envelope recipient and the bytes to send."""

    recipient: str
    data: bytes


def envelope_address(address: str) -> str:
    """``address`` as SMTP without SMTPUTF8 carries it: an internationalised domain in its
    ASCII (IDNA) form; raises ValueError for a local part that is not ASCII."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise ValueError("the mailbox name is not ASCII")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def header(name: str, value: str) -> bytes:
    """One header field: plain ASCII as it is, anything else as RFC 2047 encoded words,
    folded to lines of at most 78 characters."""
    # Text that looks like an encoded word is encoded itself, so that a mail program decodes
    # it to what it says, never to the line breaks it may hide.
    plain = value.isascii() and "=?" not in value
    if plain and (len(name) + len(value) <= 76 or " " not in value):
        # A word too long for a line is not folded before it: it stays as it is.
        return f"{name}: {value}\r\n".encode("ascii")
    charset = "us-ascii" if plain else "utf-8"
    folded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def mailbox(name: str, address: str, field: str) -> bytes:
    """A From or To field: the display name (quoted or encoded as it needs) and the address."""
    if not name:
        return header(field, address)
    if name.isascii() and "=?" not in name:
        shown = f'"{quote(name)}"' if SPECIALS.search(name) else name
    else:
        shown = Header(name, "utf-8", header_name=field).encode(linesep="\r\n")
    return f"{field}: {shown} <{address}>\r\n".encode("ascii")


def quoted_printable(text: str) -> bytes:
    """A text part's body: UTF-8, quoted-printable, CRLF line ends. Quoted-printable never
    writes ``=_``, which is why the part boundaries start with it."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(lines, istext=True).replace(b"\n", b"\r\n")


class MailComposer:
    """Writes an outbound message as a MIME mail: text and HTML parts from the templates, our
    own Message-ID, and the case's signed reply address as Reply-To.

    The mail is written out directly rather than through ``email.message.EmailMessage``,
    whose header objects cost about two milliseconds a mail — more than sending it.
    Every value that reaches a header has passed ``one_line``; what is not ASCII is
    encoded (RFC 2047), and the parts are quoted-printable UTF-8.
    """

    def __init__(self, settings: Settings) -> None:
        sender = address_of(settings.mail_from)
        if sender is None:
            raise ValueError("HUB_MAIL_FROM is not a mail address")
        self.settings = settings
        self.sender = sender
        self.domain = sender.rpartition("@")[2]
        name, _ = parseaddr(one_line(settings.mail_from, limit=500))
        self.from_field = mailbox(one_line(name, limit=200), envelope_address(sender), "From")

    def message_id(self, message: Outbound) -> str:
        return f"<{message.id.hex}@{self.domain}>"

    def compose(self, message: Outbound) -> Mail:
        """The mail for ``message``; raises ValueError for an unusable recipient."""
        address = address_of(message.recipient)
        if address is None:
            raise ValueError("the recipient is not a mail address")
        recipient = envelope_address(address)
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

        fields = [
            self.from_field,
            mailbox(one_line(message.context.get("party_name"), limit=200), recipient, "To"),
            header("Subject", one_line(message.subject)),
            header("Date", mail_date()),
            header("Message-ID", self.message_id(message)),
        ]
        if message.case_id is not None and message.party_id is not None:
            reply_to = reply_address(
                self.settings.secret_key.get_secret_value(),
                self.settings.inbound_mail_domain,
                case_id=message.case_id,
                party_id=message.party_id,
            )
            fields.append(header("Reply-To", reply_to))
        answered = one_line(message.context.get("in_reply_to"))
        if MESSAGE_ID.match(answered) and answered.isascii():
            fields += [header("In-Reply-To", answered), header("References", answered)]
        language = message.language if message.language in LANGUAGES else "nl"
        fields.append(header("Content-Language", language))
        if message.template != "reply":
            # A notice is sent by the hub, not a person: responders must not answer it
            # (RFC 3834), which keeps out-of-office loops off the case.
            fields.append(header("Auto-Submitted", "auto-generated"))
        # Quoted-printable never writes "=_", so no part can hold the boundary; the message's
        # own id makes it unique.
        boundary = f"=_{message.id.hex}".encode("ascii")
        fields.append(b"MIME-Version: 1.0\r\n")
        fields.append(b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n')
        body = [b"\r\n"]
        for subtype, content in (("plain", text), ("html", html)):
            body += [
                b"--" + boundary + b"\r\n",
                f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii"),
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                quoted_printable(content),
            ]
        body.append(b"--" + boundary + b"--\r\n")
        return Mail(recipient=recipient, data=b"".join(fields + body))

    def composed(self, message: Outbound, provider: str) -> Mail | DeliveryReport:
        """The mail, or the permanent failure to report when it cannot be written."""
        try:
            return self.compose(message)
        except (ValueError, TypeError) as problem:
            return DeliveryReport(
                status="permanent-failure",
                provider=provider,
                detail=f"cannot be written as a mail: {one_line(problem, limit=200)}",
            )


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
        (self.folder / f"{message.id}.eml").write_bytes(mail.data)
        return DeliveryReport(
            status="delivered", provider="dev-outbox", provider_id=self.message_id(message)
        )


@dataclass
class Connection:
    """An open SMTP session and how many mails it has carried."""

    client: aiosmtplib.SMTP
    sent: int = 0


class SmtpAdapter(MailComposer):
    """Sends mail through the SMTP server in the settings.

    Connections are kept open between mails and shared out one mail at a time, so that
    several mails can go at once without each paying for a connection, TLS and a login.
    A connection carries at most ``MAILS_PER_CONNECTION`` mails; one the server has let go
    while it was idle is replaced before anything is sent on it. :meth:`close` ends the
    idle ones (the delivery worker calls it when the outbox is empty and when it stops).

    ``tls_context`` replaces the default certificate checks (a test's self-signed server,
    a private CA); by default the server's certificate is verified against the system's.
    """

    channel = "email"

    def __init__(self, settings: Settings, *, tls_context: ssl.SSLContext | None = None) -> None:
        if not settings.smtp_host:
            raise ValueError("SmtpAdapter needs HUB_SMTP_HOST")
        super().__init__(settings)
        self.tls_context = tls_context
        self._idle: list[Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prepared: dict[uuid.UUID, Mail | DeliveryReport] = {}

    def prepare(self, message: Outbound) -> None:
        """Write ``message``'s mail now, for :meth:`send` to take: the delivery worker does
        this while it waits for the server, so that writing mails is not in the way of
        sending them. Mails prepared and never sent are forgotten past a few thousand."""
        if len(self._prepared) >= PREPARED_AT_MOST:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[message.id] = self.composed(message, "smtp")

    async def send(self, message: Outbound) -> DeliveryReport:
        mail = self._prepared.pop(message.id, None) or self.composed(message, "smtp")
        if isinstance(mail, DeliveryReport):
            return mail
        try:
            # One deadline for the whole transaction rather than one per command: a timer
            # a mail instead of four.
            async with asyncio.timeout(self.settings.smtp_timeout_seconds):
                await self._transfer(mail)
        except aiosmtplib.SMTPRecipientRefused as refused:
            detail = f"{refused.code} {one_line(refused.message, limit=200)}"
            if 500 <= refused.code < 600:
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
        log.info("mail for outbox %s handed to %s", message.id, self.settings.smtp_host)
        return DeliveryReport(
            status="delivered", provider="smtp", provider_id=self.message_id(message)
        )

    async def _transfer(self, mail: Mail) -> None:
        """One SMTP transaction on a pooled connection. A connection goes back to the pool
        only after a complete transaction or a refusal the server reset from; after anything
        else (a timeout, a cut connection, a cancelled send) its state is unknown and it is
        closed."""
        connection, reused = await self._checkout()
        reusable = False
        try:
            try:
                await self._begin(connection.client, mail)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as gone:
                # An idle connection the server has closed, or one it will take no more
                # mail on (421): nothing was sent, so a fresh connection may try again.
                if not reused or (
                    isinstance(gone, aiosmtplib.SMTPResponseException) and gone.code != 421
                ):
                    raise
                connection.client.close()
                connection = await self._connect()
                await self._begin(connection.client, mail)
            client = connection.client
            try:
                await self._recipient(client, mail.recipient)
                await client.data(mail.data, timeout=None)
            except aiosmtplib.SMTPResponseException:
                # The server refused this mail, not the session: reset it and keep it.
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.rset(timeout=None)
                    reusable = True
                raise
            connection.sent += 1
            reusable = True
        finally:
            await self._checkin(connection, reusable=reusable)

    async def _begin(self, client: aiosmtplib.SMTP, mail: Mail) -> None:
        if client.is_ehlo_or_helo_needed:
            try:
                await client.ehlo(timeout=None)
            except aiosmtplib.SMTPHeloError:
                await client.helo(timeout=None)
        options = [f"SIZE={len(mail.data)}"] if client.supports_extension("size") else []
        if not PLAIN_PATH.fullmatch(self.sender):
            await client.mail(self.sender, options=options, timeout=None)
            return
        # aiosmtplib would parse the address again (parseaddr: a tenth of a millisecond);
        # this one was checked when the adapter was made.
        response = await client.execute_command(
            b"MAIL",
            f"FROM:<{self.sender}>".encode("ascii"),
            *(o.encode() for o in options),
            timeout=None,
        )
        if response.code != 250:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, self.sender)

    async def _recipient(self, client: aiosmtplib.SMTP, recipient: str) -> None:
        if not PLAIN_PATH.fullmatch(recipient):
            await client.rcpt(recipient, timeout=None)
            return
        response = await client.execute_command(
            b"RCPT", f"TO:<{recipient}>".encode("ascii"), timeout=None
        )
        if response.code not in (250, 251):
            raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)

    async def _checkout(self) -> tuple[Connection, bool]:
        """An idle connection that is still open (True), else a new one (False)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Connections belong to the event loop that opened them.
            self._idle = []
            self._loop = loop
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected:
                return connection, True
            connection.client.close()
        return await self._connect(), False

    async def _connect(self) -> Connection:
        settings = self.settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            tls_context=self.tls_context,
            timeout=settings.smtp_timeout_seconds,
        )
        await client.connect()
        return Connection(client)

    async def _checkin(self, connection: Connection, *, reusable: bool) -> None:
        client = connection.client
        if not (reusable and client.is_connected):
            client.close()
        elif connection.sent >= MAILS_PER_CONNECTION:
            await self._quit(connection)
        else:
            self._idle.append(connection)

    async def _quit(self, connection: Connection) -> None:
        try:
            await connection.client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            connection.client.close()

    async def close(self) -> None:
        """End the idle connections (QUIT, then close)."""
        idle, self._idle = self._idle, []
        self._prepared.clear()
        if idle and self._loop is asyncio.get_running_loop():
            await asyncio.gather(*(self._quit(connection) for connection in idle))
