"""The development outbox: in development, mail, texts and letters are not sent anywhere.

The outbox row itself is what the development outbox page shows; this adapter only marks
it delivered, so the hub behaves as it will with a real provider.
"""

from __future__ import annotations

from hub.ports import DeliveryReport, Outbound


class DevOutboxAdapter:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, message: Outbound) -> DeliveryReport:
        return DeliveryReport(
            status="delivered", provider="dev-outbox", provider_id=f"dev-{message.id}"
        )
