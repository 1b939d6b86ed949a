"""The review queue in the console: mail and texts the hub could not match to a case."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
