"""A party's preferences — the channel for notices, the language, their needs — and the
history of every change: from what to what, by whom, through which channel.

A channel is only accepted when the hub can reach the party on it: a verified mail address
for email, a verified phone number that did not text STOP for SMS, a postal address for
letters. The hub's routing would fall back to another channel anyway, but the citizen must
not be told "SMS" when no number is there to text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.errors import InvalidInput
from hub.messages.service import address_for
from hub.models import Party
from hub.models.party import PreferenceChange

CHANNELS = ("portal", "email", "sms", "letter")
LANGUAGES = ("nl", "en")
# The needs the hub acts on: plain-language texts, and letters only (no mail, texts or
# portal alerts). A need the hub does not act on would be a promise it does not keep.
NEEDS = ("plain_language", "no_digital_contact")

PreferenceSource = Literal["portal", "desk", "api"]
Refusal = Literal[
    "unknown_channel",
    "unknown_language",
    "unknown_need",
    "no_email",
    "no_phone",
    "no_postal_address",
    "digital_channel_without_digital_contact",
]

REFUSALS: dict[Refusal, str] = {
    "unknown_channel": "The channel must be one of portal, email, sms, letter.",
    "unknown_language": "The language must be nl or en.",
    "unknown_need": f"Needs must be among {', '.join(NEEDS)}.",
    "no_email": "Email needs a verified email address; the party has none.",
    "no_phone": "SMS needs a verified mobile number that can receive texts; the party has none.",
    "no_postal_address": "Letters need a postal address; the party has none.",
    "digital_channel_without_digital_contact": (
        "With the need no_digital_contact, notices go by letter: choose letter, or drop that need."
    ),
}
UNREACHABLE: dict[str, Refusal] = {
    "email": "no_email",
    "sms": "no_phone",
    "letter": "no_postal_address",
}


class PreferenceRefused(InvalidInput):
    """A preference the hub cannot honour; ``reason`` says which (the pages translate it)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(REFUSALS[reason], reason=reason)
        self.reason: Refusal = reason


@dataclass(frozen=True)
class ChangedBy:
    """Who made a change: the citizen, their representative, staff, an agency system."""

    kind: str
    id: str | None
    name: str


@dataclass(frozen=True)
class Preferences:
    channel: str
    language: str
    needs: tuple[str, ...]


def preferences_of(party: Party) -> Preferences:
    return Preferences(
        channel=party.preferred_channel,
        language=party.preferred_language,
        needs=tuple(need for need in NEEDS if need in party.needs),
    )


async def check_preferences(session: AsyncSession, party: Party, wanted: Preferences) -> None:
    """Raises :class:`PreferenceRefused` unless the hub can honour ``wanted`` for ``party``."""
    if wanted.channel not in CHANNELS:
        raise PreferenceRefused("unknown_channel")
    if wanted.language not in LANGUAGES:
        raise PreferenceRefused("unknown_language")
    if any(need not in NEEDS for need in wanted.needs):
        raise PreferenceRefused("unknown_need")
    if "no_digital_contact" in wanted.needs and wanted.channel != "letter":
        raise PreferenceRefused("digital_channel_without_digital_contact")
    if wanted.channel == party.preferred_channel:
        return  # kept as it was: a channel set by an agency before is not refused now
    if wanted.channel != "portal" and not await address_for(session, party, wanted.channel):
        raise PreferenceRefused(UNREACHABLE[wanted.channel])


async def change_preferences(
    session: AsyncSession,
    party: Party,
    *,
    channel: str | None = None,
    language: str | None = None,
    needs: list[str] | None = None,
    changed_by: ChangedBy,
    source: PreferenceSource,
) -> list[PreferenceChange]:
    """Set what is given (None: keep it), after :func:`check_preferences`; each preference
    that really changed adds one line to the history, which is returned. Nothing changed,
    nothing recorded."""
    current = preferences_of(party)
    wanted = Preferences(
        channel=channel if channel is not None else current.channel,
        language=language if language is not None else current.language,
        needs=tuple(dict.fromkeys(needs)) if needs is not None else current.needs,
    )
    await check_preferences(session, party, wanted)
    now = utcnow()
    changes: list[PreferenceChange] = []

    def record(preference: str, before: object, after: object) -> None:
        changes.append(
            PreferenceChange(
                party_id=party.id,
                preference=preference,
                before=before,
                after=after,
                changed_by_kind=changed_by.kind,
                changed_by_id=changed_by.id,
                changed_by_name=changed_by.name,
                source=source,
                changed_at=now,
            )
        )

    if wanted.channel != party.preferred_channel:
        record("channel", party.preferred_channel, wanted.channel)
        party.preferred_channel = wanted.channel
    if wanted.language != party.preferred_language:
        record("language", party.preferred_language, wanted.language)
        party.preferred_language = wanted.language
    if set(wanted.needs) != set(party.needs):
        ordered = [need for need in NEEDS if need in wanted.needs]
        record("needs", list(party.needs), ordered)
        party.needs = ordered
    if changes:
        session.add(party)
        session.add_all(changes)
        await session.flush()
    return changes


async def preference_history(
    session: AsyncSession, party_id: uuid.UUID, *, limit: int = 200
) -> list[PreferenceChange]:
    """The party's preference changes, newest first."""
    query = (
        select(PreferenceChange)
        .where(PreferenceChange.party_id == party_id)
        .order_by(col(PreferenceChange.changed_at).desc(), col(PreferenceChange.id).desc())
        .limit(limit)
    )
    return list((await session.exec(query)).all())
