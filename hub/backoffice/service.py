"""Apply a back-office system's CloudEvent to a case: once, in order, as the journey allows."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.access.service import Viewer, case_for_viewer, record_access
from hub.backoffice.schemas import CloudEvent, action_for
from hub.cases.service import act_on_case, definition_of
from hub.clock import local_date, local_today
from hub.errors import Conflict, InvalidInput, NotFound
from hub.events.fanout import Broker
from hub.events.service import append_event
from hub.models import Case, CaseEvent
from hub.review.service import first_receipt
from journeys.catalog import Catalog

# The case event that records which back-office event was applied and when it happened;
# staff-only, and without the event's data (which may hold personal details).
APPLIED = "backoffice_event"
RECEIPT_SOURCE_LENGTH = 30


@dataclass(frozen=True)
class Applied:
    """What became of one event: the case it moved, or that it had been applied before."""

    event: CloudEvent
    case: Case | None
    duplicate: bool


async def apply_event(
    session: AsyncSession,
    *,
    catalog: Catalog,
    viewer: Viewer,
    event: CloudEvent,
    broker: Broker | None = None,
    timezone: str = "Europe/Amsterdam",
) -> Applied:
    """Apply ``event`` from the agency system ``viewer`` to the case named by its subject.

    The event's journey action is taken with the agency as actor. The same (agency, source,
    id) is applied once: a repeat returns ``duplicate`` and changes nothing. Raises
    InvalidInput (422) for an unknown type, bad data or no subject; NotFound (404) for a
    case the agency neither owns nor takes part in; Conflict (409) for an action the
    journey does not allow or an event older than the last one applied to the case.
    Never commits; the caller rolls back on an error, which also forgets the receipt, so a
    refused event may be sent again.
    """
    assert viewer.agency_id is not None
    on = action_date(event.time, timezone)
    action = action_for(event, on)
    case = await _case_of(session, viewer, event.subject)
    if not await first_receipt(
        session, receipt_source(viewer.agency_id), f"{event.source}#{event.id}"
    ):
        return Applied(event=event, case=case, duplicate=True)
    if event.time is not None:
        last = await last_applied_time(session, case.id)
        if last is not None and event.time < last:
            raise Conflict(
                f"The event is out of order: it happened at {event.time.isoformat()}, before "
                f"the last back-office event applied to this case ({last.isoformat()}).",
                stage=case.stage,
                last_applied=last.isoformat(),
            )
    case = await act_on_case(
        session,
        catalog=catalog,
        case=case,
        action=action,
        actor=viewer.actor(),
        broker=broker,
        timezone=timezone,
    )
    await append_event(
        session,
        case_id=case.id,
        kind=APPLIED,
        actor=viewer.actor(),
        payload={
            "type": event.type,
            "source": event.source,
            "id": event.id,
            "time": event.time.isoformat() if event.time is not None else None,
        },
        audience="staff",
        broker=broker,
    )
    await record_access(
        session,
        viewer,
        party_id=case.party_id,
        action="change",
        data="case",
        case=case,
        activity_code=definition_of(catalog, case).processing_activity,
    )
    return Applied(event=event, case=case, duplicate=False)


def receipt_source(agency_id: str) -> str:
    """The receipt ``source`` under which an agency's events are deduplicated: ``ce:`` and
    the agency's code, or a digest of a code too long for the 30 characters there are."""
    readable = f"ce:{agency_id}"
    if len(readable) <= RECEIPT_SOURCE_LENGTH:
        return readable
    return "ce:#" + hashlib.sha256(agency_id.encode()).hexdigest()[: RECEIPT_SOURCE_LENGTH - 4]


async def last_applied_time(session: AsyncSession, case_id: uuid.UUID) -> dt.datetime | None:
    """When the latest-dated back-office event applied to the case happened, if any had a time."""
    payloads = (
        await session.exec(
            select(CaseEvent.payload).where(
                CaseEvent.case_id == case_id, col(CaseEvent.kind) == APPLIED
            )
        )
    ).all()
    times = [
        dt.datetime.fromisoformat(payload["time"])
        for payload in payloads
        if isinstance(payload, dict) and isinstance(payload.get("time"), str)
    ]
    return max(times, default=None)


def action_date(time: dt.datetime | None, timezone: str) -> dt.date:
    """The day the action is dated: the event's local day, but never a day still to come."""
    today = local_today(timezone)
    if time is None:
        return today
    return min(local_date(time, timezone), today)


async def _case_of(session: AsyncSession, viewer: Viewer, subject: str | None) -> Case:
    if subject is None:
        raise InvalidInput(
            "The event has no 'subject': give the case's id or reference.", attribute="subject"
        )
    try:
        case_id = uuid.UUID(subject)
    except ValueError:
        found = (await session.exec(select(Case.id).where(Case.reference == subject))).first()
        if found is None:
            raise NotFound("No such case.") from None
        case_id = found
    case, _ = await case_for_viewer(session, viewer, case_id, for_update=True)
    return case
