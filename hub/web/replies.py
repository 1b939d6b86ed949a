"""Canned replies: texts staff put into the reply box on a case and then adjust before
sending. They live in ``templates/replies/replies.yaml``, one title and text per language, and
are filled in with the case's and the staff member's names."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from hub.web.i18n import Language

REPLIES_FILE = Path(__file__).resolve().parents[2] / "templates" / "replies" / "replies.yaml"


class _Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    nl: str = Field(min_length=1)
    en: str = Field(min_length=1)


class CannedReplyDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9-]+$")
    title: _Texts
    text: _Texts


@dataclass(frozen=True)
class CannedReply:
    """A canned reply in one language, filled in for one case."""

    code: str
    title: str
    text: str


# Plain text that the page escapes where it shows it; the sandbox keeps a template from
# reaching anything but the values it is given.
_ENVIRONMENT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


@cache
def canned_reply_definitions(path: Path = REPLIES_FILE) -> tuple[CannedReplyDefinition, ...]:
    """The canned replies in the file, validated once per process."""
    with path.open(encoding="utf-8") as source:
        raw = yaml.safe_load(source) or []
    return tuple(CannedReplyDefinition.model_validate(entry) for entry in raw)


def canned_replies(lang: Language, values: dict[str, Any]) -> list[CannedReply]:
    """Every canned reply with its text in ``lang``, filled in with ``values`` (party_name,
    case_reference, case_title, agency_name, staff_name)."""
    return [
        CannedReply(
            code=reply.code,
            title=getattr(reply.title, lang),
            text=_ENVIRONMENT.from_string(getattr(reply.text, lang)).render(**values),
        )
        for reply in canned_reply_definitions()
    ]


def canned_reply(code: str, lang: Language, values: dict[str, Any]) -> CannedReply | None:
    """The canned reply ``code`` filled in, or None when there is no such reply."""
    return next((r for r in canned_replies(lang, values) if r.code == code), None)
