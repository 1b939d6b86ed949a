"""Acting for someone: a representative who switched to a party they represent.

The browser remembers whom with the ``hub_acting_for`` cookie (the party's id and the login
session's, so that it ends with the session; HttpOnly, SameSite=Lax). The cookie grants
nothing: every page reads the mandates afresh, so a mandate revoked or ended stops the
acting on the next page — and every case page and upload checks the mandate itself, cookie
or not.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer
from hub.models import Party
from hub.parties.mandates import acting_for

ACTING_COOKIE = "hub_acting_for"


async def acting_for_page(request: Request, session: AsyncSession, viewer: Viewer) -> Party | None:
    """The party the logged-in citizen acts for on this page, if they chose one and a mandate
    for that party is in force now."""
    raw = request.cookies.get(ACTING_COOKIE, "")
    if not raw or viewer.kind != "citizen" or viewer.party_id is None:
        return None
    party, _, login = raw.partition(".")
    if login != str(viewer.session_id):
        return None  # chosen in a session that has ended: the next login starts afresh
    try:
        party_id = uuid.UUID(party)
    except ValueError:
        return None
    found = await acting_for(session, representative_id=viewer.party_id, party_id=party_id)
    return found[0] if found else None


def acting_cookie(party_id: uuid.UUID, viewer: Viewer) -> str:
    """The cookie's value for acting for ``party_id`` in the viewer's login session."""
    return f"{party_id}.{viewer.session_id}"
