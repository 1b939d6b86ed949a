"""The review queue of unmatched inbound mail and texts, for staff.

Staff list the open items, read one, attach it to a case they may see, or discard it; and
link the sender's address to a party once the citizen has read back a code sent to it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlmodel import select

from hub.access.service import case_for_viewer, record_access, visible_agency_filter
from hub.auth.dependencies import CurrentStaff
from hub.cases.service import record_case_access
from hub.dependencies import BrokerDep, CatalogDep, SessionDep, SettingsDep
from hub.errors import InvalidInput, NotFound, problem
from hub.models import Agency, Case, Document, Party, ReviewItem
from hub.review import service

router = APIRouter(prefix="/api", tags=["review"])

EXCERPT = 200


class ReviewItemSummary(BaseModel):
    id: uuid.UUID
    channel: str
    sender: str
    subject: str | None
    excerpt: str
    reason: str
    status: str
    received_at: dt.datetime

    @classmethod
    def of(cls, item: ReviewItem) -> ReviewItemSummary:
        body = " ".join(item.body.split())
        excerpt = body if len(body) <= EXCERPT else body[: EXCERPT - 1].rstrip() + "…"
        return cls(
            id=item.id,
            channel=item.channel,
            sender=item.sender,
            subject=item.subject,
            excerpt=excerpt,
            reason=item.reason,
            status=item.status,
            received_at=item.received_at,
        )


class DocumentSummary(BaseModel):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    source: str


class ReviewItemOut(ReviewItemSummary):
    body: str
    original_body: str | None
    external_id: str | None
    meta: dict[str, Any]
    party_id: uuid.UUID | None
    case_id: uuid.UUID | None
    message_id: uuid.UUID | None
    resolved_at: dt.datetime | None
    documents: list[DocumentSummary]

    @classmethod
    def full(cls, item: ReviewItem, documents: list[Document]) -> ReviewItemOut:
        summary = ReviewItemSummary.of(item)
        return cls(
            **summary.model_dump(),
            body=item.body,
            original_body=item.original_body,
            external_id=item.external_id,
            meta=service.shown_meta(item),
            party_id=item.party_id,
            case_id=item.case_id,
            message_id=item.message_id,
            resolved_at=item.resolved_at,
            documents=[DocumentSummary.model_validate(d, from_attributes=True) for d in documents],
        )


class AttachIn(BaseModel):
    case_id: uuid.UUID
    party_id: uuid.UUID | None = Field(
        None, description="The party the item is from; must be the case's party when given."
    )


class AttachOut(BaseModel):
    item: ReviewItemOut
    message_id: uuid.UUID
    case_id: uuid.UUID


class DiscardIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class VerificationIn(BaseModel):
    party_id: uuid.UUID


class VerificationStarted(BaseModel):
    channel: Literal["email", "sms"]
    address: str
    expires_at: dt.datetime


class CodeIn(BaseModel):
    code: str = Field(min_length=4, max_length=12)


class VerificationDone(BaseModel):
    verified: Literal[True] = True
    party_id: uuid.UUID
    kind: str
    address: str


ItemStatus = Annotated[
    Literal["open", "attached", "discarded"],
    Query(alias="status", description="open (the default), attached or discarded"),
]
ItemChannel = Annotated[Literal["email", "sms"] | None, Query()]
Limit = Annotated[int, Query(ge=1, le=200)]


async def _party_for_staff(session: SessionDep, staff: CurrentStaff, party_id: uuid.UUID) -> Party:
    """The party if the staff member's agency has a case of theirs; else the same 404 as
    for a party that does not exist."""
    assert staff.agency_id is not None
    visible = (
        await session.exec(
            select(Case.id)
            .where(Case.party_id == party_id)
            .where(visible_agency_filter(staff.agency_id))  # type: ignore[arg-type]
            .limit(1)
        )
    ).first()
    party = await session.get(Party, party_id) if visible is not None else None
    if party is None:
        raise NotFound("No such party.")
    return party


@router.get("/review-items")
async def list_items(
    staff: CurrentStaff,
    session: SessionDep,
    status_filter: ItemStatus = "open",
    channel: ItemChannel = None,
    limit: Limit = 50,
) -> list[ReviewItemSummary]:
    """The queue, newest first: channel, sender, subject, an excerpt and why it is here.
    Items linked to a party put one line in that party's access log."""
    items = await service.list_review_items(
        session, status=status_filter, channel=channel, limit=limit
    )
    for party_id in dict.fromkeys(item.party_id for item in items if item.party_id):
        await record_access(session, staff, party_id=party_id, action="list", data="review_item")
    return [ReviewItemSummary.of(item) for item in items]


@router.get("/review-items/{item_id}")
async def read_item(item_id: uuid.UUID, staff: CurrentStaff, session: SessionDep) -> ReviewItemOut:
    """One item in full, with its documents (the raw mail, attachments). A read of an item
    linked to a party is written to that party's access log."""
    item = await service.get_review_item(session, item_id)
    if item.party_id is not None:
        await record_access(
            session, staff, party_id=item.party_id, action="read", data="review_item"
        )
    return ReviewItemOut.full(item, await service.documents_of_item(session, item.id))


@router.post("/review-items/{item_id}/attach")
async def attach_item(
    item_id: uuid.UUID,
    body: AttachIn,
    staff: CurrentStaff,
    session: SessionDep,
    catalog: CatalogDep,
    broker: BrokerDep,
) -> AttachOut:
    """Put the item on a case the staff member may see, as a message from the case's party
    (identified by staff review). 404 for a case they may not see; 409 when already done."""
    case, _ = await case_for_viewer(session, staff, body.case_id)
    if body.party_id is not None and body.party_id != case.party_id:
        raise InvalidInput("That case is not the party's.")
    item = await service.get_review_item(session, item_id, for_update=True)
    message = await service.attach_review_item(
        session, item=item, case=case, staff=staff.actor(), broker=broker
    )
    await record_case_access(session, staff, case, catalog, action="change", data="case")
    documents = await service.documents_of_item(session, item.id)
    return AttachOut(
        item=ReviewItemOut.full(item, documents), message_id=message.id, case_id=case.id
    )


@router.post("/review-items/{item_id}/discard")
async def discard_item(
    item_id: uuid.UUID, body: DiscardIn, staff: CurrentStaff, session: SessionDep
) -> ReviewItemOut:
    """Close the item without a case, keeping the reason."""
    item = await service.get_review_item(session, item_id, for_update=True)
    await service.discard_review_item(
        session, item=item, staff_id=uuid.UUID(staff.id), reason=body.reason
    )
    return ReviewItemOut.full(item, await service.documents_of_item(session, item.id))


@router.post("/review-items/{item_id}/verification", status_code=status.HTTP_202_ACCEPTED)
async def start_verification(
    item_id: uuid.UUID,
    body: VerificationIn,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> VerificationStarted:
    """Send a one-time code to the item's sender address, to link it to the party once the
    citizen reads the code back. Nothing is linked yet."""
    party = await _party_for_staff(session, staff, body.party_id)
    item = await service.get_review_item(session, item_id, for_update=True)
    assert staff.agency_id is not None
    agency = await session.get(Agency, staff.agency_id)
    await record_access(session, staff, party_id=party.id, action="change", data="party_address")
    outbox = await service.start_address_verification(
        session,
        item=item,
        party=party,
        staff=staff.actor(),
        agency_name=agency.name if agency else staff.agency_id,
        secret=settings.secret_key.get_secret_value(),
        minutes=settings.login_code_minutes,
    )
    verification = item.meta["verification"]
    return VerificationStarted(
        channel="email" if outbox.channel == "email" else "sms",
        address=outbox.recipient,
        expires_at=dt.datetime.fromisoformat(verification["expires_at"]),
    )


@router.post(
    "/review-items/{item_id}/verification/confirm",
    response_model=VerificationDone,
    responses={422: {"description": "The code is not right; attempts_left says how many more."}},
)
async def confirm_verification(
    item_id: uuid.UUID,
    body: CodeIn,
    request: Request,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
) -> VerificationDone | JSONResponse:
    """The code the citizen read out: when right, the address is stored as the party's,
    verified. A wrong code uses up an attempt (kept, not rolled back)."""
    item = await service.get_review_item(session, item_id, for_update=True)
    pending = item.meta.get("verification") or {}
    if pending.get("party_id"):
        await _party_for_staff(session, staff, uuid.UUID(pending["party_id"]))
    result = await service.confirm_address_verification(
        session,
        item=item,
        code=body.code,
        secret=settings.secret_key.get_secret_value(),
        max_attempts=settings.login_code_attempts,
    )
    if not result.verified or result.address is None:
        # Answered without raising, so the session commits the used-up attempt.
        return problem(
            422,
            "Invalid input",
            "The code is not right.",
            "invalid-input",
            request.url.path,
            attempts_left=result.attempts_left,
        )
    await record_access(
        session, staff, party_id=result.address.party_id, action="change", data="party_address"
    )
    return VerificationDone(
        party_id=result.address.party_id, kind=result.address.kind, address=result.address.value
    )
