"""The database: engine, the one session dependency that commits, column types and naming.

Services add and flush; only :func:`session_scope` (and the request dependency built on it)
commits. Work that must follow a commit — publishing live events, waking the delivery
worker — is queued with :func:`after_commit` and runs only once the commit succeeded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import InvalidInput

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

AfterCommit = Callable[[], Awaitable[None]]


# The largest value an INTEGER column holds (PostgreSQL's are 32 bits): an id or sequence
# number asked for beyond it is refused as input rather than overflowing in the database.
MAX_INTEGER = 2**31 - 1


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored as UTC on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _tune_sqlite(engine)
        _refuse_nul(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout, which on a chat line is more than
    # the insert. A connection the server dropped fails its first statement instead; SQLAlchemy
    # recognises the disconnect, discards it and invalidates the pool's older connections, so
    # only that one unit of work fails — and every unit of work is a transaction that rolls
    # back whole (a chat line is resent under the same ``ref``, a webhook is retried by its
    # provider). ``pool_recycle`` replaces connections before server or proxy idle limits.
    # The pool keeps 20 open and opens up to 10 more for bursts. A connection beyond those kept
    # is closed when it comes back, so load that needs more than are kept opens and closes one
    # per request: a PostgreSQL backend started, TLS tried, every statement prepared again.
    # With 10 kept, 16 status reads at once spent a fifth of the hub's CPU on that.
    engine = create_async_engine(
        url, pool_size=20, max_overflow=10, pool_recycle=1800, hide_parameters=True
    )
    _refuse_nul(engine)
    return engine


def _refuse_nul(engine: AsyncEngine) -> None:
    """Text holding a NUL character is refused as input (422) before it reaches a statement:
    PostgreSQL can neither store nor compare it (a search or login with one was a 500), and
    SQLite is held to the same rule so that both answer alike."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _check(
        _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        # One row or many, as a tuple, list or dict: every text among them.
        values = [parameters]
        while values:
            value = values.pop()
            if isinstance(value, str):
                if "\x00" in value:
                    raise InvalidInput("Text with a NUL character (\\u0000) cannot be taken.")
            elif isinstance(value, dict):
                values.extend(value.values())
            elif isinstance(value, list | tuple):
                values.extend(value)


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let pysqlite not issue its own BEGIN, so we can BEGIN IMMEDIATE: a writer takes the
        # write lock up front instead of failing on upgrade from a read lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine and session factory of one running hub."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # The same pool without transactions, for reads that need none (the live socket's
        # checks): no BEGIN and COMMIT round trips, and on SQLite no write lock.
        self.reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """A pooled connection's driver connection (asyncpg's, on PostgreSQL), for statements
        that need neither a transaction nor SQLAlchemy: no BEGIN and COMMIT, and none of the
        ORM's or Core's Python around each statement.

        Only statements that leave nothing behind on the connection belong here (no
        ``BEGIN``, no ``SET``): it goes back to the pool as it is. One that failed is closed
        instead, since it may be broken or midway through a statement.
        """
        pooled = await self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        except BaseException:
            await greenlet_spawn(pooled.invalidate)
            raise
        await greenlet_spawn(pooled.close)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block ends and rolls back when it raises.

        Callbacks registered with :func:`after_commit` run after a successful commit.
        """
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        for callback in session.info.pop("after_commit", []):
            await callback()

    async def dispose(self) -> None:
        await self.engine.dispose()


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` once ``session`` has committed; never if it rolls back."""
    session.info.setdefault("after_commit", []).append(callback)


async def create_all(database: Database) -> None:
    """Create every table directly (tests); the running hub uses Alembic migrations."""
    import hub.models  # noqa: F401 - registers the tables

    async with database.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
