"""Inbound CloudEvents 1.0 from agencies' back-office systems, and the journey action each
one stands for.

Pure: no database, no network. The event types the hub understands (``subject`` is the
case's id or its reference, ``data`` a JSON object):

===============================================  ==========================================
type                                             data → journey action
===============================================  ==========================================
``nl.interactionhub.case.stage-reached``         ``{"stage"}`` → Advance(to=stage)
``nl.interactionhub.case.decided``               ``{"result", "note"?}`` → Decide
``nl.interactionhub.case.information-requested`` ``{"what", "until"?}`` → RequestInformation
``nl.interactionhub.case.suspended``             ``{"reason"}`` → Suspend
``nl.interactionhub.case.resumed``               ``{}`` → Resume
``nl.interactionhub.case.extended``              ``{"reason", "days", "unit"?}`` → Extend
===============================================  ==========================================

``until`` is a date (``YYYY-MM-DD``); ``unit`` is ``calendar`` (the default) or ``working``.
The action is dated the local day of the event's ``time`` (today when it has none, and never
a day to come), so a decision is dated when the back office took it, not when it arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from hub.errors import InvalidInput
from journeys.engine import (
    Action,
    Advance,
    Decide,
    Extend,
    RequestInformation,
    Resume,
    Suspend,
)

SPEC_VERSION = "1.0"
TYPE_PREFIX = "nl.interactionhub.case."
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"

# RFC 3339 date-time: a full date, "T" (or a space, or "t"), a time and a required offset.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# Attribute names: lower-case letters and digits only (CloudEvents 1.0, "Attribute Naming").
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
# The action's field names where the event's data calls them otherwise, for error locations.
_DATA_NAMES = {"to": "stage", "deadline": "until"}
_REQUIRED = ("specversion", "id", "source", "type")


@dataclass(frozen=True)
class CloudEvent:
    """One validated CloudEvent: its context attributes and its (JSON object) data."""

    id: str
    source: str
    type: str
    subject: str | None
    time: dt.datetime | None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def short_type(self) -> str:
        return self.type.removeprefix(TYPE_PREFIX)


def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 timestamp as an aware datetime; InvalidInput when it is not one."""
    if not _RFC3339.fullmatch(value):
        raise InvalidInput(
            "The attribute 'time' must be an RFC 3339 timestamp with an offset, "
            "such as 2026-11-28T10:00:00Z.",
            attribute="time",
        )
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("The attribute 'time' is not a valid date and time.") from None


def _string_attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"The attribute '{name}' must be a non-empty string.", attribute=name)
    return value


def event_from_structured(body: Any) -> CloudEvent:
    """A CloudEvent from its structured-mode JSON object; InvalidInput naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidInput("A CloudEvent in structured mode is a JSON object.")
    if "data_base64" in body:
        raise InvalidInput("Binary data ('data_base64') is not accepted: send JSON 'data'.")
    content_type = body.get("datacontenttype")
    if content_type is not None and not _is_json(str(content_type)):
        raise InvalidInput(
            "The attribute 'datacontenttype' must be application/json.",
            attribute="datacontenttype",
        )
    return _event(body, body.get("data"))


def event_from_binary(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """A CloudEvent from binary mode: ``ce-*`` headers for the attributes, the body its data.

    ``headers`` must be a case-insensitive mapping (as Starlette's ``Headers`` is).
    """
    attributes: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith("ce-"):
            # The HTTP binding percent-encodes what is not printable ASCII in header values.
            attributes[lowered[3:]] = unquote(value)
    content_type = headers.get("content-type", "")
    if body.strip() and not _is_json(content_type):
        raise InvalidInput(
            "Send the event's data as JSON (Content-Type: application/json), or the whole "
            f"event as {STRUCTURED}."
        )
    data = _json(body) if body.strip() else None
    return _event(attributes, data)


def events_from_batch(body: Any) -> list[Any]:
    """The raw events of a batch (each still to be parsed on its own, so each gets its answer)."""
    if not isinstance(body, list):
        raise InvalidInput("A batch of CloudEvents is a JSON array of events.")
    if not body:
        raise InvalidInput("The batch holds no events.")
    return body


def load_json(body: bytes) -> Any:
    """The request body as JSON; InvalidInput (not a traceback) when it is not JSON."""
    return _json(body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("The body is not valid JSON.") from None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _event(attributes: Mapping[str, Any], data: Any) -> CloudEvent:
    missing = [name for name in _REQUIRED if attributes.get(name) in (None, "")]
    if missing:
        raise InvalidInput(
            "The CloudEvent lacks required attributes: " + ", ".join(missing) + ".",
            missing=missing,
        )
    bad_names = sorted(
        str(name) for name in attributes if name != "data" and not _ATTRIBUTE_NAME.fullmatch(name)
    )
    if bad_names:
        raise InvalidInput(
            "Attribute names are lower-case letters and digits only: " + ", ".join(bad_names),
            attributes=bad_names,
        )
    version = attributes["specversion"]
    if version != SPEC_VERSION:
        raise InvalidInput(
            f"Only CloudEvents specversion {SPEC_VERSION} is accepted.", attribute="specversion"
        )
    event_id = _string_attribute(attributes, "id")
    source = _string_attribute(attributes, "source")
    kind = _string_attribute(attributes, "type")
    assert event_id is not None and source is not None and kind is not None
    if len(event_id) + len(source) > 290:
        raise InvalidInput("The attributes 'source' and 'id' are too long (290 characters).")
    raw_time = _string_attribute(attributes, "time")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidInput("The event's data must be a JSON object.", attribute="data")
    return CloudEvent(
        id=event_id,
        source=source,
        type=kind,
        subject=_string_attribute(attributes, "subject"),
        time=parse_time(raw_time) if raw_time is not None else None,
        data=data,
    )


def _advance(data: dict[str, Any], on: dt.date) -> Action:
    return Advance(on=on, to=data.get("stage"))


def _decide(data: dict[str, Any], on: dt.date) -> Action:
    return Decide(on=on, result=data.get("result"), note=data.get("note") or "")


def _request_information(data: dict[str, Any], on: dt.date) -> Action:
    return RequestInformation(on=on, what=data.get("what"), deadline=data.get("until"))


def _suspend(data: dict[str, Any], on: dt.date) -> Action:
    return Suspend(on=on, reason=data.get("reason"))


def _resume(data: dict[str, Any], on: dt.date) -> Action:
    return Resume(on=on)


def _extend(data: dict[str, Any], on: dt.date) -> Action:
    return Extend(
        on=on,
        reason=data.get("reason"),
        days=data.get("days"),
        unit=data.get("unit") or "calendar",
    )


ACTIONS: dict[str, Callable[[dict[str, Any], dt.date], Action]] = {
    "stage-reached": _advance,
    "decided": _decide,
    "information-requested": _request_information,
    "suspended": _suspend,
    "resumed": _resume,
    "extended": _extend,
}
TYPES = tuple(TYPE_PREFIX + name for name in ACTIONS)


def action_for(event: CloudEvent, on: dt.date) -> Action:
    """The journey action ``event`` stands for, dated ``on``; InvalidInput for a type the hub
    does not map or data the action cannot be made of."""
    build = ACTIONS.get(event.short_type) if event.type.startswith(TYPE_PREFIX) else None
    if build is None:
        raise InvalidInput(
            f"Unknown event type {event.type!r}; accepted: " + ", ".join(TYPES) + ".",
            attribute="type",
            accepted=list(TYPES),
        )
    try:
        return build(event.data, on)
    except ValidationError as error:
        raise InvalidInput(
            f"The data of a {event.type} event is not valid.",
            errors=[
                {
                    "loc": ["data", *[_DATA_NAMES.get(str(part), str(part)) for part in e["loc"]]],
                    "msg": e["msg"],
                }
                for e in error.errors()
            ],
        ) from None
