"""The live websocket (see docs/websocket-protocol.md) and its tickets."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["live"])
