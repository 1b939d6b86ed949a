"""The authorization matrix's table: every route the app serves, how to call it with the
owner's (or agency A's) objects, and who may call it.

Rules:
- ``theirs``: the route reads or changes something of the owner's (or of agency A's); every
  intruder is refused (401, 403, 404, a login redirect for pages, or the route's documented
  "not yours" answer) and learns nothing.
- ``own``: the route answers about the caller themselves (their cases, their queue, their
  preferences); an intruder gets their own answer, with nothing of the owner's in it.
- ``public``: no login needed (health, login, OIDC, static files, the API description);
  ``reason`` says why. Tried as every intruder: nothing of the owner's in the answer.
- ``secret``: called by a provider or scraper with a shared secret or signature none of the
  intruders holds; all are refused.
- ``dev``: the development outbox, served only in development and test (asserted separately:
  absent in production). Not tried: it shows what the hub sent, to anyone, by design.

``allowed`` names intruders the design lets through, with the reason (the shared review
queue, the desk's "no wrong door" search); such a pair is not tried when the route changes
something. ``xfail`` names known leaks, each with its reason (strict: a fix turns it red).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.hardening.world import AGENCY_A, DOCUMENT_NAME, OWNER_NAME, PNG, World

Rule = Literal["theirs", "own", "public", "secret", "dev"]
Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Entry:
    method: str
    path: str
    rule: Rule
    rightful: str | None = None  # owner, staff_a, key_a or rep_live: proved
    reason: str = ""
    body: Body | None = None  # httpx keyword arguments: json=, content=, files=, data=
    query: Callable[[World], dict[str, str]] | None = None  # for intruders only
    values: Mapping[str, Callable[[World], str]] = field(default_factory=dict)
    also: frozenset[int] = frozenset()  # more statuses this route answers for "not yours"
    allowed: Mapping[str, str] = field(default_factory=dict)
    sees: frozenset[str] = frozenset()  # secrets (World.secrets' names) the allowed may see
    xfail: Mapping[str, str] = field(default_factory=dict)
    page: bool = False
    refusal_says: str = ""  # the refusal's answer holds this (for an ``also`` status)
    reads: bool = False  # a POST that only reads (a search): tried as the allowed, too
    # Tried as one intruder only: a staff login reads no credential of the caller's, and the
    # password check it runs even for an unknown address costs a second each time.
    once: bool = False
    ends_session: bool = False  # ends the caller's login: tried with a fresh one

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def json_body(make: Callable[[World], Any]) -> Body:
    return lambda w: {"json": make(w)}


def const(value: Any) -> Body:
    return lambda w: {"json": value}


def form(**fields: Callable[[World], str] | str) -> Body:
    return lambda w: {
        "data": {k: (v(w) if callable(v) else v) for k, v in fields.items()},
    }


def upload_form(w: World) -> dict[str, Any]:
    return {"files": {"file": (DOCUMENT_NAME, PNG, "image/png")}}


def case_id(w: World) -> str:
    return str(w.case_id)


def owner_id(w: World) -> str:
    return str(w.owner_id)


def as_party(w: World) -> dict[str, str]:
    return {"party": str(w.owner_id)}


def agency_a(w: World) -> dict[str, str]:
    return {"agency": AGENCY_A}


def print_job(w: World) -> str:
    return str(w.print_job_id)


NO_SUCH = "00000000-0000-4000-8000-000000000000"
REVIEW_QUEUE = (
    "the review queue holds what arrived without a case; it belongs to no agency yet, so "
    "staff of every agency work it (DESIGN.md: no wrong door)"
)
DESK_SEARCH = (
    "no wrong door: at a desk, staff of any agency may find a party's cases (title, agency, "
    "stage), logged (DESIGN.md, Cases and agencies)"
)
MANDATE_RECORD = (
    "a representative's own list of the mandates they held names the party they held it for "
    "(name and id), also after it ended; nothing of the party's cases"
)
NOT_YOURS_FORM = (
    "the review item's page again with 'no such case' (422), as for a case that does not exist"
)
# What a desk search shows: the party and their cases' titles, agencies and stages.
CASE_LIST = frozenset({"owner_name", "owner_id", "bsn", "case_reference", "case_id"})
AGENCY_OPENS = "an agency opens a case at its own agency for any citizen it names by BSN"
CLOUDEVENT = {
    "specversion": "1.0",
    "id": "evt-intruder-1",
    "source": "urn:nl:rdw:zaaksysteem",
    "type": "nl.interactionhub.case.stage-reached",
    "datacontenttype": "application/json",
    "data": {"stage": "assessment"},
}
NDJSON_ROW = {"topic": "allowances", "template": "rent", "personalisation": {}}
RAW_MAIL = (
    b"From: Onbekend <onbekend@example.nl>\r\nTo: zaak@hub.test\r\nSubject: Hallo\r\n"
    b"Message-ID: <intruder@example.nl>\r\n\r\nHallo.\r\n"
)

API: list[Entry] = [
    # --- public --------------------------------------------------------------------------
    Entry("GET", "/healthz", "public", reason="liveness probe, names nothing"),
    Entry("GET", "/readyz", "public", reason="readiness probe, names nothing"),
    Entry("GET", "/openapi.json", "public", reason="the API description"),
    Entry("GET", "/docs", "public", reason="the API explorer page"),
    Entry("GET", "/docs/oauth2-redirect", "public", reason="the API explorer's OAuth page"),
    Entry("GET", "/redoc", "public", reason="the API reference page"),
    Entry("GET", "/static", "public", reason="CSS, script and images of the pages"),
    Entry(
        "POST",
        "/api/auth/citizen/code",
        "public",
        reason="asking a login code; the same answer for known and unknown addresses",
        body=const({"address": "onbekend@example.nl"}),
    ),
    Entry(
        "POST",
        "/api/auth/citizen/session",
        "public",
        reason="logging in with a code",
        body=const({"address": "onbekend@example.nl", "code": "000000"}),
    ),
    Entry(
        "POST",
        "/api/auth/staff/session",
        "public",
        reason="staff logging in",
        body=const({"email": "niemand@rdw.test", "password": "wrong", "totp": "000000"}),
        once=True,
    ),
    Entry("GET", "/api/auth/oidc/login", "public", reason="the start of an OIDC login"),
    Entry(
        "GET",
        "/api/auth/oidc/callback",
        "public",
        reason="the OIDC provider's redirect back",
        query=lambda w: {"code": "x", "state": "y"},
    ),
    Entry("DELETE", "/api/auth/session", "own", ends_session=True),
    Entry("GET", "/api/me", "own"),
    # --- shared secrets and signatures -----------------------------------------------------
    Entry("GET", "/metrics", "secret", reason="HUB_METRICS_TOKEN"),
    Entry(
        "POST",
        "/api/inbound/email",
        "secret",
        reason="HUB_INBOUND_MAIL_SECRET",
        body=lambda w: {"content": RAW_MAIL, "headers": {"Content-Type": "message/rfc822"}},
    ),
    Entry(
        "POST",
        "/api/sms/inbound",
        "secret",
        reason="Twilio's signature",
        body=form(MessageSid="SM1", From="+31612345678", Body="Hallo"),
    ),
    Entry(
        "POST",
        "/api/sms/status",
        "secret",
        reason="Twilio's signature",
        body=form(MessageSid="SM1", MessageStatus="delivered"),
    ),
    # --- development only ------------------------------------------------------------------
    Entry("GET", "/api/dev/outbox", "dev", reason="development outbox"),
    Entry("GET", "/dev/outbox", "dev", reason="development outbox"),
    Entry("GET", "/dev/outbox/{item_id}.eml", "dev", reason="development outbox"),
    Entry("GET", "/dev/outbox/{item_id}.pdf", "dev", reason="development outbox"),
    # --- cases -----------------------------------------------------------------------------
    Entry(
        "POST",
        "/api/cases",
        "theirs",
        rightful="staff_a",
        body=json_body(
            lambda w: {"journey": "vraag", "party": {"bsn": w.owner_bsn, "name": OWNER_NAME}}
        ),
        allowed={"staff_b": AGENCY_OPENS, "key_b": AGENCY_OPENS},
    ),
    Entry("GET", "/api/cases", "own"),
    Entry("GET", "/api/cases/{case_id}", "theirs", rightful="owner"),
    Entry(
        "POST",
        "/api/cases/{case_id}/actions",
        "theirs",
        rightful="staff_a",
        body=const({"kind": "withdraw"}),
    ),
    Entry("GET", "/api/cases/{case_id}/events", "theirs", rightful="owner"),
    Entry("GET", "/api/me/cases", "theirs", rightful="rep_live", query=as_party),
    Entry(
        "POST",
        "/api/cases/{case_id}/notes",
        "theirs",
        rightful="staff_a",
        body=const({"text": "Een notitie van buiten"}),
    ),
    Entry("GET", "/api/cases/{case_id}/messages", "theirs", rightful="owner"),
    Entry(
        "POST",
        "/api/cases/{case_id}/messages",
        "theirs",
        rightful="owner",
        body=const({"body": "Een bericht van buiten"}),
    ),
    Entry("GET", "/api/cases/{case_id}/documents", "theirs", rightful="owner"),
    Entry("POST", "/api/cases/{case_id}/documents", "theirs", rightful="owner", body=upload_form),
    Entry("GET", "/api/documents/{document_id}", "theirs", rightful="owner"),
    Entry("GET", "/api/cases/{case_id}/summary.pdf", "theirs", rightful="owner"),
    Entry(
        "POST",
        "/api/cloudevents",
        "theirs",
        rightful="key_a",
        body=lambda w: {
            "content": json.dumps({**CLOUDEVENT, "subject": str(w.case_id)}),
            "headers": {"Content-Type": "application/cloudevents+json"},
        },
    ),
    # --- chat ------------------------------------------------------------------------------
    Entry(
        "POST",
        "/api/chats",
        "theirs",
        rightful="owner",
        body=json_body(lambda w: {"case_id": str(w.case_id), "text": "Hallo van buiten"}),
    ),
    Entry("GET", "/api/chats/queue", "own"),
    Entry("GET", "/api/chats/{conversation_id}", "theirs", rightful="owner"),
    Entry("POST", "/api/chats/{conversation_id}/pickup", "theirs", rightful="staff_a"),
    Entry(
        "POST",
        "/api/chats/{conversation_id}/handover",
        "theirs",
        rightful="staff_a",
        body=const({"to_agency_id": "rdw", "note": "Over naar de RDW"}),
    ),
    Entry("POST", "/api/chats/{conversation_id}/close", "theirs", rightful="owner"),
    Entry(
        "PUT",
        "/api/chats/{conversation_id}/reply-channel",
        "theirs",
        rightful="owner",
        body=const({"channel": "email"}),
    ),
    Entry(
        "POST",
        "/api/chats/{conversation_id}/attach",
        "theirs",
        rightful="staff_a",
        body=json_body(lambda w: {"case_id": str(w.case_id)}),
    ),
    Entry(
        "POST",
        "/api/chats/{conversation_id}/messages",
        "theirs",
        rightful="owner",
        body=const({"text": "Regel van buiten"}),
    ),
    Entry(
        "POST",
        "/api/chats/{conversation_id}/notes",
        "theirs",
        rightful="staff_a",
        body=const({"text": "Notitie van buiten"}),
    ),
    Entry("POST", "/api/live/tickets", "own"),
    # --- desk and review queue -------------------------------------------------------------
    Entry(
        "POST",
        "/api/desk/search",
        "theirs",
        rightful="staff_a",
        body=json_body(lambda w: {"bsn": w.owner_bsn, "purpose": "vragen-beantwoorden"}),
        allowed={"staff_b": DESK_SEARCH},
        reads=True,
        sees=CASE_LIST,
    ),
    Entry(
        "POST",
        "/api/desk/cases/{case_id}/visits",
        "theirs",
        rightful="staff_a",
        body=const({"topic": "Bezoek van buiten", "identity_document": "passport"}),
    ),
    Entry(
        "POST",
        "/api/desk/cases/{case_id}/follow-up",
        "theirs",
        rightful="staff_a",
        body=const({"channel": "email"}),
    ),
    Entry("GET", "/api/review-items", "own", allowed={"staff_b": REVIEW_QUEUE}),
    Entry(
        "GET",
        "/api/review-items/{item_id}",
        "theirs",
        rightful="staff_a",
        allowed={"staff_b": REVIEW_QUEUE},
    ),
    Entry(
        "POST",
        "/api/review-items/{item_id}/attach",
        "theirs",
        rightful="staff_a",
        body=json_body(lambda w: {"case_id": str(w.case_id)}),
    ),
    Entry(
        "POST",
        "/api/review-items/{item_id}/discard",
        "theirs",
        rightful="staff_a",
        body=const({"reason": "spam"}),
        allowed={"staff_b": REVIEW_QUEUE},
    ),
    Entry(
        "POST",
        "/api/review-items/{item_id}/verification",
        "theirs",
        rightful="staff_a",
        body=json_body(lambda w: {"party_id": str(w.owner_id)}),
    ),
    Entry(
        "POST",
        "/api/review-items/{item_id}/verification/confirm",
        "theirs",
        rightful="staff_a",
        body=const({"code": "000000"}),
        allowed={"staff_b": REVIEW_QUEUE},
    ),
    # --- parties, preferences, mandates, access log ----------------------------------------
    Entry(
        "POST",
        "/api/parties/search",
        "theirs",
        rightful="staff_a",
        body=json_body(lambda w: {"bsn": w.owner_bsn, "purpose": "vragen-beantwoorden"}),
        allowed={"staff_b": DESK_SEARCH},
        reads=True,
        sees=CASE_LIST,
    ),
    Entry("GET", "/api/me/preferences", "own"),
    Entry("PUT", "/api/me/preferences", "own", body=const({"language": "nl"})),
    Entry("GET", "/api/me/preferences/history", "own"),
    Entry(
        "PUT",
        "/api/parties/{party_id}/preferences",
        "theirs",
        rightful="staff_a",
        body=const({"channel": "email"}),
    ),
    Entry("GET", "/api/parties/{party_id}/preferences/history", "theirs", rightful="staff_a"),
    Entry(
        "GET",
        "/api/me/mandates",
        "own",
        allowed={"rep_expired": MANDATE_RECORD, "rep_revoked": MANDATE_RECORD},
        sees=frozenset({"owner_id", "owner_name"}),
    ),
    Entry(
        "POST",
        "/api/me/mandates",
        "own",
        body=json_body(
            lambda w: {"representative_bsn": w.other_bsn, "representative_name": "Petra Anders"}
        ),
    ),
    Entry("POST", "/api/me/mandates/{mandate_id}/revoke", "theirs", rightful="owner"),
    Entry("GET", "/api/me/access-log", "own"),
    Entry(
        "GET",
        "/api/me/export",
        "own",
        rightful="owner",
        reason="the caller's own archive; a representative gets theirs, never the represented's",
        allowed={"rep_expired": MANDATE_RECORD, "rep_revoked": MANDATE_RECORD},
        sees=frozenset({"owner_id", "owner_name"}),
    ),
    # --- letters ---------------------------------------------------------------------------
    Entry("GET", "/api/print-jobs", "own"),
    Entry(
        "GET",
        "/api/print-jobs/{job_id}/pdf",
        "theirs",
        rightful=None,  # the world's letter has no PDF stored: not proved
        values={"job_id": print_job},
    ),
    Entry(
        "POST",
        "/api/print-jobs/{job_id}/collected",
        "theirs",
        rightful="staff_a",
        values={"job_id": print_job},
    ),
    Entry(
        "POST",
        "/api/print-jobs/{job_id}/posted",
        "theirs",
        rightful="staff_a",
        values={"job_id": print_job},
    ),
    # --- consent and notices ---------------------------------------------------------------
    Entry("GET", "/api/consent-topics", "own"),
    Entry(
        "POST",
        "/api/consent-topics",
        "own",
        body=const(
            {
                "code": "intruder-topic",
                "title": {"nl": "Onderwerp", "en": "Topic"},
                "processing_activity": "proactive_info",
            }
        ),
    ),
    Entry("GET", "/api/me/consents", "theirs", rightful="owner", query=as_party),
    Entry(
        "PUT",
        "/api/me/consents/{topic_id}",
        "theirs",
        rightful="owner",
        query=as_party,
        body=const({"granted": False}),
    ),
    Entry(
        "GET",
        "/api/parties/{party_id}/consents",
        "own",
        reason="the party's answers to the calling agency's own topics only",
    ),
    Entry("GET", "/api/parties/{party_id}/consents/{topic_id}/history", "theirs", rightful="key_a"),
    Entry(
        "PUT",
        "/api/notice-templates/{code}/{channel}/{language}",
        "own",
        reason="writes the caller's own agency's template of that code",
        body=const({"subject": "Onderwerp", "body": "Tekst"}),
    ),
    Entry("GET", "/api/notice-templates", "own"),
    Entry(
        "POST",
        "/api/notice-templates/{code}/preview",
        "own",
        reason="previews the caller's own agency's template of that code",
        body=const({"channel": "portal", "language": "nl", "personalisation": {}}),
    ),
    Entry(
        "POST",
        "/api/notices",
        "theirs",
        reason="B's notice under B's own topic (made above), tied to A's case: refused with "
        "the answer for a case that does not exist",
        body=json_body(
            lambda w: {
                "bsn": w.owner_bsn,
                "topic": "intruder-topic",
                "template": "rent",
                "personalisation": {},
                "case_id": str(w.case_id),
            }
        ),
        also=frozenset({422}),
        refusal_says="The case is not one of this agency's cases of this party.",
    ),
    Entry("GET", "/api/notices/{notice_id}", "theirs", rightful="key_a"),
    Entry("GET", "/api/me/notices", "own"),
    Entry("POST", "/api/me/notices/{notice_id}/read", "theirs", rightful="owner"),
    Entry(
        "POST",
        "/api/notice-jobs",
        "own",
        reason="a bulk job of the caller's own agency",
        body=lambda w: {
            "content": json.dumps({**NDJSON_ROW, "bsn": w.other_bsn}).encode(),
            "headers": {"Content-Type": "application/x-ndjson"},
        },
    ),
    Entry("GET", "/api/notice-jobs", "own"),
    Entry("GET", "/api/notice-jobs/{job_id}", "theirs", rightful="key_a"),
    Entry("POST", "/api/notice-jobs/{job_id}/cancel", "theirs", rightful="key_a"),
    Entry("GET", "/api/notice-jobs/{job_id}/rejections", "theirs", rightful="key_a"),
    # --- webhooks --------------------------------------------------------------------------
    Entry("GET", "/api/webhook-subscriptions", "own"),
    Entry(
        "POST",
        "/api/webhook-subscriptions",
        "own",
        body=const(
            {
                "url": "https://rdw.example/hooks",
                "event_types": ["nl.interactionhub.case.message-received"],
            }
        ),
    ),
    Entry("DELETE", "/api/webhook-subscriptions/{subscription_id}", "theirs", rightful="key_a"),
    Entry("GET", "/api/webhook-deliveries", "own"),
    Entry("POST", "/api/webhook-deliveries/{delivery_id}/retry", "theirs", rightful="key_a"),
]

API += [
    Entry("GET", "/api/insights", "theirs", rightful="staff_a", query=agency_a),
    Entry("GET", "/api/insights.csv", "theirs", rightful="staff_a", query=agency_a),
]

WEBSOCKET = Entry("WS", "/api/live", "theirs", rightful="owner")

ACT = {"party_id": owner_id}
PAGES: list[Entry] = [
    Entry("GET", "/", "public", page=True, reason="sends the browser where it belongs"),
    Entry("GET", "/language/{lang}", "public", page=True, reason="the language switch"),
    Entry("GET", "/login", "public", page=True, reason="the citizens' login page"),
    Entry(
        "POST",
        "/login",
        "public",
        page=True,
        reason="asking a login code",
        body=form(address="onbekend@example.nl"),
    ),
    Entry(
        "POST",
        "/login/code",
        "public",
        page=True,
        reason="logging in with a code",
        body=form(address="onbekend@example.nl", code="000000"),
    ),
    Entry("POST", "/logout", "own", page=True, ends_session=True),
    Entry("GET", "/console/login", "public", page=True, reason="the staff login page"),
    Entry(
        "POST",
        "/console/login",
        "public",
        page=True,
        reason="staff logging in",
        body=form(email="niemand@rdw.test", password="wrong", totp="000000"),
        once=True,
    ),
    Entry("GET", "/my-cases", "own", page=True),
    Entry("GET", "/cases/{case_id}", "theirs", page=True, rightful="owner"),
    Entry("POST", "/cases/{case_id}/documents", "theirs", page=True, body=upload_form),
    Entry("GET", "/my-data", "own", page=True),
    Entry("GET", "/notices", "own", page=True),
    Entry("GET", "/notices/{notice_id}", "theirs", page=True, rightful="owner"),
    Entry("GET", "/permissions", "own", page=True),
    Entry("POST", "/permissions", "own", page=True, body=form(topic="1", do="grant")),
    Entry("GET", "/console", "own", page=True),
    Entry("POST", "/console/chats/{conversation_id}/pickup", "theirs", page=True),
    Entry(
        "POST",
        "/console/chats/{conversation_id}/handover",
        "theirs",
        page=True,
        body=form(to="agency:rdw", note="Over"),
    ),
    Entry("GET", "/console/cases/{case_id}", "theirs", page=True, rightful="staff_a"),
    Entry(
        "POST",
        "/console/cases/{case_id}/reply",
        "theirs",
        page=True,
        body=form(text="Antwoord van buiten", channel="email"),
    ),
    Entry(
        "POST",
        "/console/cases/{case_id}/notes",
        "theirs",
        page=True,
        body=form(text="Notitie van buiten"),
    ),
    Entry(
        "POST",
        "/console/cases/{case_id}/actions",
        "theirs",
        page=True,
        body=form(kind="withdraw"),
    ),
    Entry("POST", "/live/ticket", "own", page=True),
    Entry(
        "POST",
        "/cases/{case_id}/messages",
        "theirs",
        page=True,
        body=form(text="Bericht van buiten", body="Bericht van buiten"),
    ),
    Entry(
        "POST",
        "/cases/{case_id}/chat/reply-channel",
        "theirs",
        page=True,
        body=form(channel="email"),
    ),
    Entry("POST", "/cases/{case_id}/chat/close", "theirs", page=True),
    Entry("GET", "/questions/new", "own", page=True),
    Entry(
        "POST",
        "/questions",
        "own",
        page=True,
        body=form(agency="rdw", text="Een vraag van mijzelf"),
    ),
    Entry("GET", "/console/chats/{conversation_id}", "theirs", page=True, rightful="staff_a"),
    Entry(
        "POST",
        "/console/chats/{conversation_id}/messages",
        "theirs",
        page=True,
        body=form(text="Regel van buiten"),
    ),
    Entry("POST", "/console/chats/{conversation_id}/close", "theirs", page=True),
    Entry("GET", "/preferences", "own", page=True),
    Entry("POST", "/preferences", "own", page=True, body=form(channel="portal", language="nl")),
    Entry(
        "GET",
        "/representation",
        "own",
        page=True,
        allowed={"rep_expired": MANDATE_RECORD, "rep_revoked": MANDATE_RECORD},
        sees=frozenset({"owner_id", "owner_name"}),
    ),
    Entry(
        "POST",
        "/representation/mandates",
        "own",
        page=True,
        body=lambda w: {"data": {"bsn": w.other_bsn, "name": "Petra Anders"}},
    ),
    Entry(
        "POST",
        "/representation/revoke",
        "theirs",
        page=True,
        body=form(mandate_id=lambda w: str(w.mandate_id)),
    ),
    Entry(
        "POST", "/representation/act", "theirs", page=True, rightful="rep_live", body=form(**ACT)
    ),
    Entry("POST", "/representation/stop", "own", page=True),
    Entry("GET", "/representation/cases", "own", page=True, rightful="rep_live"),
    Entry("GET", "/console/desk", "own", page=True),
    Entry(
        "POST",
        "/console/desk/search",
        "theirs",
        page=True,
        body=lambda w: {"data": {"bsn": w.owner_bsn, "purpose": "vragen-beantwoorden"}},
        allowed={"staff_b": DESK_SEARCH},
        reads=True,
        sees=CASE_LIST,
    ),
    Entry("GET", "/console/desk/cases/{case_id}", "theirs", page=True, rightful="staff_a"),
    Entry(
        "POST",
        "/console/desk/cases/{case_id}/visits",
        "theirs",
        page=True,
        body=form(topic="Bezoek", identity_document="passport"),
    ),
    Entry(
        "POST",
        "/console/desk/cases/{case_id}/follow-up",
        "theirs",
        page=True,
        body=form(channel="email"),
    ),
    Entry("GET", "/console/desk/cases/{case_id}/summary", "theirs", page=True, rightful="staff_a"),
    Entry("GET", "/console/insights", "own", page=True, query=agency_a),
    Entry("GET", "/console/review", "own", page=True, allowed={"staff_b": REVIEW_QUEUE}),
    Entry(
        "GET",
        "/console/review/{item_id}",
        "theirs",
        page=True,
        rightful="staff_a",
        allowed={"staff_b": REVIEW_QUEUE},
    ),
    Entry(
        "POST",
        "/console/review/{item_id}/attach",
        "theirs",
        page=True,
        body=lambda w: {"data": {"case_reference": w.case_reference}},
        also=frozenset({422}),
        reason=NOT_YOURS_FORM,
    ),
    Entry(
        "POST",
        "/console/review/{item_id}/discard",
        "theirs",
        page=True,
        body=form(reason="spam"),
        allowed={"staff_b": REVIEW_QUEUE},
    ),
    Entry(
        "POST",
        "/console/review/{item_id}/verification",
        "theirs",
        page=True,
        body=lambda w: {"data": {"case_reference": w.case_reference}},
        also=frozenset({422}),
        reason=NOT_YOURS_FORM,
    ),
    Entry(
        "POST",
        "/console/review/{item_id}/verification/confirm",
        "theirs",
        page=True,
        body=form(code="000000"),
        allowed={"staff_b": REVIEW_QUEUE},
    ),
]

TABLE: list[Entry] = [*API, WEBSOCKET, *PAGES]
