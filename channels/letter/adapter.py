"""The letter adapter: an outbox letter becomes a print-ready PDF in the print queue.

"Sent" for a letter means queued for printing; the delivery stays ``sending`` until the
print-and-post provider or the mail room reports it posted (``channels.letter.service``).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from channels.letter.compose import compose_letter
from channels.letter.layout import render_pdf
from channels.letter.service import hold_for_print_queue, print_job_for_outbox, queue_letter
from hub.clock import local_today
from hub.config import Settings
from hub.db import Database
from hub.models import PrintJob
from hub.ports import DeliveryReport, Outbound

PROVIDER = "print-queue"


def report_for(job: PrintJob) -> DeliveryReport:
    """A posted letter is delivered; until then the provider has it (``sending``)."""
    status: Literal["delivered", "sending"] = "delivered" if job.status == "posted" else "sending"
    return DeliveryReport(status=status, provider=PROVIDER, provider_id=str(job.id))


class LetterAdapter:
    channel = "letter"

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database

    async def send(self, message: Outbound) -> DeliveryReport:
        """Render the letter and queue it for printing, once per outbox row: sending the
        same row again (a retry after a crash) returns the job made the first time."""
        if not message.recipient.strip():
            return DeliveryReport(
                status="permanent-failure", provider=PROVIDER, detail="no postal address"
            )
        async with self.database.session() as session:
            existing = await print_job_for_outbox(session, message.id)
            if existing is not None:
                await hold_for_print_queue(session, message.id)
        if existing is not None:
            return report_for(existing)
        letter = compose_letter(
            message,
            today=local_today(self.settings.timezone),
            base_url=self.settings.base_url,
        )
        # Rendering takes a moment of CPU; keep it off the event loop and out of any session.
        pdf = await asyncio.to_thread(render_pdf, letter)
        async with self.database.session() as session:
            job = await queue_letter(
                session, message=message, pdf=pdf, store=self.settings.document_store
            )
            await hold_for_print_queue(session, message.id)
        return report_for(job)
