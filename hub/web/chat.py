"""Live chat pages: the citizen's chat on a case or with an agency, and the staff side."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
