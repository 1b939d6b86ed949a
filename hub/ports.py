"""The channel adapter protocol and the registry the hub core calls adapters through.

The core never imports a channel by name; the wiring (``hub.app``, ``hub.cli``) registers
the adapters that the settings call for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal, Protocol

FinalStatus = Literal["delivered", "permanent-failure", "temporary-failure"]


@dataclass(frozen=True)
class Outbound:
    """A rendered message to deliver: what an adapter needs and nothing from the database."""

    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str
    language: str
    template: str


@dataclass(frozen=True)
class DeliveryReport:
    status: FinalStatus | Literal["sending"]
    provider: str
    provider_id: str | None = None
    detail: str | None = None


class TemporaryFailure(Exception):
    """The provider could not take the message now; the worker retries with backoff."""


class ChannelAdapter(Protocol):
    channel: str

    async def send(self, message: Outbound) -> DeliveryReport:
        """Hand the message to the provider. Raise TemporaryFailure to be retried later."""
        ...


class AdapterRegistry:
    def __init__(self) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}

    def register(self, adapter: ChannelAdapter) -> None:
        self._adapters[adapter.channel] = adapter

    def get(self, channel: str) -> ChannelAdapter | None:
        return self._adapters.get(channel)

    @property
    def channels(self) -> list[str]:
        return sorted(self._adapters)
