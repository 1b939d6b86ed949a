"""The log line formats and the redacting filter, line by line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.config import Settings
from hub.observability.logging import (
    AccessFields,
    JsonFormatter,
    LibraryDetail,
    Redactor,
    RequestId,
    TextFormatter,
    logging_config,
    redact,
    request_id_var,
)


@pytest.fixture
def written() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing through the hub's filters and JSON formatter."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(JsonFormatter())
    for hub_filter in (AccessFields(), LibraryDetail(), RequestId(), Redactor()):
        handler.addFilter(hub_filter)
    logger = logging.getLogger("hub.test_logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, output
    logger.removeHandler(handler)


def lines(output: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_request_id_and_extra_fields(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, output = written
    token = request_id_var.set("req-abcdef12")
    try:
        logger.info("Delivered %s", "a reply", extra={"channel": "email", "attempts": 2})
    finally:
        request_id_var.reset(token)
    logger.warning("Outside a request")

    first, second = lines(output)
    assert first["message"] == "Delivered a reply"
    assert (first["level"], first["logger"]) == ("INFO", "hub.test_logging")
    assert (first["request_id"], first["channel"], first["attempts"]) == (
        "req-abcdef12",
        "email",
        2,
    )
    assert str(first["time"]).endswith("+00:00")
    assert second["request_id"] is None


def test_a_traceback_is_one_field_and_redacted(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, output = written
    try:
        raise RuntimeError("lookup failed for code=123456 and Bearer abc.def.ghi")
    except RuntimeError:
        logger.exception("The request failed")

    [line] = lines(output)
    exception = str(line["exception"])
    assert exception.startswith("Traceback") and "RuntimeError" in exception
    assert "123456" not in exception and "abc.def.ghi" not in exception


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a"),
        ("key hub_abcd1234_Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4 refused", "Zm9vYmFyYmF6"),
        ("GET /api/me?token=s3cr3t&x=1", "s3cr3t"),
        ("POST /api/auth/citizen/session code=482913", "482913"),
        ('{"address": "jan@example.nl", "code": "482913"}', "482913"),
        ("{'password': 'correct horse', 'email': 'a@b.nl'}", "correct horse"),
        ("citizen 999990019 opened a case", "999990019"),
        ("session " + "ab12" * 16, "ab12" * 16),
        (
            "(sqlite3.IntegrityError) refused [SQL: INSERT INTO message (body) VALUES (?)]\n"
            "[parameters: ('Mijn schuld is 4300 euro',)]\n(Background on this error at: x)",
            "4300 euro",
        ),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "[redacted]" in redact(text) or "hidden" in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "case 0b7c9a4e-1d2f-4e5a-9b8c-123456789012 advanced",  # a UUID keeps its digits
        "text to +31612345678 sent",  # a phone number is not a BSN
        "took 0.123456789 seconds",
        "reference VR-2026-000001, 12 attempts",
    ],
)
def test_ids_and_numbers_that_are_not_secrets_stay(text: str) -> None:
    assert redact(text) == text


def test_library_lines_keep_what_happened_and_lose_the_data(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    _, output = written
    handler = logging.getLogger("hub.test_logging").handlers[0]
    for name, level, template, args in [
        ("sqlalchemy.engine.Engine", logging.INFO, "[%s] %r", ("generated in 0.001s", ("body",))),
        ("sqlalchemy.engine.Engine", logging.DEBUG, "Row %r", (("a row with a body",),)),
        ("aiosqlite", logging.DEBUG, "executing %s", (print,)),
        ("mail.log", logging.DEBUG, "DATA readline: %s", (b"the mail's text",)),
        ("mail.log", logging.INFO, "%r sender: %s", ("peer", "jan@example.nl")),
    ]:
        handler.handle(logging.LogRecord(name, level, __file__, 1, template, args, None))

    messages = [line["message"] for line in lines(output)]
    assert messages == [
        "[generated in 0.001s] '[hidden]'",
        "Row '[hidden]'",
        "executing print",
        "'peer' sender: jan@example.nl",
    ]


def test_uvicorn_access_lines_become_fields(
    written: tuple[logging.Logger, io.StringIO],
) -> None:
    _, output = written
    handler = logging.getLogger("hub.test_logging").handlers[0]
    args = ("127.0.0.1:5000", "GET", "/api/me?code=123456", "1.1", 401)
    handler.handle(
        logging.LogRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
        )
    )
    [line] = lines(output)
    assert (line["method"], line["status"], line["http_version"]) == ("GET", 401, "1.1")
    assert line["path"] == "/api/me?code=[redacted]"
    assert "123456" not in json.dumps(line)


def test_text_lines_for_development() -> None:
    record = logging.LogRecord("hub.worker", logging.INFO, __file__, 1, "Round done", None, None)
    record.request_id = "req-abcdef12"
    assert TextFormatter().format(record).endswith("INFO    hub.worker [req-abcdef12] Round done")


def test_the_format_follows_the_environment_unless_set(tmp_path: Path) -> None:
    assert Settings(environment="development", data_dir=tmp_path).log_style == "text"
    assert Settings(environment="test", data_dir=tmp_path).log_style == "json"
    assert Settings(environment="test", log_format="text", data_dir=tmp_path).log_style == "text"
    config = logging_config("json", "DEBUG")
    handler = config["handlers"]["stderr"]
    assert handler["formatter"] == "json"
    assert handler["filters"] == ["access_fields", "library_detail", "request_id", "redact"]
    # uvicorn's loggers write through the same handler.
    assert all(
        config["loggers"][name]["propagate"]
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    )
