"""``POST /api/cloudevents``: agencies' back-office systems push case changes as CloudEvents.

The HTTP protocol binding of CloudEvents 1.0 in its three forms: structured mode (one event
as ``application/cloudevents+json``), binary mode (``ce-*`` headers, the data as JSON in the
body) and batched mode (``application/cloudevents-batch+json``, answered event by event).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer
from hub.auth.dependencies import CurrentAgency
from hub.backoffice.schemas import (
    BATCH,
    STRUCTURED,
    event_from_binary,
    event_from_structured,
    events_from_batch,
    load_json,
)
from hub.backoffice.service import Applied, apply_event
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import HubError, InvalidInput
from hub.events.fanout import Broker
from journeys.catalog import Catalog

router = APIRouter(prefix="/api", tags=["back office"])

DESCRIPTION = """\
One CloudEvent 1.0 in structured mode (`application/cloudevents+json`) or binary mode
(`ce-*` headers, the data as `application/json`), or a batch
(`application/cloudevents-batch+json`, answered event by event). The `subject` is the
case's id or reference; the agency must own the case or take part in it.

| type | data | journey action |
|---|---|---|
| `nl.interactionhub.case.stage-reached` | `{"stage"}` | advance |
| `nl.interactionhub.case.decided` | `{"result", "note"?}` | decide |
| `nl.interactionhub.case.information-requested` | `{"what", "until"?}` | request information |
| `nl.interactionhub.case.suspended` | `{"reason"}` | suspend |
| `nl.interactionhub.case.resumed` | `{}` | resume |
| `nl.interactionhub.case.extended` | `{"reason", "days", "unit"?}` | extend |

An event (`source`, `id`) is applied once; a repeat answers `"duplicate": true`. An event
whose `time` is before that of the last event applied to the case is refused (409, out of
order); events without `time` are applied in the order they arrive.
"""
MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 100


def _answer(applied: Applied) -> dict[str, Any]:
    case = applied.case
    return {
        "id": applied.event.id,
        "source": applied.event.source,
        "type": applied.event.type,
        "status": 200,
        "duplicate": applied.duplicate,
        "case": None
        if case is None
        else {
            "id": str(case.id),
            "reference": case.reference,
            "stage": case.stage,
            "status": case.status,
            "result": case.result,
        },
    }


def _problem(raw: Any, error: HubError) -> dict[str, Any]:
    """The answer for one refused event of a batch: its id and source and a problem detail."""
    known = raw if isinstance(raw, dict) else {}
    return {
        "id": known.get("id") if isinstance(known.get("id"), str) else None,
        "source": known.get("source") if isinstance(known.get("source"), str) else None,
        "status": error.status,
        "problem": {
            "type": f"https://interaction-hub.example/problems/{error.type_suffix}",
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
            **error.extra,
        },
    }


async def _apply_each(
    session: AsyncSession,
    raws: list[Any],
    *,
    catalog: Catalog,
    viewer: Viewer,
    broker: Broker,
    timezone: str,
) -> list[dict[str, Any]]:
    """Apply a batch's events in order, each in a savepoint of its own, so that a refused
    event leaves nothing behind (not its receipt, nor live events to be published) while
    the others still apply."""
    answers: list[dict[str, Any]] = []
    for raw in raws:
        pending = list(session.info.get("after_commit", []))
        try:
            async with session.begin_nested():
                event = event_from_structured(raw)
                applied = await apply_event(
                    session,
                    catalog=catalog,
                    viewer=viewer,
                    event=event,
                    broker=broker,
                    timezone=timezone,
                )
        except HubError as error:
            session.info["after_commit"] = pending
            answers.append(_problem(raw, error))
        else:
            answers.append(_answer(applied))
    return answers


@router.post(
    "/cloudevents",
    summary="Push case changes from a back-office system as CloudEvents",
    description=DESCRIPTION,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                STRUCTURED: {"schema": {"type": "object"}},
                BATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        404: {"description": "No such case (or not one of the agency's)."},
        409: {"description": "The journey does not allow it now, or the event is out of order."},
        422: {"description": "Not a valid CloudEvent, an unknown type, or bad data."},
    },
)
async def receive_cloudevents(
    request: Request,
    viewer: CurrentAgency,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
    settings: SettingsDep,
) -> Any:
    """Apply one event (structured or binary mode) or a batch of them to the agency's cases.

    A repeat of an applied event (same source and id) answers ``"duplicate": true`` and
    changes nothing. A batch answers a list, one entry per event with its own ``status``
    and, for a refused one, its ``problem``; the events that pass are applied.
    """
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"The body is larger than {MAX_BODY_BYTES} bytes.")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == BATCH:
        raws = events_from_batch(load_json(body))
        if len(raws) > MAX_BATCH:
            raise InvalidInput(f"A batch holds at most {MAX_BATCH} events.")
        return await _apply_each(
            session,
            raws,
            catalog=catalog,
            viewer=viewer,
            broker=broker,
            timezone=settings.timezone,
        )
    if media == STRUCTURED:
        event = event_from_structured(load_json(body))
    else:
        event = event_from_binary(request.headers, body)
    applied = await apply_event(
        session,
        catalog=catalog,
        viewer=viewer,
        event=event,
        broker=broker,
        timezone=settings.timezone,
    )
    return _answer(applied)
