"""Notice templates: an agency's text per channel and language with ``{{ placeholders }}``.

Templates are written by agencies, so they run in Jinja2's sandbox (no attribute tricks
reach Python internals) with strict undefined values (a missing placeholder is an error,
never an empty gap in a letter). Autoescape is off: the texts are plain text; the mail
channel escapes them when it builds its HTML part.

Pure: no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from hub.errors import InvalidInput
from hub.messages.schemas import HEADER_BREAKERS

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


SUBJECT_NOT_ONE_LINE = (
    "a subject must be one line of plain text: no line breaks or control characters, "
    "written out or encoded."
)


def check_template(*, subject: str, body: str) -> None:
    """Refuse a subject or body that Jinja2 cannot parse, naming the part and the line, and
    a subject that is not one line of plain text (it becomes a mail's Subject header)."""
    if HEADER_BREAKERS.search(subject):
        raise InvalidInput(SUBJECT_NOT_ONE_LINE, part="subject")
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


Fill = Callable[[Mapping[str, Any]], str]


# A plain template as its pieces: (False, text) or (True, placeholder name).
Parts = tuple[tuple[bool, str], ...]


def plain_parts(source: str) -> Parts | None:
    """The template as text and bare ``{{ name }}`` placeholders, or None when it uses
    anything else (filters, conditions, loops)."""
    parts: list[tuple[bool, str]] = []
    for node in ENVIRONMENT.parse(source).body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append((False, child.data))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                parts.append((True, child.name))
            else:
                return None
    return tuple(parts)


def _filler(source: str, parts: Parts | None) -> Fill:
    """A function that fills one template in.

    A plain template — nearly all of them — is filled by ``str.format_map``, as Jinja2
    would (``str`` of each value) but without its machinery, so that a bulk job of a million
    notices spends its time in the database, not here. Anything else is rendered by the
    sandbox.
    """
    if parts is not None:
        # ``format`` of a text, number, true/false or None is its ``str``, as in Jinja2.
        pattern = "".join(
            "{" + text + "}" if is_name else text.replace("{", "{{").replace("}", "}}")
            for is_name, text in parts
        )
        return pattern.format_map
    compiled = ENVIRONMENT.from_string(source)
    return lambda values: compiled.render(values)


@dataclass(frozen=True)
class Compiled:
    """A template parsed once, to be filled in many times."""

    placeholders: frozenset[str]
    fill_subject: Fill
    fill_body: Fill
    # Both plain (see ``plain_parts``), or None: a bulk job fills these in the database.
    subject_parts: Parts | None = None
    body_parts: Parts | None = None

    @property
    def plain(self) -> bool:
        return self.subject_parts is not None and self.body_parts is not None

    def render(self, values: Mapping[str, Any]) -> Rendered:
        """See :func:`render`."""
        missing = self.placeholders.difference(values)
        if missing:
            raise InvalidInput(
                "The template needs placeholders that were not given: "
                + ", ".join(sorted(missing))
                + ".",
                missing=sorted(missing),
            )
        try:
            rendered_subject = self.fill_subject(values)
            rendered_body = self.fill_body(values)
        except (UndefinedError, SecurityError) as problem:
            raise InvalidInput(f"The template cannot be filled in: {problem}") from None
        except (TypeError, ValueError, ArithmeticError) as problem:
            raise InvalidInput(
                f"The template cannot be filled in: {type(problem).__name__}: {problem}"
            ) from None
        # Line breaks a value brings into the subject are folded into spaces, as all its
        # whitespace is; what still could break a mail header after that is refused.
        one_line = " ".join(rendered_subject.split())
        if HEADER_BREAKERS.search(one_line):
            raise InvalidInput("The filled-in subject: " + SUBJECT_NOT_ONE_LINE, part="subject")
        if len(one_line) > MAX_SUBJECT_CHARS:
            raise InvalidInput(
                f"The filled-in subject is longer than {MAX_SUBJECT_CHARS} characters."
            )
        return Rendered(subject=one_line, body=rendered_body.strip())


@lru_cache(maxsize=256)
def compile_template(subject: str, body: str) -> Compiled:
    """The template parsed (and cached by its text, so an edited template is parsed anew)."""
    subject_parts, body_parts = plain_parts(subject), plain_parts(body)
    return Compiled(
        placeholders=frozenset(placeholders(subject=subject, body=body)),
        fill_subject=_filler(subject, subject_parts),
        fill_body=_filler(body, body_parts),
        subject_parts=subject_parts,
        body_parts=body_parts,
    )


def render(*, subject: str, body: str, values: Mapping[str, Any]) -> Rendered:
    """The subject (on one line) and body with ``values`` filled in.

    Raises InvalidInput listing every missing placeholder (``missing``), or naming what the
    sandbox refused, before anything is stored or sent.
    """
    return compile_template(subject, body).render(values)
