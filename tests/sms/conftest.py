"""Fixtures for the SMS channel: the local Twilio stand-in, settings that point the hub at
it, and webhooks posted signed as Twilio signs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hub.config import Settings
from tests.fakes.twilio import TwilioStandIn

# The hub's public URL: Twilio signs webhooks for this, whatever host the request reaches.
PUBLIC_URL = "https://hub.example.nl"


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def settings(tmp_path: Path, twilio: TwilioStandIn) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        base_url=PUBLIC_URL,
        **twilio.settings(),
    )


async def post_webhook(
    client: httpx.AsyncClient,
    twilio: TwilioStandIn,
    path: str,
    form: dict[str, str],
    *,
    signed_for: str | None = None,
) -> httpx.Response:
    """POST ``form`` to the hub's ``path`` as Twilio does, signed for the public URL (or for
    ``signed_for``)."""
    return await twilio.post(client, path, form, public_url=PUBLIC_URL, signed_for=signed_for)
