"""Inbound mail posted by a mail provider as raw MIME, authenticated by a shared secret."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["email"])
