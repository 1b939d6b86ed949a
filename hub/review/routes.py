"""The review queue of unmatched inbound mail and texts, for staff."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["review"])
