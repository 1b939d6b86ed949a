"""``/healthz`` and ``/readyz`` for load balancers, orchestrators and container health checks.

``/healthz`` says the process is alive and touches nothing else: a database outage must not
get every API process restarted. ``/readyz`` says whether this process can serve requests
now; a load balancer sends traffic elsewhere while it answers 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from hub.db import Database
from hub.dependencies import SettingsDep, get_database
from hub.errors import problem
from hub.health.service import check_readiness

router = APIRouter(tags=["health"])

NAMES = {"database": "the database", "redis": "Redis"}


@router.get("/healthz", summary="The process is alive (no database or Redis round trip)")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="The database and, when configured, Redis are reachable",
    responses={503: {"description": "Something the hub needs is unreachable (problem details)"}},
)
async def readyz(
    request: Request,
    settings: SettingsDep,
    database: Annotated[Database, Depends(get_database)],
) -> Any:
    readiness = await check_readiness(database, settings.redis_url)
    if readiness.ready:
        return {"status": "ready", "checks": readiness.checks()}
    down = " and ".join(NAMES[name] for name in readiness.down())
    response = problem(
        503,
        "Not ready",
        f"This hub process cannot reach {down}.",
        "not-ready",
        request.url.path,
        checks=readiness.checks(),
    )
    response.headers["Retry-After"] = "5"
    return response
