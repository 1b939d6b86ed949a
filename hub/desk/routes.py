"""The counter desk: finding a party, their cases, recording a visit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["desk"])
