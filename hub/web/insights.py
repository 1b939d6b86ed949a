"""The supervisor's insights page in the staff console: how interactions go, per journey and
channel, drawn as well as counted."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
