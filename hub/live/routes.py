"""The live websocket (see docs/websocket-protocol.md) and its tickets."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Response, WebSocket, status
from pydantic import BaseModel

from hub.auth.dependencies import CurrentViewer
from hub.dependencies import SettingsDep
from hub.errors import Forbidden, problem
from hub.live.connection import LiveConnection, connections
from hub.live.protocol import (
    AUTH_TIMEOUT_SECONDS,
    CREDENTIAL_PARAMETERS,
    SUBPROTOCOL,
    AuthFrame,
    Close,
    FrameError,
    origin_allowed,
    parse_frame,
)
from hub.live.tickets import TICKET_PROTOCOL_PREFIX, burn_ticket, issue_ticket, redeem_ticket
from hub.observability.metrics import LIVE_SOCKETS

router = APIRouter(prefix="/api", tags=["live"])


class TicketOut(BaseModel):
    ticket: str
    expires_in: int
    subprotocol: str


@router.post("/live/tickets", status_code=status.HTTP_201_CREATED)
async def create_ticket(
    viewer: CurrentViewer, settings: SettingsDep, response: Response
) -> TicketOut:
    """A single-use ticket to open the live websocket with, valid for ``HUB_WS_TOKEN_SECONDS``
    and for as long as the session it came from. Send it in the first frame or as the
    ``hub.ticket.<ticket>`` subprotocol — never in the URL."""
    if viewer.kind not in ("citizen", "staff") or viewer.session_id is None:
        raise Forbidden("Live tickets are for logged-in citizens and staff.")
    response.headers["Cache-Control"] = "no-store"
    seconds = settings.ws_token_seconds
    return TicketOut(
        ticket=issue_ticket(settings.secret_key.get_secret_value(), viewer.session_id, seconds),
        expires_in=seconds,
        subprotocol=SUBPROTOCOL,
    )


async def _refuse(websocket: WebSocket, detail: str) -> None:
    """Refuse the handshake with 403 and a problem-details body (where the server can)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            problem(403, "Forbidden", detail, "forbidden", websocket.url.path)
        )
    else:
        await websocket.close(Close.POLICY)


async def _first_frame_ticket(websocket: WebSocket, max_bytes: int) -> str | int:
    """The ticket of the first frame, or the close code to end with."""
    try:
        message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        return Close.AUTH_FAILED
    if message["type"] == "websocket.disconnect":
        return Close.NORMAL
    text = message.get("text")
    if text is None:
        return Close.UNSUPPORTED
    if len(text.encode()) > max_bytes:
        return Close.TOO_BIG
    try:
        frame = parse_frame(text)
    except FrameError:
        return Close.PROTOCOL
    if not isinstance(frame, AuthFrame):
        return Close.PROTOCOL
    return frame.ticket


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    state = websocket.app.state
    settings = state.settings
    secret = settings.secret_key.get_secret_value()
    leaked = [k for k in websocket.query_params if k.lower() in CREDENTIAL_PARAMETERS]
    if leaked:
        for key in leaked:
            for value in websocket.query_params.getlist(key):
                await burn_ticket(secret, value, state.broker)
        await _refuse(
            websocket,
            "Credentials are never taken from the query string (it is logged); the ticket "
            "given there no longer works. Send a new one in the first frame or the "
            "Sec-WebSocket-Protocol header.",
        )
        return
    if not origin_allowed(
        websocket.headers.get("origin"), settings.base_url, settings.allowed_origins
    ):
        await _refuse(websocket, "Pages of this origin may not open the live socket.")
        return
    offered: list[str] = list(websocket.scope.get("subprotocols", []))
    ticket: str | int | None = next(
        (p[len(TICKET_PROTOCOL_PREFIX) :] for p in offered if p.startswith(TICKET_PROTOCOL_PREFIX)),
        None,
    )
    if ticket is not None and SUBPROTOCOL not in offered:
        await _refuse(websocket, f"Offer the subprotocol {SUBPROTOCOL} with the ticket.")
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    if ticket is None:
        ticket = await _first_frame_ticket(websocket, settings.ws_max_frame_bytes)
    if isinstance(ticket, int):
        with contextlib.suppress(Exception):
            await websocket.close(ticket, "authenticate with a ticket first")
        return
    async with state.database.session() as session:
        redeemed = await redeem_ticket(session, secret, ticket, state.broker)
    if redeemed is None:
        await websocket.close(Close.AUTH_FAILED, "ticket not valid, expired or used")
        return
    viewer, session_id = redeemed
    connection = LiveConnection(websocket, state, viewer=viewer, session_id=session_id)
    open_connections = connections(state)
    open_connections.add(connection)
    LIVE_SOCKETS.inc()
    try:
        await connection.serve()
    finally:
        open_connections.discard(connection)
        LIVE_SOCKETS.dec()
