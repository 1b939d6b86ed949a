"""Web chat: conversations, the staff queue, pick-up and hand-over."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["chat"])
