"""Logging for ``hub serve``, ``hub worker`` and ``hub mail-receiver``, set up in one place.

Every line is one JSON object (``HUB_LOG_FORMAT=json``, the default outside development) or
one readable line (``text``, the development default), and carries the id of the request it
belongs to: :class:`hub.observability.middleware.RequestContext` puts it in
:data:`request_id_var`, and every line logged while the request runs reads it from there —
uvicorn's access log line included.

Secrets, BSNs and message bodies are kept out of log lines at their source. The
:class:`Redactor` filter on every handler is the safety net for what slips through: it
rewrites a line before it is formatted, so no handler ever sees the original.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import re
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

LogFormat = Literal["json", "text"]

request_id_var: ContextVar[str | None] = ContextVar("hub_request_id", default=None)

REDACTED = "[redacted]"

# What a log line must never hold, and what stands in its place. The patterns aim wide: a
# number or a hash hidden for nothing costs less than one secret shown.
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization headers and bearer tokens, whatever the scheme's case.
    (re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+"), rf"\1 {REDACTED}"),
    # The hub's agency API keys: hub_<prefix>_<secret>.
    (re.compile(r"\bhub_[a-z0-9]{8}_[A-Za-z0-9_\-]{16,}"), REDACTED),
    # key=value pairs in query strings, forms and messages.
    (
        re.compile(
            r"(?i)\b(code|token|ticket|secret|password|passwd|api_key|apikey|key|signature"
            r"|authorization|session)=[^&\s\"',;]+"
        ),
        rf"\1={REDACTED}",
    ),
    # The same names as JSON or Python dict members.
    (
        re.compile(
            r"(?i)([\"'](?:code|token|ticket|secret|password|api_key|authorization|body"
            r"|text|bsn)[\"']\s*:\s*)(\"[^\"]*\"|'[^']*'|\d+)"
        ),
        rf"\1\"{REDACTED}\"",
    ),
    # SQLAlchemy puts a failed statement's parameters (message bodies, BSNs) in its errors.
    (re.compile(r"\[parameters: .*?\](?=\s*(?:\(|$|\n))", re.DOTALL), "[parameters: hidden]"),
    # Session tokens (64 hex digits; hashes of the same length go too).
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64}(?![0-9A-Za-z])"), REDACTED),
    # BSN-like numbers: nine digits standing alone (not inside an id, a hash or a longer
    # number). Phone numbers have ten or more digits.
    (re.compile(r"(?<![\w\-.:/])\d{9}(?![\w\-])"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every secret-shaped part replaced by ``[redacted]``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    """Rewrite a record's message, arguments and traceback through :func:`redact`.

    The message is rendered once here, so a secret passed as an argument is caught too; the
    traceback is rendered here as well (an exception's text can carry a statement's
    parameters) and stored where formatters look for it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hub_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the template, drop the arguments
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        record._hub_redacted = True
        return True


HIDDEN = "[hidden]"


class LibraryDetail(logging.Filter):
    """Keep the data out of libraries' verbose lines, which the hub cannot change at their
    source: what they say happened stays, what it happened to goes.

    - SQLAlchemy's echo (``sqlalchemy.engine`` at INFO and DEBUG) logs each statement's
      parameters and each row fetched: message bodies, BSNs, token hashes, TOTP secrets.
    - httpcore at DEBUG logs the headers of each answer (cookies of the sites the hub posts
      to) as tuples.
    - aiosqlite at DEBUG logs every call with its arguments, the parameters included.
    - aiosmtpd (``mail.log``, the mail receiver) at DEBUG logs every line of each mail and
      of each AUTH exchange: dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name.startswith("sqlalchemy.engine") or (
            name.startswith("httpcore") and record.levelno < logging.INFO
        ):
            _hide_data(record)
        elif name == "aiosqlite" and isinstance(record.args, tuple):
            record.args = tuple(_callable_name(arg) for arg in record.args)
        elif name.startswith("mail.log") and record.levelno < logging.INFO:
            return False
        return True


def _hide_data(record: logging.LogRecord) -> None:
    # Statements, timings and event names are text; parameters, rows and headers are tuples,
    # dicts or wrappers of them.
    if isinstance(record.args, tuple):
        record.args = tuple(
            arg if isinstance(arg, str | int | float) else HIDDEN for arg in record.args
        )
    elif isinstance(record.args, Mapping):
        record.args = None
        record.msg = f"{str(record.msg).split('%', 1)[0]}{HIDDEN}"


def _callable_name(value: object) -> object:
    function = getattr(value, "func", value)  # a functools.partial: the function it calls
    return getattr(function, "__qualname__", None) or getattr(function, "__name__", HIDDEN)


class RequestId(logging.Filter):
    """Put the current request's id on the record (``None`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


# The attributes every LogRecord has; anything else on a record is an ``extra`` field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "_hub_redacted", "color_message", "taskName"}
)


def _uvicorn_access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields; its arguments are (client, method, path, version,
    status)."""
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        client, method, path, version, status = args
        return {
            "client": client,
            "method": method,
            "path": path,
            "http_version": version,
            "status": status,
        }
    return {}


class AccessFields(logging.Filter):
    """Keep uvicorn's access-line arguments as fields before :class:`Redactor` renders them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _uvicorn_access_fields(record).items():
            setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, the record's extra
    fields, and ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """A readable line for development: time, level, logger, [request id] message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(request_part)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_part = f"[{request_id}] " if request_id else ""
        return super().format(record)


def logging_config(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the hub and uvicorn: one stderr handler with the
    filters, which uvicorn's loggers use too (pass it to ``uvicorn.run(log_config=…)``)."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "access_fields": {"()": AccessFields},
            "library_detail": {"()": LibraryDetail},
            "request_id": {"()": RequestId},
            "redact": {"()": Redactor},
        },
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                # In this order: fields from uvicorn's arguments first, libraries' data
                # hidden, then the request id, then redaction of everything (fields too).
                "filters": ["access_fields", "library_detail", "request_id", "redact"],
            },
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
        },
    }


def configure_logging(log_format: LogFormat, level: str = "INFO") -> dict[str, Any]:
    """Set up logging for this process; returns the configuration (for uvicorn)."""
    config = logging_config(log_format, level)
    logging.config.dictConfig(config)
    return config
