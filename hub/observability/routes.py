"""``GET /metrics``: the Prometheus text exposition of this process and of the database."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hub.dependencies import SettingsDep
from hub.errors import NotAuthenticated, NotFound
from hub.observability.metrics import FinishedCounts, exposition, read_database_figures

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """With ``HUB_METRICS_TOKEN`` set, only for ``Authorization: Bearer <token>``. Without
    it, open in development and test and off in production: the figures name no person, but
    how busy the hub is and where it fails is not for everyone."""
    token = settings.metrics_token
    if token is None:
        if settings.environment == "production":
            raise NotFound("Metrics are off: set HUB_METRICS_TOKEN to serve them.")
    else:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            raise NotAuthenticated(
                "Send the metrics token as Authorization: Bearer <HUB_METRICS_TOKEN>."
            )
    state = request.app.state
    finished: FinishedCounts | None = getattr(state, "metrics_finished_counts", None)
    if finished is None:
        finished = state.metrics_finished_counts = FinishedCounts()
    figures = await read_database_figures(
        state.database, finished, settings.metrics_finished_seconds
    )
    return Response(
        exposition(figures),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
