"""Notice templates: parse errors named by line, placeholders, the sandbox, the preview."""

from __future__ import annotations

import httpx
import pytest

from hub.db import Database
from hub.errors import InvalidInput
from hub.notices.templates import check_template, render
from tests.builders import bearer
from tests.notices.conftest import World


def test_a_template_that_does_not_parse_is_refused_naming_the_line() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_template(subject="Hello", body="Line one\nLine two {{ name }\nLine three")
    assert refused.value.extra == {"part": "body", "line": 2}


def test_every_missing_placeholder_is_listed() -> None:
    with pytest.raises(InvalidInput) as refused:
        render(
            subject="{{ topic }}",
            body="{% for x in items %}{{ x }}{% endfor %} {{ name }} {{ name }} {{ date }}",
            values={"name": "Piet"},
        )
    assert refused.value.extra["missing"] == ["date", "items", "topic"]


def test_text_is_not_escaped_and_the_sandbox_holds() -> None:
    rendered = render(subject="Re: {{ a }}", body="{{ a }} & co", values={"a": "<b>Jan</b>"})
    assert rendered.body == "<b>Jan</b> & co"
    with pytest.raises(InvalidInput):
        render(subject="", body="{{ a.__class__.__mro__ }}", values={"a": "x"})


async def test_put_list_and_preview(
    client: httpx.AsyncClient, database: Database, world: World, toeslagen_key: str, rdw_key: str
) -> None:
    headers = bearer(toeslagen_key)
    bad = await client.put(
        "/api/notice-templates/expiry/sms/nl",
        json={"subject": "", "body": "Verloopt op\n{% if x %}{{ datum }}"},
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json()["line"] == 2

    made = await client.put(
        "/api/notice-templates/expiry/sms/nl",
        json={"subject": "", "body": "Uw rijbewijs verloopt op {{ datum }}, {{ naam }}."},
        headers=headers,
    )
    assert made.status_code == 200, made.text
    assert made.json()["placeholders"] == ["datum", "naam"]

    listed = await client.get("/api/notice-templates", headers=headers)
    assert ("expiry", "sms", "nl") in {
        (t["code"], t["channel"], t["language"]) for t in listed.json()
    }
    # Another agency has templates of its own only.
    assert (await client.get("/api/notice-templates", headers=bearer(rdw_key))).json() == []

    missing = await client.post(
        "/api/notice-templates/expiry/preview",
        json={"channel": "sms", "language": "nl", "personalisation": {}},
        headers=headers,
    )
    assert missing.status_code == 422
    assert missing.json()["missing"] == ["datum", "naam"]

    preview = await client.post(
        "/api/notice-templates/expiry/preview",
        json={
            "channel": "sms",
            "language": "nl",
            "personalisation": {"datum": "3 maart", "naam": "Zoë " + "x" * 70},
        },
        headers=headers,
    )
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["body"].startswith("Uw rijbewijs verloopt op 3 maart, Zoë")
    # The ë makes it UCS-2: over 70 characters is two parts.
    assert (shown["segments"], shown["encoding"]) == (2, "UCS-2")

    unknown = await client.post(
        "/api/notice-templates/expiry/preview",
        json={"channel": "email", "language": "nl", "personalisation": {}},
        headers=headers,
    )
    assert unknown.status_code == 404
