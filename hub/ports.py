"""The channel adapter protocol and the registry the hub core calls adapters through.

The core never imports a channel by name; the wiring (``hub.app``, ``hub.cli``) registers
the adapters that the settings call for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FinalStatus = Literal["delivered", "permanent-failure", "temporary-failure"]


@dataclass(frozen=True)
class Outbound:
    """A message to deliver: what an adapter needs and nothing from the database.

    ``body`` is the plain text; an adapter renders it into its channel's form (a mail's text
    and HTML parts, a letter's PDF) with the template named ``template`` in ``language``.
    ``context`` carries what those templates may show: ``case_reference``, ``case_title``,
    ``agency_name``, ``party_name``, ``portal_url``, and channel details such as
    ``in_reply_to`` (a mail's Message-ID).
    """

    id: uuid.UUID
    channel: str
    recipient: str
    subject: str
    body: str
    language: str
    template: str
    case_id: uuid.UUID | None = None
    party_id: uuid.UUID | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryReport:
    """What the provider said. ``sending``: accepted, the final status comes later (a
    Twilio status callback; a letter collected and posted) — such a report must carry the
    ``provider_id`` that the later status will name."""

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
