"""A real SMTP server (aiosmtpd) in the test's event loop that keeps what it receives, and
answers RCPT and DATA as a test tells it to; and the settings that send mail to it."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from hub.config import Settings


def smtp_settings(settings: Settings, port: int, security: str = "none") -> Settings:
    """``settings`` with the hub's SMTP server at 127.0.0.1:``port``."""
    return settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": security}
    )


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """``gate``, when given, holds every DATA until it is set: a slow server, for tests of
    what happens to mail under way; ``receiving`` counts the mails held or taken so far,
    ``connections`` the connections clients opened."""

    rcpt_reply: str = "250 OK"
    data_reply: str = "250 OK: queued"
    received: list[Received] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None
    gate: asyncio.Event | None = None
    receiving: int = 0
    connections: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.receiving += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.data_reply.startswith("250"):
            raw = envelope.original_content or b""
            assert isinstance(raw, bytes)
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw))
        return self.data_reply

    async def start(
        self,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        idle_seconds: float = 300,
    ) -> None:
        """Listen on a free port. ``idle_seconds``: how long a connection may wait for the
        client's next command before the server says 421 and closes it."""

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            ok = isinstance(data, LoginPassword) and given == credentials
            return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535

        def protocol() -> SMTP:
            self.connections += 1
            return SMTP(
                self,
                hostname="sink.test",
                timeout=idle_seconds,
                tls_context=starttls,
                require_starttls=starttls is not None,
                auth_required=credentials is not None,
                authenticator=authenticate if credentials is not None else None,
            )

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=implicit_tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [  # noqa: S607
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
