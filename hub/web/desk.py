"""Counter-desk mode for staff: look a citizen up, record the visit, print the status summary."""

from __future__ import annotations

from hub.web.pages import page_router

router = page_router()
