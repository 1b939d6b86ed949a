"""Changing the access log behind the hub's back, as someone with the database's superuser or
file could: past the triggers, which the hub itself cannot get past."""

from __future__ import annotations

from sqlalchemy import text

from hub.db import Database
from hub.models.access import SQLITE_APPEND_ONLY


async def behind_the_back(database: Database, statement: str, **values: object) -> None:
    async with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(text(statement), values)
            return
        await connection.execute(text("DROP TRIGGER access_log_no_update"))
        await connection.execute(text("DROP TRIGGER access_log_no_delete"))
        await connection.execute(text(statement), values)
        for ddl in SQLITE_APPEND_ONLY:
            await connection.execute(text(ddl))
