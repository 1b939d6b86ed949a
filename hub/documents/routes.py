"""Documents on a case: upload by the citizen, download by those who may see the case."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["documents"])
