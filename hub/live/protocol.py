"""The frames of the live websocket (docs/websocket-protocol.md), without any I/O: parsing
what a client sends, deciding whether a position can be resumed, checking the origin, and
counting frames against the rate limit."""

from __future__ import annotations

import collections
import json
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from hub.events.fanout import LiveEvent

SUBPROTOCOL = "hub.live.v1"
# More than this many events after a client's position: it reloads the timeline over REST.
REPLAY_WINDOW = 1000
AUTH_TIMEOUT_SECONDS = 10.0
MAX_FOLLOWS = 50
# Query parameters that look like credentials: never taken, and a ticket there is burnt.
CREDENTIAL_PARAMETERS = frozenset({"ticket", "token", "access_token", "session", "key"})


class Close:
    """Close codes; see the table in docs/websocket-protocol.md."""

    NORMAL = 1000
    UNSUPPORTED = 1003
    POLICY = 1008
    TOO_BIG = 1009
    SERVER_ERROR = 1011
    RECONNECT = 1012
    PROTOCOL = 4400
    AUTH_FAILED = 4401
    REVOKED = 4403


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuthFrame(_Frame):
    type: Literal["auth"]
    ticket: str = Field(max_length=200)


class FollowFrame(_Frame):
    type: Literal["follow"]
    case_id: uuid.UUID
    # Checked by resume_position, so that a bad position is answered with "reload".
    after: Any = None


class UnfollowFrame(_Frame):
    type: Literal["unfollow"]
    case_id: uuid.UUID


class MessageFrame(_Frame):
    type: Literal["message", "note"]
    case_id: uuid.UUID
    body: str = Field(min_length=1, max_length=10_000)
    ref: str | None = Field(None, min_length=1, max_length=64)


class TypingFrame(_Frame):
    type: Literal["typing"]
    case_id: uuid.UUID
    active: bool = True


class ReadFrame(_Frame):
    type: Literal["read"]
    case_id: uuid.UUID
    seq: int = Field(ge=0)


class PingFrame(_Frame):
    type: Literal["ping"]


class QueueFrame(_Frame):
    type: Literal["watch_queue", "unwatch_queue"]


ClientFrame = Annotated[
    AuthFrame
    | FollowFrame
    | UnfollowFrame
    | MessageFrame
    | TypingFrame
    | ReadFrame
    | PingFrame
    | QueueFrame,
    Field(discriminator="type"),
]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class FrameError(Exception):
    """A frame the server cannot take; answered with an ``error`` frame (code ``invalid``)."""

    def __init__(self, detail: str, raw: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.raw = raw or {}


def parse_frame(text: str) -> ClientFrame:
    """The client frame in ``text``; FrameError when it is not JSON, not an object, of an
    unknown type, or has fields of the wrong kind."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise FrameError("A frame is one JSON object.") from None
    if not isinstance(raw, dict):
        raise FrameError("A frame is one JSON object.")
    try:
        return _client_frame.validate_python(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FrameError(f"Frame not understood: {where}: {first['msg']}", raw) from None


def resume_position(after: Any, last_seq: int, window: int = REPLAY_WINDOW) -> int | str:
    """The position to replay from, or the reason to reload: ``malformed`` (not a
    non-negative integer), ``future`` (beyond the case's log) or ``too_old`` (more than
    ``window`` events behind)."""
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        return "malformed"
    if after > last_seq:
        return "future"
    if last_seq - after > window:
        return "too_old"
    return after


def visible(event: LiveEvent, audiences: tuple[str, ...]) -> bool:
    """The one audience rule, for replayed and live events alike."""
    return event.audience in audiences


def event_frame(event: LiveEvent) -> dict[str, Any]:
    return {
        "type": "event",
        "case_id": event.case_id,
        "seq": event.seq,
        "kind": event.kind,
        "audience": event.audience,
        "actor_kind": event.actor_kind,
        "actor_name": event.actor_name,
        "payload": event.payload,
        "created_at": event.created_at,
    }


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case, without a default port; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(origin: str | None, base_url: str, allowed: list[str]) -> bool:
    """A handshake without ``Origin`` (not a browser) is allowed; with one, it must be the
    origin of ``base_url`` or one of ``allowed``."""
    if origin is None:
        return True
    presented = origin_of(origin)
    if presented is None:
        return False
    accepted = {origin_of(u) for u in (base_url, *allowed)} - {None}
    return presented in accepted


class RateWindow:
    """At most ``limit`` frames in any ``seconds``: a sliding window of arrival times."""

    def __init__(self, limit: int, seconds: float = 60.0) -> None:
        self.limit = limit
        self.seconds = seconds
        self._times: collections.deque[float] = collections.deque()

    def allow(self, now: float) -> bool:
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True
