"""The citizen's preferences: the channel for notices, the language and needs, each change kept."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
