"""A delivery worker process for the crash test: the real worker loop, with an adapter whose
"provider" is a file at the receiving end — one line per message handed over. It sends
``CONCURRENCY`` messages at once.

    python tests/delivery/receiving_worker.py DATABASE_URL RECEIVED_FILE
"""

from __future__ import annotations

import asyncio
import os
import sys

from hub.db import Database
from hub.delivery.worker import deliver_once
from hub.ports import AdapterRegistry, DeliveryReport, Outbound

CONCURRENCY = 4


class ReceivingEnd:
    """Appends the outbox id to a file, as a provider accepting the message would."""

    channel = "email"

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def send(self, message: Outbound) -> DeliveryReport:
        os.write(self._fd, f"{message.id}\n".encode())
        return DeliveryReport(status="delivered", provider="file", provider_id=str(message.id))


async def main(url: str, received: str) -> None:
    database = Database(url)
    adapters = AdapterRegistry()
    adapters.register(ReceivingEnd(received))
    print("ready", flush=True)
    while True:
        sent = await deliver_once(
            database, adapters, limit=25, claim_seconds=1.0, concurrency=CONCURRENCY
        )
        if not sent:
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
