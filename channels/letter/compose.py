"""What a letter says: the text below the subject, from Jinja2 templates per language.

The templates carry the same names as the mail channel's (``reply``, and the notices the
journey engine sends: ``case_started``, ``stage_entered``, ``information_requested``,
``case_decided`` …), as ``<name>.<nl|en>.txt.j2`` in ``channels/letter/templates/``; a name
without a letter template gets the generic ``letter`` one. The printed status summary is
``status_summary``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from channels.letter.layout import Letter, long_date
from hub.ports import Outbound
from journeys.engine import StatusView

TEMPLATES = Path(__file__).parent / "templates"
GENERIC = "letter"
TEMPLATE_NAME = re.compile(r"[a-z][a-z0-9_]{0,60}")

# A letter is plain text drawn into a PDF, not HTML: escaping would print "&amp;" on paper.
_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)
_environment.filters["long_date"] = long_date


def language_of(language: str | None) -> str:
    return "en" if language == "en" else "nl"


def render_text(name: str, language: str, values: dict[str, Any]) -> str:
    """The template ``name`` in ``language`` (the generic letter when there is none)."""
    lang = language_of(language)
    candidates = [f"{GENERIC}.{lang}.txt.j2"]
    if TEMPLATE_NAME.fullmatch(name):
        candidates.insert(0, f"{name}.{lang}.txt.j2")
    template = _environment.select_template(candidates)
    text = template.render(lang=lang, **values)
    # Templates leave blank lines where an optional part is missing; keep at most one.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def portal_url(base_url: str, case_path: str | None) -> str | None:
    if not case_path:
        return None
    return base_url.rstrip("/") + "/" + case_path.lstrip("/")


def compose_letter(message: Outbound, *, today: dt.date, base_url: str) -> Letter:
    """The letter for an outbox message: its template's text around the message body."""
    context = message.context
    lang = language_of(message.language)
    agency_name = str(context.get("agency_name") or "")
    party_name = str(context.get("party_name") or "")
    reference = context.get("case_reference")
    values = {
        "agency_name": agency_name,
        "party_name": party_name,
        "case_reference": reference,
        "case_title": context.get("case_title"),
        "author_name": context.get("author_name"),
        "subject": message.subject,
        "body": message.body.strip(),
        "today": today,
    }
    return Letter(
        sender=agency_name or "Interaction Hub",
        recipient_name=party_name,
        address=message.recipient,
        date=long_date(today, lang),
        subject=message.subject or (str(context.get("case_title") or "") or agency_name),
        body=render_text(message.template, lang, values),
        language=lang,
        reference=str(reference) if reference else None,
        portal_url=portal_url(base_url, context.get("case_path")),
    )


def compose_summary(
    *,
    view: StatusView,
    language: str,
    case_title: str,
    case_reference: str,
    case_path: str,
    agency_name: str,
    party_name: str,
    address: str,
    contact_name: str | None,
    today: dt.date,
    base_url: str,
) -> Letter:
    """The printed status summary: where the case stands, in the letter layout."""
    lang = language_of(language)
    stage_name = next((s.name for s in view.stages if s.state == "current"), None)
    if stage_name is None and view.stages:
        stage_name = view.stages[min(view.stage_index, len(view.stages)) - 1].name
    values = {
        "view": view,
        "stage_name": stage_name or "",
        "case_title": case_title,
        "case_reference": case_reference,
        "agency_name": agency_name,
        "party_name": party_name,
        "contact_name": contact_name,
        "today": today,
    }
    subject = (
        f"Status of your case: {case_title}" if lang == "en" else f"Stand van uw zaak: {case_title}"
    )
    return Letter(
        sender=agency_name,
        recipient_name=party_name,
        address=address,
        date=long_date(today, lang),
        subject=subject,
        body=render_text("status_summary", lang, values),
        language=lang,
        reference=case_reference,
        contact=contact_name,
        portal_url=portal_url(base_url, case_path),
    )
