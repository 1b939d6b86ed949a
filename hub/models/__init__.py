"""Every table of the hub, re-exported so that importing ``hub.models`` registers them all."""

from hub.models.access import AccessLogEntry
from hub.models.agency import Agency, ApiKey, ProcessingActivity, StaffMember, Team, TeamMembership
from hub.models.auth import LoginCode, LoginSession
from hub.models.case import (
    Case,
    CaseEvent,
    CaseParticipant,
    Conversation,
    Message,
    ReferenceCounter,
)
from hub.models.delivery import OutboxItem, Timer
from hub.models.inbound import Document, InboundReceipt, PrintJob, ReviewItem
from hub.models.insights import InsightChannelDay, InsightCohort, InsightDay, InsightFirstResponse
from hub.models.notices import (
    Consent,
    ConsentTopic,
    IdempotencyKey,
    Notice,
    NoticeJob,
    NoticeJobRejection,
    NoticeTemplate,
    WebhookDelivery,
    WebhookSubscription,
)
from hub.models.party import DigitalAddress, Mandate, Party

__all__ = [
    "AccessLogEntry",
    "Agency",
    "ApiKey",
    "Case",
    "CaseEvent",
    "CaseParticipant",
    "Consent",
    "ConsentTopic",
    "Conversation",
    "DigitalAddress",
    "Document",
    "IdempotencyKey",
    "InboundReceipt",
    "InsightChannelDay",
    "InsightCohort",
    "InsightDay",
    "InsightFirstResponse",
    "LoginCode",
    "LoginSession",
    "Mandate",
    "Message",
    "Notice",
    "NoticeJob",
    "NoticeJobRejection",
    "NoticeTemplate",
    "OutboxItem",
    "Party",
    "PrintJob",
    "ProcessingActivity",
    "ReferenceCounter",
    "ReviewItem",
    "StaffMember",
    "Team",
    "TeamMembership",
    "Timer",
    "WebhookDelivery",
    "WebhookSubscription",
]
