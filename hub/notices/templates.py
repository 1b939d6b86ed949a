"""Notice templates: an agency's text per channel and language with ``{{ placeholders }}``.

Templates are written by agencies, so they run in Jinja2's sandbox (no attribute tricks
reach Python internals) with strict undefined values (a missing placeholder is an error,
never an empty gap in a letter). Autoescape is off: the texts are plain text; the mail
channel escapes them when it builds its HTML part.

Pure: no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from hub.errors import InvalidInput

CHANNELS = ("portal", "email", "sms", "letter")
LANGUAGES = ("nl", "en")
MAX_SUBJECT_CHARS = 300

ENVIRONMENT = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def check_template(*, subject: str, body: str) -> None:
    """Refuse a subject or body that Jinja2 cannot parse, naming the part and the line."""
    for part, source in (("subject", subject), ("body", body)):
        try:
            ENVIRONMENT.parse(source)
        except TemplateSyntaxError as problem:
            raise InvalidInput(
                f"The template's {part} does not parse at line {problem.lineno}: {problem.message}",
                part=part,
                line=problem.lineno,
            ) from None


def placeholders(*, subject: str, body: str) -> set[str]:
    """Every name the subject and body use that the template does not define itself."""
    names: set[str] = set()
    for source in (subject, body):
        names |= meta.find_undeclared_variables(ENVIRONMENT.parse(source))
    return names - set(ENVIRONMENT.globals)


def missing_placeholders(*, subject: str, body: str, values: Mapping[str, Any]) -> list[str]:
    """The placeholders ``values`` does not fill, sorted."""
    return sorted(placeholders(subject=subject, body=body) - set(values))


def render(*, subject: str, body: str, values: Mapping[str, Any]) -> Rendered:
    """The subject (on one line) and body with ``values`` filled in.

    Raises InvalidInput listing every missing placeholder (``missing``), or naming what the
    sandbox refused, before anything is stored or sent.
    """
    missing = missing_placeholders(subject=subject, body=body, values=values)
    if missing:
        raise InvalidInput(
            "The template needs placeholders that were not given: " + ", ".join(missing) + ".",
            missing=missing,
        )
    try:
        rendered_subject = ENVIRONMENT.from_string(subject).render(values)
        rendered_body = ENVIRONMENT.from_string(body).render(values)
    except (UndefinedError, SecurityError) as problem:
        raise InvalidInput(f"The template cannot be filled in: {problem}") from None
    except (TypeError, ValueError, ArithmeticError) as problem:
        raise InvalidInput(
            f"The template cannot be filled in: {type(problem).__name__}: {problem}"
        ) from None
    one_line = " ".join(rendered_subject.split())
    if len(one_line) > MAX_SUBJECT_CHARS:
        raise InvalidInput(f"The filled-in subject is longer than {MAX_SUBJECT_CHARS} characters.")
    return Rendered(subject=one_line, body=rendered_body.strip())
