"""Messages on a case's thread: staff replies on a chosen channel; citizen portal messages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["messages"])
