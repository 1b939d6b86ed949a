"""One authenticated live socket: the cases it follows, the frames it takes, and the checks
that stop delivery the moment the session or a mandate ends (docs/websocket-protocol.md).

Per followed case a pump task subscribes first, then replays the log after the client's
position, then passes live events on — dropping those at or below the position already
sent, and reading the log again when a number is skipped (two processes may publish
out of order; the log has both by then, since the later one committed after the earlier).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import WebSocket
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import State
from starlette.types import Message

from hub.access.service import (
    Viewer,
    active_mandate,
    case_for_viewer,
)
from hub.chat import service as chat
from hub.config import Settings
from hub.db import Database
from hub.errors import HubError, NotFound
from hub.events.fanout import (
    Broker,
    Follower,
    Following,
    Interruption,
    LiveEvent,
    Signal,
)
from hub.events.service import Audience, events_after
from hub.live.protocol import (
    MAX_FOLLOWS,
    REPLAY_WINDOW,
    Close,
    FollowFrame,
    FrameError,
    MessageFrame,
    PingFrame,
    QueueFrame,
    RateWindow,
    ReadFrame,
    TypingFrame,
    UnfollowFrame,
    event_frame,
    parse_frame,
    resume_position,
    visible,
)
from hub.live.tickets import live_sessions, session_is_live, session_viewer
from hub.models import Case, CaseEvent
from journeys.catalog import Catalog

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often an idle socket asks whether its session and its cases are still the viewer's:
# a revocation (logout, an administrator's, a mandate's) ends delivery within this plus one
# query, and every open socket pays a query or so each time (see _access).
WATCH_SECONDS = 0.5
PRESENCE_REFRESH_TICKS = 10  # every 5 seconds (PRESENCE_SECONDS is 15)
GATHER_SECONDS = 0.02
REPLAY_PAGE = 500
ALL_AUDIENCES: tuple[Audience, ...] = ("citizen", "staff")


class SessionChecks:
    """Whether login sessions are still live, asked for every open socket of the process in
    one query a tick rather than one a socket: the sockets' watchdogs wake together (on
    multiples of :data:`WATCH_SECONDS` of the loop's clock), and the first to ask waits
    :data:`GATHER_SECONDS` for the others."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queries = 0
        self._waiting: dict[uuid.UUID, list[asyncio.Future[bool]]] = {}
        self._batch: asyncio.Task[None] | None = None

    async def is_live(self, session_id: uuid.UUID) -> bool:
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(session_id, []).append(answer)
        if self._batch is None:
            self._batch = asyncio.create_task(self._ask(), name="live-session-checks")
        return await answer

    async def _ask(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        waiting, self._waiting, self._batch = self._waiting, {}, None
        try:
            async with self.database.reader.connect() as connection:
                self.queries += 1
                live = await live_sessions(connection, list(waiting))
        except BaseException as error:
            # A failed query fails this tick's checks (each socket tries again at the next);
            # a cancelled one (the loop closing) leaves no socket waiting for ever.
            for answers in waiting.values():
                for answer in answers:
                    if answer.done():
                        continue
                    if isinstance(error, Exception):
                        answer.set_exception(error)
                    else:
                        answer.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for session_id, answers in waiting.items():
            for answer in answers:
                if not answer.done():
                    answer.set_result(session_id in live)


@dataclass
class CaseFollow:
    case_id: uuid.UUID
    party_id: uuid.UUID
    journey_id: str
    representing: bool
    position: int
    following: Following
    follower: Follower
    task: asyncio.Task[None] | None = field(default=None)


@dataclass
class QueueWatch:
    following: Following
    follower: Follower
    task: asyncio.Task[None] | None = field(default=None)


class LiveConnection:
    def __init__(
        self, websocket: WebSocket, state: State, *, viewer: Viewer, session_id: uuid.UUID
    ) -> None:
        self.websocket = websocket
        self.settings: Settings = state.settings
        self.database: Database = state.database
        self.broker: Broker = state.broker
        self.catalog: Catalog = state.catalog
        self.viewer = viewer
        self.session_id = session_id
        self.id = uuid.uuid4().hex
        self.follows: dict[uuid.UUID, CaseFollow] = {}
        self.queue_watch: QueueWatch | None = None
        self.limiter = RateWindow(self.settings.ws_messages_per_minute, 60.0)
        self.checks = session_checks(state)
        self._send_lock = asyncio.Lock()
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def context(self) -> chat.ChatContext:
        return chat.ChatContext(self.catalog, self.broker, self.settings.timezone)

    async def _in_session(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``work`` in a session of its own, shielded: a task cancelled while it waits
        (a client leaving, a shutdown) never leaves a transaction half done."""

        async def unit() -> T:
            async with self.database.session() as session:
                return await work(session)

        return await asyncio.shield(asyncio.ensure_future(unit()))

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run read-only ``work`` outside a transaction (no BEGIN and COMMIT round trips, and
        on SQLite no write lock): for the checks made while following."""

        async def in_session(connection: AsyncConnection) -> T:
            async with AsyncSession(bind=connection) as session:
                return await work(session)

        return await self._read_connection(in_session)

    async def _read_connection(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """:meth:`_read` on the bare connection, for the check made before every delivery."""

        async def unit() -> T:
            async with self.database.reader.connect() as connection:
                return await work(connection)

        return await asyncio.shield(asyncio.ensure_future(unit()))

    # --- sending and closing --------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        text = json.dumps(frame, ensure_ascii=False)
        async with self._send_lock:
            try:
                await self.websocket.send_text(text)
            except Exception:  # the peer went away; the receive loop ends the connection
                self._closed.set()

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket (once); the receive loop and the pumps end."""
        if self.closed:
            return
        self._closed.set()
        async with self._send_lock:
            with contextlib.suppress(Exception):
                await self.websocket.close(code, reason)

    # --- the connection's life ------------------------------------------------------------

    async def serve(self) -> None:
        """Run until the client leaves or the socket is closed; then clean up every follow."""
        await self.send(
            {
                "type": "ready",
                "viewer": {"kind": self.viewer.kind, "name": self.viewer.name},
                "limits": {
                    "max_frame_bytes": self.settings.ws_max_frame_bytes,
                    "frames_per_minute": self.settings.ws_messages_per_minute,
                },
                "replay_window": REPLAY_WINDOW,
            }
        )
        watchdog = asyncio.create_task(self._watch(), name=f"live-watch-{self.id}")
        try:
            await self._receive_loop()
        finally:
            self._closed.set()
            with contextlib.suppress(Exception):
                await watchdog
            for case_id in list(self.follows):
                await self._stop_follow(case_id)
            await self._unwatch_queue()

    async def _receive(self) -> Message | None:
        receiving = asyncio.ensure_future(self.websocket.receive())
        closing = asyncio.ensure_future(self._closed.wait())
        done, _ = await asyncio.wait({receiving, closing}, return_when=asyncio.FIRST_COMPLETED)
        if receiving in done:
            closing.cancel()
            return receiving.result()
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiving
        return None

    async def _receive_loop(self) -> None:
        max_bytes = self.settings.ws_max_frame_bytes
        while not self.closed:
            message = await self._receive()
            if message is None or message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.close(Close.UNSUPPORTED, "send JSON in text frames")
                return
            if len(text) > max_bytes or len(text.encode()) > max_bytes:
                await self.close(Close.TOO_BIG, "frame too large")
                return
            if not self.limiter.allow(time.monotonic()):
                await self.close(Close.POLICY, "rate limit")
                return
            try:
                frame = parse_frame(text)
            except FrameError as error:
                await self.send(_error("invalid", error.detail, error.raw))
                continue
            try:
                await self._handle(frame)
            except Exception as error:
                # A database connection lost, say: nothing was acknowledged, so the client
                # reconnects and resends (a line under the same ref is stored once). The type
                # only is logged: a database error's text can carry what a citizen wrote.
                log.error("A live frame failed (%s); closing the socket", type(error).__name__)
                await self.close(Close.SERVER_ERROR, "server error")
                return

    async def _handle(self, frame: Any) -> None:
        if isinstance(frame, PingFrame):
            await self.send({"type": "pong"})
        elif isinstance(frame, FollowFrame):
            await self._follow(frame)
        elif isinstance(frame, UnfollowFrame):
            if frame.case_id in self.follows:
                await self._stop_follow(frame.case_id)
            await self.send(
                {"type": "unfollowed", "case_id": str(frame.case_id), "reason": "asked"}
            )
        elif isinstance(frame, MessageFrame):
            await self._message(frame)
        elif isinstance(frame, TypingFrame | ReadFrame):
            await self._signal(frame)
        elif isinstance(frame, QueueFrame):
            if frame.type == "watch_queue":
                await self._watch_queue()
            else:
                await self._unwatch_queue()
                await self.send({"type": "unwatched_queue"})
        else:
            await self.send(_error("invalid", "Already authenticated.", {}))

    # --- following ------------------------------------------------------------------------

    async def _follow(self, frame: FollowFrame) -> None:
        case_id = frame.case_id
        if case_id in self.follows:
            await self._stop_follow(case_id)
        if len(self.follows) >= MAX_FOLLOWS:
            await self.send(
                _error("too_many", f"Follow at most {MAX_FOLLOWS} cases at once.", {}, case_id)
            )
            return

        async def authorize(session: AsyncSession) -> tuple[Case | None, bool] | None:
            viewer = await session_viewer(session, self.session_id)
            if viewer is None:
                return None
            try:
                case, representing = await case_for_viewer(session, viewer, case_id)
            except NotFound:
                return None, False
            await chat.log_case_access(session, self.context, viewer, case, "read", "timeline")
            return case, representing

        allowed = await self._in_session(authorize)
        if allowed is None:
            await self.close(Close.REVOKED, "session ended")
            return
        case, representing = allowed
        if case is None:
            await self.send(_error("not_found", "No such case.", {}, case_id))
            return

        async def last_seq_of(session: AsyncSession) -> int:
            return (await session.exec(select(Case.last_seq).where(Case.id == case_id))).one()

        # Subscribe before reading the log: nothing committed from here on can be missed.
        following = self.broker.follow(case_id)
        follower = await following.__aenter__()
        try:
            last_seq = await self._in_session(last_seq_of)
            position = resume_position(frame.after, last_seq)
            if isinstance(position, str):
                await following.__aexit__(None, None, None)
                await self.send(
                    {
                        "type": "reload",
                        "case_id": str(case_id),
                        "reason": position,
                        "last_seq": last_seq,
                    }
                )
                return
            follow = CaseFollow(
                case_id, case.party_id, case.journey_id, representing, position, following, follower
            )
            self.follows[case_id] = follow
            answer: dict[str, Any] = {
                "type": "followed",
                "case_id": str(case_id),
                "last_seq": last_seq,
            }
            if self.viewer.kind == "staff":
                answer["citizen_online"] = await self.broker.citizen_online(case_id)
            await self.send(answer)
            if self.viewer.kind == "citizen":
                await self.broker.citizen_here(case_id, self.id)
            await self.broker.signal(self._signal_of(follow, "presence", {"state": "online"}))
            follow.task = asyncio.create_task(self._pump(follow), name=f"live-{case_id}")
        except BaseException:
            if case_id not in self.follows:
                await following.__aexit__(None, None, None)
            raise

    async def _stop_follow(self, case_id: uuid.UUID) -> bool:
        """Stop following the case; False when it was not followed (anymore)."""
        follow = self.follows.pop(case_id, None)
        if follow is None:
            return False
        if follow.task is not None and follow.task is not asyncio.current_task():
            # Asked, not cancelled: the pump ends between two items, never inside a
            # transaction.
            follow.follower.put(Interruption.ENDED)
            with contextlib.suppress(Exception):
                await follow.task
        await follow.following.__aexit__(None, None, None)
        with contextlib.suppress(Exception):
            if self.viewer.kind == "citizen":
                await self.broker.citizen_gone(case_id, self.id)
            await self.broker.signal(self._signal_of(follow, "presence", {"state": "offline"}))
        return True

    async def _lose_access(self, follow: CaseFollow) -> None:
        if await self._stop_follow(follow.case_id):
            await self.send(
                {"type": "unfollowed", "case_id": str(follow.case_id), "reason": "forbidden"}
            )

    async def _pump(self, follow: CaseFollow) -> None:
        try:
            await self._catch_up(follow)
            while not self.closed:
                batch = [await follow.follower.get()]
                while (more := follow.follower.get_nowait()) is not None:
                    batch.append(more)
                if Interruption.ENDED in batch or follow.case_id not in self.follows:
                    return
                if Interruption.CLOSED in batch:
                    await self.close(Close.RECONNECT, "server going away")
                    return
                if not await self._still_allowed(follow):
                    return
                for item in batch:
                    await self._pass_on(follow, item)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # The type only: a database error's text can carry what a citizen wrote.
            log.error("Live delivery failed (%s); closing the socket", type(error).__name__)
            await self.close(Close.SERVER_ERROR, "server error")

    async def _pass_on(self, follow: CaseFollow, item: LiveEvent | Signal | Interruption) -> None:
        if item is Interruption.LAGGED:
            await self._catch_up(follow)
        elif isinstance(item, Signal):
            if item.sender != self.id and item.audience in self.viewer.audiences:
                await self.send(
                    {"type": item.kind, "case_id": item.case_id, "who": item.who, **item.data}
                )
        elif isinstance(item, LiveEvent):
            if item.seq <= follow.position:
                return
            if item.seq > follow.position + 1:
                await self._catch_up(follow)
                return
            follow.position = item.seq
            if visible(item, self.viewer.audiences):
                await self.send(event_frame(item))

    async def _catch_up(self, follow: CaseFollow) -> None:
        """Send the logged events after the follow's position, in order, as the viewer may
        see them; the position moves over staff-only events a citizen does not get."""
        while not self.closed:

            async def page(session: AsyncSession) -> list[CaseEvent]:
                return await events_after(
                    session,
                    follow.case_id,
                    follow.position,
                    audiences=ALL_AUDIENCES,
                    limit=REPLAY_PAGE,
                )

            events = await self._in_session(page)
            for event in events:
                live = LiveEvent.from_event(event)
                follow.position = live.seq
                if visible(live, self.viewer.audiences):
                    await self.send(event_frame(live))
            if len(events) < REPLAY_PAGE:
                return

    async def _still_allowed(self, follow: CaseFollow) -> bool:
        """Whether the session is live and the case still the viewer's to see, read from the
        database before anything of the case is sent."""

        async def check(connection: AsyncConnection) -> list[CaseFollow] | None:
            return await self._access(connection, [follow])

        lost = await self._read_connection(check)
        if lost is None:
            await self.close(Close.REVOKED, "session ended")
            return False
        if lost:
            await self._lose_access(follow)
            return False
        return True

    async def _access(
        self, connection: AsyncConnection, follows: list[CaseFollow], *, session_live: bool = False
    ) -> list[CaseFollow] | None:
        """Those of ``follows`` whose case the viewer may no longer see; None when the session
        ended (revoked, expired, the staff member deactivated).

        One query for the session (none when ``session_live`` says it was just asked), and
        one for each follow that can lose access: staff's (does their agency still take
        part?), which asks after the session too, and a representative's (does the mandate
        still hold?). A citizen's own case stays theirs: it costs nothing.
        """
        agency_id = self.viewer.agency_id if self.viewer.kind == "staff" else None
        if (
            not session_live
            and (agency_id is None or not follows)
            and not await session_is_live(connection, self.session_id)
        ):
            return None
        lost = []
        for follow in follows:
            if agency_id is not None:
                sees = (agency_id, follow.case_id)
                if await session_is_live(connection, self.session_id, agency_sees=sees):
                    continue
                # Which of the two failed is asked only then, not on every check.
                if not await session_is_live(connection, self.session_id):
                    return None
                lost.append(follow)
            elif follow.representing:
                assert self.viewer.party_id is not None
                async with AsyncSession(bind=connection) as session:
                    mandate = await active_mandate(
                        session,
                        representative_id=self.viewer.party_id,
                        party_id=follow.party_id,
                        journey_id=follow.journey_id,
                    )
                if mandate is None:
                    lost.append(follow)
        return lost

    async def _watch(self) -> None:
        """Every :data:`WATCH_SECONDS`: end the socket when the session ended (asked with
        every other socket of the process, see :class:`SessionChecks`), and each follow whose
        case the viewer may no longer see (see :meth:`_access` for what that costs); keep the
        citizen's presence fresh."""
        ticks = 0
        failing = False
        loop = asyncio.get_running_loop()
        while not self.closed:
            with contextlib.suppress(TimeoutError):
                tick = WATCH_SECONDS - loop.time() % WATCH_SECONDS
                await asyncio.wait_for(self._closed.wait(), tick)
                return
            ticks += 1
            follows = [
                f for f in self.follows.values() if f.representing or self.viewer.kind == "staff"
            ]

            async def check(
                connection: AsyncConnection, follows: list[CaseFollow] = follows
            ) -> list[CaseFollow] | None:
                return await self._access(connection, follows, session_live=True)

            try:
                lost: list[CaseFollow] | None = None
                if await self.checks.is_live(self.session_id):
                    lost = await self._read_connection(check) if follows else []
            except Exception as error:
                # Tried again at the next tick (a dropped connection is replaced by then); a
                # delivery meanwhile is checked on its own.
                if not failing:
                    log.warning("The live session check failed (%s)", type(error).__name__)
                failing = True
                continue
            failing = False
            if lost is None:
                await self.close(Close.REVOKED, "session ended")
                return
            for follow in lost:
                await self._lose_access(follow)
            if self.viewer.kind == "citizen" and ticks % PRESENCE_REFRESH_TICKS == 0:
                for case_id in list(self.follows):
                    with contextlib.suppress(Exception):
                        await self.broker.citizen_here(case_id, self.id)

    # --- the staff member's chat queue ------------------------------------------------------

    async def _watch_queue(self) -> None:
        agency_id = self.viewer.agency_id
        if self.viewer.kind != "staff" or agency_id is None:
            await self.send(_error("forbidden", "Only staff watch a chat queue.", {}))
            return
        if self.queue_watch is None:
            following = self.broker.follow(chat.queue_key(agency_id))
            watch = QueueWatch(following, await following.__aenter__())
            self.queue_watch = watch
            watch.task = asyncio.create_task(self._queue_pump(watch), name=f"queue-{self.id}")
        await self.send({"type": "watching_queue", "agency_id": agency_id})

    async def _unwatch_queue(self) -> None:
        watch, self.queue_watch = self.queue_watch, None
        if watch is None:
            return
        if watch.task is not None and watch.task is not asyncio.current_task():
            watch.follower.put(Interruption.ENDED)
            with contextlib.suppress(Exception):
                await watch.task
        await watch.following.__aexit__(None, None, None)

    async def _queue_pump(self, watch: QueueWatch) -> None:
        """Pass changes of the agency's queue on (ids and status only: the client reads the
        queue again), while the session lasts."""

        async def live(session: AsyncSession) -> bool:
            return await session_is_live(session, self.session_id)

        while not self.closed:
            item = await watch.follower.get()
            if item is Interruption.ENDED:
                return
            if item is Interruption.CLOSED:
                await self.close(Close.RECONNECT, "server going away")
                return
            try:
                still_live = await self._read(live)
            except Exception as error:
                log.error("The queue check failed (%s); closing the socket", type(error).__name__)
                await self.close(Close.SERVER_ERROR, "server error")
                return
            if not still_live:
                await self.close(Close.REVOKED, "session ended")
                return
            if item is Interruption.LAGGED:
                await self.send({"type": "queue_changed", "reload": True})
            elif isinstance(item, Signal):
                await self.send({"type": "queue_changed", **item.data})

    # --- chat lines and signals -----------------------------------------------------------

    async def _message(self, frame: MessageFrame) -> None:

        async def store(session: AsyncSession) -> chat.Posted | None:
            if not await session_is_live(session, self.session_id):
                return None
            return await chat.say(
                session,
                self.context,
                viewer=self.viewer,
                case_id=frame.case_id,
                body=frame.body,
                ref=frame.ref,
                internal=frame.type == "note",
            )

        try:
            posted = await self._in_session(store)
            if posted is None:
                await self.close(Close.REVOKED, "session ended")
                return
        except HubError as error:
            await self.send(
                _error(
                    error.type_suffix.replace("-", "_"),
                    error.detail,
                    {"ref": frame.ref},
                    frame.case_id,
                )
            )
            return
        # Committed (and published) by now: only a stored line is acknowledged.
        await self.send(
            {
                "type": "ack",
                "ref": frame.ref,
                "case_id": str(posted.case_id),
                "message_id": str(posted.message.id),
                "seq": posted.seq,
            }
        )

    def _signal_of(self, follow: CaseFollow, kind: str, data: dict[str, Any]) -> Signal:
        who_kind = "representative" if follow.representing else self.viewer.kind
        return Signal(
            case_id=str(follow.case_id),
            kind=kind,
            sender=self.id,
            who={"kind": who_kind, "name": self.viewer.name},
            data=data,
        )

    async def _signal(self, frame: TypingFrame | ReadFrame) -> None:
        follow = self.follows.get(frame.case_id)
        if follow is None:
            await self.send(
                _error(
                    "not_following", "Follow the case before signalling on it.", {}, frame.case_id
                )
            )
            return
        data: dict[str, Any] = (
            {"active": frame.active} if isinstance(frame, TypingFrame) else {"seq": frame.seq}
        )
        await self.broker.signal(self._signal_of(follow, frame.type, data))


def _error(
    code: str, detail: str, raw: dict[str, Any], case_id: uuid.UUID | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
    ref = raw.get("ref")
    if isinstance(ref, str) and len(ref) <= 64:
        frame["ref"] = ref
    if case_id is not None:
        frame["case_id"] = str(case_id)
    elif isinstance(raw.get("case_id"), str) and len(raw["case_id"]) <= 64:
        frame["case_id"] = raw["case_id"]
    return frame


def session_checks(state: State) -> SessionChecks:
    """The app's :class:`SessionChecks`, made on first use."""
    found: SessionChecks | None = getattr(state, "live_session_checks", None)
    if found is None:
        found = SessionChecks(state.database)
        state.live_session_checks = found
    return found


def connections(state: State) -> set[LiveConnection]:
    """The open live connections of this app (closed with 1012 when it shuts down)."""
    found: set[LiveConnection] | None = getattr(state, "live_connections", None)
    if found is None:
        found = set()
        state.live_connections = found
    return found


async def close_all(state: State) -> None:
    """Tell every open socket the server is going away, so clients reconnect elsewhere."""
    for connection in list(connections(state)):
        await connection.close(Close.RECONNECT, "server going away")
