"""What the print queue API returns."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from channels.letter.service import QueuedLetter


class PrintJobOut(BaseModel):
    """A letter in the print queue, with where to fetch its PDF and the checksum to check."""

    id: uuid.UUID
    status: str = Field(description="queued → collected → posted")
    case_id: uuid.UUID | None
    case_reference: str | None
    recipient: str = Field(description="The postal address, as printed in the window.")
    pdf_url: str
    pdf_sha256: str
    pdf_bytes: int
    created_at: dt.datetime
    collected_at: dt.datetime | None
    posted_at: dt.datetime | None

    @classmethod
    def of(cls, letter: QueuedLetter) -> PrintJobOut:
        job = letter.job
        return cls(
            id=job.id,
            status=job.status,
            case_id=job.case_id,
            case_reference=letter.case.reference if letter.case else None,
            recipient=job.recipient,
            pdf_url=f"/api/print-jobs/{job.id}/pdf",
            pdf_sha256=letter.document.sha256,
            pdf_bytes=letter.document.size,
            created_at=job.created_at,
            collected_at=job.collected_at,
            posted_at=job.posted_at,
        )
