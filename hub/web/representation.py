"""Representation: mandates the citizen grants and revokes, and acting for someone represented."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
