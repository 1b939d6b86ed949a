"""The built-in SMTP receiver (`hub mail-receiver`), on aiosmtpd.

It takes mail only for HUB_INBOUND_MAIL_DOMAIN (any other recipient: 550 at RCPT, so it is
never an open relay), refuses mail over HUB_MAX_MAIL_BYTES (552), and answers 250 only once
the mail is stored on its case or in the review queue. When storing fails it answers 451, so
the sending server keeps the mail and tries again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from channels.email.inbound import receive_mail
from hub.config import Settings
from hub.db import Database
from hub.events.fanout import Broker

log = logging.getLogger("channels.email.receiver")

MAX_RECIPIENTS = 20


class InboundMailHandler:
    """aiosmtpd handler: checks recipients, stores accepted mail before saying 250."""

    def __init__(self, settings: Settings, database: Database, broker: Broker | None) -> None:
        self.settings = settings
        self.database = database
        self.broker = broker

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        _, at, domain = address.rpartition("@")
        if not at or domain.lower().rstrip(".") != self.settings.inbound_mail_domain.lower():
            return "550 5.7.1 This server only takes mail for its own reply addresses"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        if len(raw) > self.settings.max_mail_bytes:
            return "552 5.3.4 Message too big"
        try:
            async with self.database.session() as db:
                outcome = await receive_mail(
                    db,
                    raw=raw,
                    settings=self.settings,
                    via="smtp",
                    envelope_recipients=list(envelope.rcpt_tos),
                    broker=self.broker,
                )
        except Exception as failure:
            # The class only: a database error's text can quote the mail it failed to store.
            log.error(
                "an inbound mail could not be stored (%s); the sender will retry",
                type(failure).__name__,
            )
            return "451 4.3.0 Could not store the message now; try again later"
        log.info("inbound mail stored: %s", outcome.outcome)
        return "250 2.0.0 OK: stored"


async def start_receiver(
    settings: Settings,
    database: Database,
    *,
    broker: Broker | None = None,
    host: str | None = None,
    port: int | None = None,
) -> asyncio.Server:
    """Listen for SMTP on ``host:port`` (the settings' by default) in the running loop."""
    handler = InboundMailHandler(settings, database, broker)

    def protocol() -> Any:
        return SMTP(
            handler,
            data_size_limit=settings.max_mail_bytes,
            hostname=settings.inbound_mail_domain,
            ident="Interaction Hub mail receiver",
        )

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        protocol,
        host=host if host is not None else settings.mail_receiver_host,
        port=port if port is not None else settings.mail_receiver_port,
    )


async def serve(settings: Settings) -> None:
    """Run the receiver until SIGINT or SIGTERM."""
    database = Database(settings.database_url)
    broker: Broker | None = None
    if settings.redis_url:
        # Live views in the `hub serve` processes see an inbound mail at once.
        from hub.events.redis_broker import RedisBroker

        broker = await RedisBroker.connect(settings.redis_url)
    server = await start_receiver(settings, database, broker=broker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"Mail receiver listening on {settings.mail_receiver_host}:{settings.mail_receiver_port} "
        f"for mail to {settings.inbound_mail_domain} (up to {settings.max_mail_bytes:,} bytes)",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        if broker is not None:
            await broker.close()
        await database.dispose()


def run_receiver(settings: Settings) -> None:
    asyncio.run(serve(settings))
