"""The print queue: a print-and-post provider or mail room collects letters, reports them posted."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api", tags=["letters"])
