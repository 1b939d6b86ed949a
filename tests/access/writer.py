"""A process of its own that appends access log entries, as a hub process would:
``python -m tests.access.writer URL PARTY_ID COUNT``."""

from __future__ import annotations

import asyncio
import sys
import uuid

from hub.access.service import Viewer, record_access
from hub.db import Database


async def write(url: str, party_id: uuid.UUID, count: int) -> None:
    database = Database(url)
    viewer = Viewer(kind="agency", id="writer", name="Writer", agency_id="toeslagen")
    try:
        for _ in range(count):
            async with database.session() as session:
                await record_access(session, viewer, party_id=party_id, action="read", data="case")
    finally:
        await database.dispose()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3])))
