"""Routing a batch of notices inside PostgreSQL: set-based SQL, not a Python loop per row.

:func:`route_batch_in_database` makes the decisions of :func:`hub.notices.bulk.decide` for a
whole batch in a few statements. Python only parses each row (in the job's reading thread)
and turns it into a staging record; the database then

1. takes the records by ``COPY`` into a temporary ``notice_stage`` table;
2. decides every row in one ``INSERT … SELECT`` into ``notice_decided``: the party (by BSN or
   KvK number), its oldest verified addresses, the consent in force for the topic, the
   notices that count towards today's cap, the case, the channel (preferred, then email →
   SMS → letter; letters only for those who asked for no digital contact) and every text,
   filled in by concatenation from the template's pieces (``hub.notices.templates``);
3. ranks and writes in one statement: duplicates (already made, or earlier in the batch),
   the daily cap by ``row_number()`` over each party's rows, then the notices
   (again with ``ON CONFLICT DO NOTHING`` when another writer made one of them meanwhile: it
   counts as a duplicate), their
   outbox rows and portal alerts, and the timers that hold texts through quiet hours.

Only templates of plain text and ``{{ name }}`` placeholders are filled in here; a batch
using any other template goes through the Python path. ``tests/notices/test_bulk.py``
holds both paths to the single-notice API's outcome, row by row.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.clock import local_date, start_of_local_day
from hub.errors import InvalidInput
from hub.messages.segments import MAX_SEGMENTS, PER_PART, check_text
from hub.notices.service import (
    _CANONICAL,
    ALERT_SUBJECT,
    ALERT_TEXT,
    DAILY_CAP,
    OUTBOX_TEMPLATE,
    QUIET_HOURS_TIMER,
    compiled_for,
    quiet_until,
)
from hub.notices.templates import (
    CHANNELS,
    LANGUAGES,
    MAX_SUBJECT_CHARS,
    SUBJECT_NOT_ONE_LINE,
    Compiled,
    Parts,
)
from hub.parties.service import check_identifier

# Python's whitespace (``str.isspace``), which ``str.split`` and ``str.strip`` use, as a
# PostgreSQL bracket expression: the filled-in texts are trimmed exactly as in Python.
_WS = r"[\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A text no longer than this fits in MAX_SEGMENTS parts whatever its characters (each takes
# at most two UCS-2 units); longer ones are counted in Python.
# hub.messages.schemas.HEADER_BREAKERS as a PostgreSQL regular expression (for ``~*``), for a
# subject whose whitespace is folded already (PostgreSQL's text holds no NUL).
HEADER_BREAKERS_SQL = r"[\x01-\x1f\x7f\u0085\u2028\u2029]|%0[ad]|=\?[^?]*\?[bq]\?"
_SURELY_FITS = PER_PART["UCS-2"] * MAX_SEGMENTS // 2
_json_text = json.JSONEncoder(separators=(",", ":"), default=str).encode

_STAGE = """
CREATE TEMPORARY TABLE IF NOT EXISTS notice_stage (
    row integer PRIMARY KEY, bsn varchar, kvk_number varchar, topic varchar, template varchar,
    journey_id varchar, case_id uuid, important boolean, escalate_after_days integer,
    dedupe_key varchar, key_tail text, vals jsonb, personalisation text, refused text
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = (
    "row",
    "bsn",
    "kvk_number",
    "topic",
    "template",
    "journey_id",
    "case_id",
    "important",
    "escalate_after_days",
    "dedupe_key",
    "key_tail",
    "vals",
    "personalisation",
    "refused",
)
_DECIDED = """
CREATE TEMPORARY TABLE IF NOT EXISTS notice_decided (
    row integer PRIMARY KEY, id uuid, party_id uuid, party_name text, lang text,
    topic_id integer, template varchar, journey_id varchar, case_id uuid,
    case_reference text, case_title text, important boolean, escalate_after_days integer,
    dedupe_key varchar, personalisation text, consent boolean,
    target text, recipient text, email text, no_digital boolean,
    gather_reason text, fill_reason text,
    shown_subject text, shown_body text, text_subject text, text_body text,
    -- What goes out if the notice is made: its delivery (or portal alert) and the timer
    -- that holds a text through quiet hours.
    out_channel text, out_recipient text, out_subject text, out_body text, out_meta json,
    hold_payload json
) ON COMMIT DELETE ROWS
"""


def stage_record(row: int, notice: Any) -> tuple[Any, ...]:
    """A parsed row (a ``NoticeIn``) as a ``notice_stage`` record. Cheap on purpose: this is
    the one thing done per row in Python."""
    try:
        check_identifier(bsn=notice.bsn, kvk_number=notice.kvk_number)
        refused = None
    except InvalidInput as problem:
        refused = problem.detail
    personalisation = notice.personalisation
    return (
        row,
        notice.bsn,
        notice.kvk_number,
        notice.topic,
        notice.template,
        notice.journey_id,
        notice.case_id,
        notice.important,
        notice.escalate_after_days,
        notice.dedupe_key,
        # ``default_dedupe_key`` hashes [party id, topic, template, personalisation]; the
        # database puts the party's id in front of the rest.
        _CANONICAL([notice.topic, notice.template, personalisation]),
        # Each value as the template shows it: its ``str``.
        _json_text({name: str(value) for name, value in personalisation.items()}),
        _json_text(dict(personalisation)),
        refused,
    )


@dataclass
class _Sql:
    """A statement being built, with its parameters numbered as asyncpg wants them (the same
    text or moment is one parameter however often it is used)."""

    text: str = ""
    params: list[Any] = field(default_factory=list)
    _numbers: dict[tuple[str, Any], int] = field(default_factory=dict)

    def param(self, value: Any, cast: str = "text") -> str:
        key = (cast, value if not isinstance(value, list) else tuple(value))
        number = self._numbers.get(key)
        if number is None:
            self.params.append(value)
            number = self._numbers[key] = len(self.params)
        return f"${number}::{cast}"


@dataclass(frozen=True)
class Choice:
    """What ``compiled_for`` gives for one (template, channel, language): a template to
    fill in, or the error it raises."""

    compiled: Compiled | None
    error: str | None


def choices(
    templates: Mapping[str, Mapping[tuple[str, str], Any]],
) -> dict[tuple[str, str, str], Choice] | None:
    """Every (template code, channel, language) a batch may need; None when one of them is
    not plain, so that the batch is filled in by Python."""
    found: dict[tuple[str, str, str], Choice] = {}
    for code, named in templates.items():
        for channel in CHANNELS:
            for language in LANGUAGES:
                try:
                    compiled = compiled_for(named, channel, language)
                except InvalidInput as problem:
                    found[(code, channel, language)] = Choice(None, problem.detail)
                    continue
                if not compiled.plain:
                    return None
                found[(code, channel, language)] = Choice(compiled, None)
    return found


# Placeholders every notice has; the row's own personalisation may override them.
_GIVEN = ("party_name", "agency_name")


def _value(sql: _Sql, name: str) -> str:
    own = f"(b.vals ->> {sql.param(name)})"
    if name == "party_name":
        return f"coalesce({own}, b.party_name)"
    if name == "agency_name":
        return f"coalesce({own}, b.agency_name)"
    return own


def _concat(sql: _Sql, parts: Parts) -> str:
    pieces = [_value(sql, text) if is_name else sql.param(text) for is_name, text in parts]
    return f"concat({', '.join(pieces)})" if pieces else "''"


def _one_line(expression: str) -> str:
    """``" ".join(text.split())``."""
    trimmed = f"regexp_replace({expression}, '^{_WS}+|{_WS}+$', '', 'g')"
    return f"regexp_replace({trimmed}, '{_WS}+', ' ', 'g')"


def _strip(expression: str, parts: Parts) -> str:
    """``text.strip()``; left out when the template starts and ends with text that is not
    whitespace, which no value can change."""
    if (
        parts
        and not parts[0][0]
        and not parts[0][1][:1].isspace()
        and not parts[-1][0]
        and not parts[-1][1][-1:].isspace()
    ):
        return expression
    return f"regexp_replace({expression}, '^{_WS}+|{_WS}+$', '', 'g')"


def _missing(sql: _Sql, compiled: Compiled) -> str:
    """The placeholders the row does not fill, as ``Compiled.render`` names them, or NULL."""
    needed = sorted(compiled.placeholders.difference(_GIVEN))
    if not needed:
        return "NULL::text"
    names = sql.param(needed, "text[]")
    # ``names`` is a bound parameter's ``$n``.
    query = f"SELECT string_agg(x, ', ' ORDER BY x COLLATE \"C\") FROM unnest({names}) AS x"  # noqa: S608
    return f"CASE WHEN b.vals ?& {names} THEN NULL ELSE ({query} WHERE NOT b.vals ? x) END"


def _fills(sql: _Sql, found: Mapping[tuple[str, str, str], Choice], channel: str) -> dict[str, str]:
    """Expressions for one text of each row: its subject, body, missing placeholders, and
    the error when there is no template. ``channel`` is an SQL expression."""
    columns: dict[str, list[str]] = {"subject": [], "body": [], "missing": [], "none": []}
    for (code, on, language), choice in found.items():
        # ``on`` and ``language`` are the hub's own names (CHANNELS, LANGUAGES).
        when = (
            f"WHEN b.template = {sql.param(code)} AND {channel} = '{on}' AND b.lang = '{language}'"
        )
        if choice.compiled is None:
            columns["none"].append(f"{when} THEN {sql.param(choice.error)}")
            continue
        compiled = choice.compiled
        assert compiled.subject_parts is not None and compiled.body_parts is not None
        columns["subject"].append(f"{when} THEN {_one_line(_concat(sql, compiled.subject_parts))}")
        columns["body"].append(
            f"{when} THEN {_strip(_concat(sql, compiled.body_parts), compiled.body_parts)}"
        )
        columns["missing"].append(f"{when} THEN {_missing(sql, compiled)}")
    return {
        name: f"CASE {' '.join(whens)} END" if whens else "NULL::text"
        for name, whens in columns.items()
    }


def _decide_statement(
    found: Mapping[tuple[str, str, str], Choice],
    *,
    agency_id: str,
    agency_name: str,
    journeys: Sequence[str],
    templates: Sequence[str],
    base_url: str,
) -> _Sql:
    sql = _Sql()
    agency = sql.param(agency_id)
    name = sql.param(agency_name)
    url = f"({sql.param(base_url.rstrip('/') + '/notices/')} || g.id::text)"
    alert_subject = (
        f"CASE g.lang WHEN 'en' THEN {sql.param(ALERT_SUBJECT['en'].format(agency=agency_name))}"
        f" ELSE {sql.param(ALERT_SUBJECT['nl'].format(agency=agency_name))} END"
    )
    alert_body = (
        f"CASE g.lang WHEN 'en' THEN {_alert_body(sql, 'en', agency_name, url)}"
        f" ELSE {_alert_body(sql, 'nl', agency_name, url)} END"
    )
    given = f"'agency_id', {agency}, 'agency_name', {name}, 'party_name', g.party_name"
    of_case = (
        "'case_reference', g.case_reference, 'case_title', g.case_title, "
        "'case_path', '/cases/' || g.case_id::text"
    )

    def meta(more: str) -> str:
        """A delivery's context, as ``case_context`` and ``_plan_row`` make it, and ``more``."""
        pairs = f"{given}, 'notice_id', g.id::text, {more}"
        return (
            f"CASE WHEN g.case_id IS NULL THEN json_build_object({pairs}) "
            f"ELSE json_build_object({of_case}, {pairs}) END"
        )

    known_journeys = sql.param(list(journeys), "text[]")
    known_templates = sql.param(list(templates), "text[]")
    shown = _fills(sql, found, "'portal'")
    text = _fills(sql, found, "b.target")
    too_long = sql.param(f"The filled-in subject is longer than {MAX_SUBJECT_CHARS} characters.")
    not_one_line = sql.param("The filled-in subject: " + SUBJECT_NOT_ONE_LINE)
    breakers = sql.param(HEADER_BREAKERS_SQL)
    # Everything interpolated is an expression built here or a bound parameter's ``$n``.
    sql.text = f"""
    INSERT INTO notice_decided
    SELECT g.row, g.id, g.party_id, g.party_name, g.lang, g.topic_id, g.template, g.journey_id,
           g.case_id, g.case_reference, g.case_title, g.important, g.escalate_after_days,
           g.dedupe_key, g.personalisation, g.consent, g.target, g.recipient, g.email,
           g.no_digital, g.gather_reason, g.fill_reason, g.shown_subject, g.shown_body,
           g.text_subject, g.text_body,
           CASE WHEN g.target IS NOT NULL THEN g.target
                WHEN g.email IS NOT NULL AND NOT g.no_digital THEN 'email' END,
           coalesce(g.recipient, g.email),
           CASE WHEN g.target IS NOT NULL THEN g.text_subject ELSE {alert_subject} END,
           CASE WHEN g.target IS NOT NULL THEN g.text_body ELSE {alert_body} END,
           CASE WHEN g.target IS NOT NULL THEN {meta("'tried', json_build_array(g.target)")}
                ELSE {
        meta(f"'notice_role', 'alert', 'notice_url', {url}, 'tried', json_build_array('email')")
    } END,
           CASE WHEN g.target = 'sms' THEN
                json_build_object('notice_id', g.id::text, 'recipient', g.recipient,
                                  'subject', g.text_subject, 'body', g.text_body,
                                  'language', g.lang,
                                  'context', {meta("'tried', json_build_array(g.target)")})
           END
      FROM (
    SELECT f.row, gen_random_uuid() AS id, f.party_id, f.party_name, f.lang, f.topic_id,
           f.template, f.journey_id, f.case_id, f.case_reference, f.case_title, f.important,
           f.escalate_after_days, f.dedupe_key, f.personalisation, f.consent,
           f.target,
           CASE f.target WHEN 'email' THEN f.email WHEN 'sms' THEN f.phone
                         WHEN 'letter' THEN f.postal END AS recipient,
           f.email, f.no_digital, f.gather_reason,
           CASE WHEN f.gather_reason IS NOT NULL THEN NULL
                WHEN f.shown_none IS NOT NULL THEN f.shown_none
                WHEN f.shown_missing IS NOT NULL THEN
                     'The template needs placeholders that were not given: '
                     || f.shown_missing || '.'
                WHEN f.shown_subject ~* {breakers} THEN {not_one_line}
                WHEN char_length(f.shown_subject) > {MAX_SUBJECT_CHARS} THEN {too_long}
                WHEN f.target IS NULL THEN NULL
                WHEN f.text_none IS NOT NULL THEN f.text_none
                WHEN f.text_missing IS NOT NULL THEN
                     'The template needs placeholders that were not given: '
                     || f.text_missing || '.'
                WHEN f.text_subject ~* {breakers} THEN {not_one_line}
                WHEN char_length(f.text_subject) > {MAX_SUBJECT_CHARS} THEN {too_long}
                WHEN f.target = 'sms' AND f.text_body = '' THEN 'A text message needs text.'
           END AS fill_reason,
           f.shown_subject, f.shown_body, f.text_subject, f.text_body
      FROM (
        SELECT b.*,
               {shown["subject"]} AS shown_subject, {shown["body"]} AS shown_body,
               {shown["missing"]} AS shown_missing, {shown["none"]} AS shown_none,
               {text["subject"]} AS text_subject, {text["body"]} AS text_body,
               {text["missing"]} AS text_missing, {text["none"]} AS text_none
          FROM (
            SELECT r.*,
                   CASE WHEN r.party_id IS NULL THEN NULL
                        WHEN r.no_digital THEN
                             CASE WHEN r.postal IS NOT NULL THEN 'letter' END
                        WHEN r.preferred = 'email' THEN
                             CASE WHEN r.email IS NOT NULL THEN 'email'
                                  WHEN r.phone IS NOT NULL THEN 'sms'
                                  WHEN r.postal IS NOT NULL THEN 'letter' END
                        WHEN r.preferred = 'sms' THEN
                             CASE WHEN r.phone IS NOT NULL THEN 'sms'
                                  WHEN r.email IS NOT NULL THEN 'email'
                                  WHEN r.postal IS NOT NULL THEN 'letter' END
                        WHEN r.preferred = 'letter' THEN
                             CASE WHEN r.postal IS NOT NULL THEN 'letter'
                                  WHEN r.email IS NOT NULL THEN 'email'
                                  WHEN r.phone IS NOT NULL THEN 'sms' END
                   END AS target
              FROM (
                SELECT s.row, s.template, s.journey_id, s.case_id, s.important,
                       s.escalate_after_days, s.personalisation,
                       p.id AS party_id, p.name AS party_name, p.preferred_channel AS preferred,
                       CASE WHEN p.preferred_language IN ('nl', 'en') THEN p.preferred_language
                            ELSE 'nl' END AS lang,
                       coalesce(p.needs::jsonb ? 'no_digital_contact', false) AS no_digital,
                       nullif(p.postal_address, '') AS postal,
                       a.email, a.phone, t.id AS topic_id,
                       c.reference AS case_reference, c.title AS case_title,
                       coalesce(k.granted, false) AS consent,
                       coalesce(s.dedupe_key, 'sha256:' || encode(sha256(convert_to(
                           '["' || p.id::text || '",' || substr(s.key_tail, 2), 'UTF8')), 'hex'))
                           AS dedupe_key,
                       CASE WHEN s.refused IS NOT NULL THEN s.refused
                            WHEN p.id IS NULL THEN 'No party is known by this identifier.'
                            WHEN t.id IS NULL THEN
                                 'Agency ''' || {agency} || ''' has no consent topic '''
                                 || s.topic || '''.'
                            WHEN s.journey_id IS NOT NULL
                                 AND NOT s.journey_id = ANY({known_journeys}) THEN
                                 'There is no journey ''' || s.journey_id || '''.'
                            WHEN s.case_id IS NOT NULL
                                 AND (c.id IS NULL OR c.agency_id <> {agency}
                                      OR c.party_id IS DISTINCT FROM p.id) THEN
                                 'The case is not one of this agency''s cases of this party.'
                            WHEN s.escalate_after_days IS NOT NULL AND NOT s.important THEN
                                 'Only an important notice can be escalated.'
                            WHEN NOT s.template = ANY({known_templates}) THEN
                                 'Agency ''' || {agency} || ''' has no notice template '''
                                 || s.template || '''.'
                       END AS gather_reason,
                       s.vals, {name} AS agency_name
                  FROM notice_stage s
                  LEFT JOIN LATERAL (
                        SELECT id, name, preferred_channel, preferred_language, needs,
                               postal_address
                          FROM party WHERE s.bsn IS NOT NULL AND bsn = s.bsn
                        UNION ALL
                        SELECT id, name, preferred_channel, preferred_language, needs,
                               postal_address
                          FROM party WHERE s.bsn IS NULL AND kvk_number = s.kvk_number
                        LIMIT 1) p ON true
                  LEFT JOIN consent_topic t ON t.agency_id = {agency} AND t.code = s.topic
                  LEFT JOIN LATERAL (
                        SELECT id, reference, title, agency_id, party_id FROM "case"
                         WHERE s.case_id IS NOT NULL AND "case".id = s.case_id) c ON true
                  LEFT JOIN LATERAL (
                        -- The oldest verified address of each kind, as ``address_for``.
                        SELECT (array_agg(value ORDER BY created_at)
                                    FILTER (WHERE kind = 'email'))[1] AS email,
                               (array_agg(value ORDER BY created_at)
                                    FILTER (WHERE kind = 'phone'))[1] AS phone
                          FROM digital_address
                         WHERE digital_address.party_id = p.id
                           AND verified_at IS NOT NULL AND opted_out_at IS NULL) a ON true
                  LEFT JOIN LATERAL (
                        SELECT granted FROM consent
                         WHERE consent.party_id = p.id AND consent.topic_id = t.id
                         ORDER BY recorded_at DESC, id DESC LIMIT 1) k ON true
              ) r
          ) b
      ) f
      ) g
    """  # noqa: S608
    return sql


def _alert_body(sql: _Sql, language: str, agency_name: str, url: str) -> str:
    """``ALERT_TEXT[language].format(agency=…, subject=…, url=…)`` as SQL: the notice's
    subject and link come from the row."""
    values = {"agency": sql.param(agency_name), "subject": "g.shown_subject", "url": url}
    pieces = []
    for literal, name, _, _ in Formatter().parse(ALERT_TEXT[language]):
        if literal:
            pieces.append(sql.param(literal))
        if name is not None:
            pieces.append(values[name])
    return f"concat({', '.join(pieces)})"


def _write_statement(
    *,
    agency_id: str,
    job_id: uuid.UUID | None,
    now: dt.datetime,
    since: dt.datetime,
    release_at: dt.datetime | None,
    on_conflict: bool,
) -> _Sql:
    sql = _Sql()
    agency = sql.param(agency_id)
    at = sql.param(now, "timestamptz")
    release = sql.param(release_at, "timestamptz")
    day_start = sql.param(since, "timestamptz")
    # Everything interpolated is an expression built here or a bound parameter's ``$n``.
    # The decisions that depend on what is already in ``notice`` are taken on narrow rows
    # (row, party, key, …); the wide ones (texts) are read back by ``row`` only to be written.
    sql.text = f"""
    WITH fated AS (
        SELECT d.row, d.id, d.party_id, d.consent, d.target, d.gather_reason, d.fill_reason,
               CASE WHEN d.gather_reason IS NOT NULL THEN 'rejected'
                    WHEN made.before OR d.row > min(d.row) FILTER (WHERE d.fill_reason IS NULL AND
                                                        d.gather_reason IS NULL)
                                    OVER (PARTITION BY d.dedupe_key) THEN 'duplicate'
                    WHEN d.fill_reason IS NOT NULL THEN 'rejected'
                    ELSE 'notice'
               END AS fate
          FROM notice_decided d
          -- Asked row by row through the (agency, key) index: as a semi-join the planner
          -- would read every notice of the agency once a batch when the table grows.
          LEFT JOIN LATERAL (
                SELECT true AS before FROM notice e
                 WHERE e.agency_id = {agency} AND e.dedupe_key = d.dedupe_key LIMIT 1
               ) made ON true
    ), counted AS (
        -- What counts towards today's cap is read here, not when the rows were decided:
        -- the batch before may have been written in between.
        SELECT f.*, coalesce(n.sent, 0) AS sent_today
          FROM fated f
          LEFT JOIN LATERAL (
                SELECT count(*) AS sent FROM notice
                 WHERE notice.party_id = f.party_id AND notice.agency_id = {agency}
                   AND notice.created_at >= {day_start} AND notice.status <> 'not-sent'
               ) n ON f.fate = 'notice' AND f.consent
    ), ranked AS (
        SELECT f.row, f.fate, coalesce(f.gather_reason, f.fill_reason) AS refused,
               CASE WHEN f.fate <> 'notice' THEN NULL
                    WHEN NOT f.consent THEN 'no_consent'
                    WHEN f.sent_today + row_number() OVER (
                             PARTITION BY f.party_id, f.fate = 'notice' AND f.consent
                             ORDER BY f.row) > {DAILY_CAP} THEN 'daily_cap'
                    WHEN f.target = 'sms' AND {release} IS NOT NULL THEN 'quiet_hours'
               END AS reason
          FROM counted f
    ), written AS (
        INSERT INTO notice (id, agency_id, party_id, topic_id, template_code, personalisation,
                            journey_id, case_id, important, escalate_after_days, dedupe_key,
                            status, reason, channel, subject, body, job_id, job_row, read_at,
                            escalated_at, created_at, updated_at)
        SELECT d.id, {agency}, d.party_id, d.topic_id, d.template, d.personalisation::json,
               d.journey_id, d.case_id, d.important, d.escalate_after_days, d.dedupe_key,
               CASE WHEN r.reason IN ('no_consent', 'daily_cap') THEN 'not-sent'
                    WHEN r.reason = 'quiet_hours' THEN 'created'
                    WHEN d.target IS NULL THEN 'delivered'
                    ELSE 'sending'
               END,
               r.reason,
               CASE WHEN r.reason IN ('no_consent', 'daily_cap') THEN NULL
                    ELSE coalesce(d.target, 'portal') END,
               d.shown_subject, d.shown_body, {sql.param(job_id, "uuid")}, d.row, NULL, NULL,
               {at}, {at}
          FROM ranked r JOIN notice_decided d USING (row)
         WHERE r.fate = 'notice'
        {"ON CONFLICT (agency_id, dedupe_key) DO NOTHING" if on_conflict else ""}
        RETURNING job_row AS row, reason
    ), sent AS (
        INSERT INTO outbox (id, case_id, party_id, message_id, notice_id, channel, recipient,
                            template, language, subject, body, html, meta, status, attempts,
                            next_attempt_at, claimed_until, provider, provider_id, last_error,
                            created_at, updated_at)
        SELECT gen_random_uuid(), d.case_id, d.party_id, NULL, d.id, d.out_channel,
               d.out_recipient, {sql.param(OUTBOX_TEMPLATE)}, d.lang, d.out_subject, d.out_body,
               NULL, d.out_meta, 'pending', 0, {at}, NULL, NULL, NULL, NULL, {at}, {at}
          FROM written w JOIN notice_decided d USING (row)
         WHERE w.reason IS NULL AND d.out_channel IS NOT NULL
    ), held AS (
        INSERT INTO timer (id, case_id, kind, due_at, payload, fired_at, cancelled_at,
                           created_at)
        SELECT gen_random_uuid(), d.case_id, {sql.param(QUIET_HOURS_TIMER)}, {release},
               d.hold_payload, NULL, NULL, {at}
          FROM written w JOIN notice_decided d USING (row)
         WHERE w.reason = 'quiet_hours'
    )
    SELECT r.row, r.fate, r.reason, r.refused, w.row IS NOT NULL AS in_database
      FROM ranked r LEFT JOIN written w USING (row)
    """  # noqa: S608
    return sql


@dataclass
class Tally:
    accepted: int = 0
    not_sent: int = 0
    duplicates: int = 0
    # (row, error)
    rejections: list[tuple[int, str]] = field(default_factory=list)


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's, inside the session's transaction."""
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    if not raw.is_in_transaction():
        # SQLAlchemy's adapter sends BEGIN before the first statement it runs itself; without
        # it, each statement here would commit alone, and the temporary tables empty at once.
        await connection.exec_driver_sql("SELECT 1")
    return raw


async def decide_in_database(
    session: AsyncSession,
    records: Sequence[tuple[Any, ...]],
    found: Mapping[tuple[str, str, str], Choice],
    *,
    agency_id: str,
    agency_name: str,
    journeys: Sequence[str],
    base_url: str,
) -> None:
    """Stage ``records`` (see :func:`stage_record`) and decide them into ``notice_decided``,
    filling texts in from ``found`` (see :func:`choices`). Writes nothing but the session's
    temporary tables, so it may run while the batch before is being written: what that
    batch changes (duplicates, the daily cap) is read by :func:`write_decided`."""
    raw = await _driver(session)
    # The batch's sorts and windows in memory, not in temporary files (this transaction only).
    await raw.execute("SET LOCAL work_mem = '64MB'")
    await raw.execute(_STAGE)
    await raw.execute(_DECIDED)
    await raw.copy_records_to_table("notice_stage", records=records, columns=_STAGE_COLUMNS)
    await raw.execute("ANALYZE notice_stage")
    decide = _decide_statement(
        found,
        agency_id=agency_id,
        agency_name=agency_name,
        journeys=journeys,
        templates=sorted({code for code, _, _ in found}),
        base_url=base_url,
    )
    await raw.execute(decide.text, *decide.params)
    # What a text costs is counted in Python, for the few texts long enough to matter.
    long_texts = await raw.fetch(
        "SELECT row, text_body FROM notice_decided WHERE target = 'sms' "
        "AND gather_reason IS NULL AND fill_reason IS NULL AND char_length(text_body) > $1",
        _SURELY_FITS,
    )
    refused = []
    for row, body in long_texts:
        try:
            check_text(body)
        except InvalidInput as problem:
            refused.append((row, problem.detail))
    if refused:
        await raw.executemany("UPDATE notice_decided SET fill_reason = $2 WHERE row = $1", refused)


async def write_decided(
    session: AsyncSession,
    *,
    agency_id: str,
    job_id: uuid.UUID | None,
    timezone: str,
    now: dt.datetime,
) -> Tally:
    """Write what :func:`decide_in_database` decided in this session's transaction."""
    raw = await _driver(session)
    options: dict[str, Any] = {
        "agency_id": agency_id,
        "job_id": job_id,
        "now": now,
        "since": start_of_local_day(local_date(now, timezone), timezone),
        "release_at": quiet_until(now, timezone),
    }
    write = _write_statement(**options, on_conflict=False)
    tally = Tally()
    # The rows' keys were looked up just before, so a plain insert (without the cost of
    # ON CONFLICT's speculative insertion) nearly always goes in; when a writer raced us to
    # one of them, the batch is written again skipping what that writer made.
    await raw.execute("SAVEPOINT notice_write")
    try:
        rows = await raw.fetch(write.text, *write.params)
    except asyncpg.UniqueViolationError:
        await raw.execute("ROLLBACK TO SAVEPOINT notice_write")
        write = _write_statement(**options, on_conflict=True)
        rows = await raw.fetch(write.text, *write.params)
    else:
        await raw.execute("RELEASE SAVEPOINT notice_write")
    for row, fate, reason, why, in_database in rows:
        if fate == "rejected":
            tally.rejections.append((row, why))
        elif fate == "duplicate" or not in_database:
            # Made before, earlier in the batch, or by someone else meanwhile.
            tally.duplicates += 1
        elif reason in ("no_consent", "daily_cap"):
            tally.not_sent += 1
        else:
            tally.accepted += 1
    await raw.execute("TRUNCATE notice_stage, notice_decided")
    return tally
