"""Schemathesis over the OpenAPI document: every operation, every check it has, against a real
hub (uvicorn on a free port) whose database holds the authorization matrix's world, so that
authenticated operations do real work on the owner's case, chat, documents and notices.

Each request carries the credential of a kind of caller its operation declares, in turn
(citizen session, staff session or agency key — the document's security schemes), so the
``ignored_auth`` check can try it again without one and with a wrong one. Valid path parameters
mostly name the world's objects; bodies, queries and headers are generated, valid and invalid.

A check is switched off only where it contradicts a documented rule of ours, for those
operations only, with the reason in :data:`EXCLUDED`. The run is derandomized and small for
CI; ``HUB_SCHEMATHESIS_EXAMPLES=50`` makes a long one (every case of the coverage phase, every
missing method, more examples and longer workflows).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import hypothesis
import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis import Case, CheckFunction, Response
from schemathesis.checks import CHECKS as REGISTERED
from schemathesis.checks import load_all_checks
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario
from schemathesis.specs.openapi.checks import negative_data_rejection
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub.app import create_app
from hub.config import Settings
from hub.db import Database, create_all
from tests.conftest import POSTGRES_ADMIN_URL, _backends
from tests.hardening.conftest import INBOUND_MAIL_SECRET, METRICS_TOKEN, TWILIO_TOKEN
from tests.hardening.world import World, make_world
from tests.live.harness import start_server

EXAMPLES = int(os.environ.get("HUB_SCHEMATHESIS_EXAMPLES", "5"))
SEED = 20261207
WORKFLOWS = max(3, EXAMPLES // 2)
WORKFLOW_STEPS = 8
LONG_RUN = EXAMPLES > 5
UNEXPECTED_METHODS = (
    ["get", "put", "post", "delete", "options", "patch", "trace", "query"]
    if LONG_RUN
    else ["options", "trace"]
)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "use_after_free",
    "ensure_resource_availability",
    "missing_required_header",
    "ignored_auth",
    # Acts only with several identities in Schemathesis' [auth.wfc]; another citizen's and
    # another agency's reads are tried route by route in test_authorization_matrix.py.
    "object_level_authorization",
    "unsupported_method",
    "allow_header_conformance",
    "max_response_time",
)
# Seconds: only the machine's worst stall, not a service level (that is bench/'s business).
MAX_RESPONSE_TIME = 10.0
# Which of the world's callers speaks for each security scheme.
CALLERS = {"citizenSession": "owner", "staffSession": "staff_a", "agencyKey": "key_a"}

# A schema-valid request the hub refuses with 422 by a rule of ours that the schema does not
# carry (one field's value decides another's, or a value must name something registered).
RULE = "positive_data_acceptance"
# (method, path) -> {check: why it contradicts a documented rule of ours}.
EXCLUDED: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/api/cases"): {
        RULE: "a party is named by exactly one of bsn and kvk_number (a person or a company), "
        "and the journey must be one in the catalogue"
    },
    ("POST", "/api/cases/{case_id}/messages"): {
        RULE: "a message says something: a body of only white space is refused"
    },
    ("POST", "/api/cases/{case_id}/documents"): {
        RULE: "the source follows the caller: citizens upload ('upload'), staff add what they "
        "scanned at the desk ('desk_scan')"
    },
    ("POST", "/api/chats"): {
        RULE: "a chat is about a case (case_id) or is a new question to an agency (agency_id)"
    },
    ("POST", "/api/chats/{conversation_id}/handover"): {
        RULE: "a chat is handed over to exactly one of a colleague, a team or an agency"
    },
    ("POST", "/api/desk/search"): {
        RULE: "the desk searches by exactly one of bsn, kvk_number, case_reference, or name "
        "with date_of_birth"
    },
    ("POST", "/api/parties/search"): {
        RULE: "a party is searched by exactly one of bsn, kvk_number, case_reference"
    },
    ("POST", "/api/desk/cases/{case_id}/visits"): {
        RULE: "a visit is recorded only after an identity document was checked (passport, "
        "id_card, driving_licence, residence_permit)"
    },
    ("POST", "/api/desk/cases/{case_id}/follow-up"): {
        RULE: "a follow-up goes by email, sms or letter, and only to an address the party has"
    },
    ("PUT", "/api/me/preferences"): {
        RULE: "needs are among the ones the hub knows (plain_language, no_digital_contact)"
    },
    ("PUT", "/api/parties/{party_id}/preferences"): {
        RULE: "needs are among the ones the hub knows (plain_language, no_digital_contact)"
    },
    ("POST", "/api/me/mandates"): {
        RULE: "a representative's BSN has 9 digits and passes the eleven-test"
    },
    ("POST", "/api/notices"): {
        RULE: "a notice names exactly one of bsn and kvk_number, under a topic and template "
        "the agency registered"
    },
    ("POST", "/api/notice-jobs"): {RULE: "a job's file holds at least one row"},
    ("GET", "/api/insights"): {RULE: "a period is at most 366 days long"},
    ("GET", "/api/insights.csv"): {RULE: "a period is at most 366 days long"},
    ("POST", "/api/cloudevents"): {
        RULE: "an event carries the CloudEvents attributes specversion, id, source and type, "
        "read by hand because the binary and structured modes carry them differently"
    },
    ("POST", "/api/auth/citizen/code"): {
        RULE: "a citizen's address is an email address or a phone number such as +31612345678"
    },
    ("POST", "/api/auth/citizen/session"): {
        RULE: "a citizen's address is an email address or a phone number such as +31612345678"
    },
}

# A batch of CloudEvents is answered event by event (described on the operation): 200 with
# each event's own status, so a malformed event in it does not make the batch a 4xx.
BATCH = "application/cloudevents-batch+json"

T = TypeVar("T")

# Bodies the hub reads as raw bytes (a mail as its provider forwards it, notice rows as NDJSON)
# go out as the bytes generated for them.
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")
schemathesis.serializer.alias("application/x-ndjson", "application/octet-stream")


def hub_settings(data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        run_worker=False,
        inbound_mail_secret=SecretStr(INBOUND_MAIL_SECRET),
        twilio_auth_token=SecretStr(TWILIO_TOKEN),
        metrics_token=SecretStr(METRICS_TOKEN),
        # Generated requests come by the hundred from one key and one address: the limits are
        # tested in tests/ratelimit, and here would only answer 429.
        rate_limit_per_minute=0,
        login_tries_per_address=0,
        login_tries_per_client=0,
    )


@dataclass
class Served:
    """A hub answering at ``url``, on its own event loop in a thread (schemathesis calls it
    from the test's thread, synchronously), with the world in its database."""

    url: str
    world: World

    def headers_for(self, case: Case[Any], turn: int) -> dict[str, str]:
        """The credential of one of the kinds of caller the operation declares, each in turn."""
        schemes = [
            name for entry in case.operation.definition.raw.get("security", []) for name in entry
        ]
        if not schemes:
            return {}
        scheme = schemes[turn % len(schemes)]
        caller = self.world.callers[CALLERS[scheme]]
        if scheme == "agencyKey":
            return {"X-API-Key": caller.secret}
        return {"Authorization": f"Bearer {caller.secret}"}


class Loop:
    """An event loop in a thread of its own, that coroutines are handed to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def on_postgres(statement: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def with_tables(url: str) -> None:
    database = Database(url)
    try:
        await create_all(database)
    finally:
        await database.dispose()


async def built_world(database: Database, url: str, settings: Settings) -> World:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await make_world(database, client, settings)


@pytest.fixture(scope="module", params=_backends())
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A database of its own (the world is changed by what Schemathesis sends), the world in
    it, and the hub serving it."""
    folder = tmp_path_factory.mktemp("schemathesis")
    settings = hub_settings(folder)
    loop = Loop()
    postgres = f"hub_schemathesis_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = f"sqlite+aiosqlite:///{folder}/hub.db"
    if request.param == "postgres":
        loop.run(on_postgres(f'CREATE DATABASE "{postgres}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{postgres}"
    try:
        loop.run(with_tables(url))
        database = Database(url)
        app = create_app(settings, database=database)
        server, task, port = loop.run(start_server(app))
        base = f"http://127.0.0.1:{port}"
        try:
            world = loop.run(built_world(database, base, settings))
            yield Served(base, world)
        finally:
            server.should_exit = True
            loop.run(asyncio.wait_for(task, 10))
            loop.run(database.dispose())
    finally:
        if request.param == "postgres":
            loop.run(on_postgres(f'DROP DATABASE IF EXISTS "{postgres}" WITH (FORCE)'))
        loop.close()


def config() -> schemathesis.Config:
    operations: list[dict[str, Any]] = [
        {
            "include-method": method,
            "include-path": path,
            "checks": {name: {"enabled": False} for name in checks},
        }
        for (method, path), checks in EXCLUDED.items()
    ]
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "request-timeout": 30.0,
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                "deterministic": True,
                "database": "none",
                # The credential is ours to give (headers_for); a generated one would only
                # stand in front of it.
                "with-security-parameters": False,
            },
            "checks": {
                **{name: {"enabled": True} for name in CHECKS},
                "max_response_time": MAX_RESPONSE_TIME,
            },
            # A method the operation lacks: OPTIONS (whose Allow is checked too) and one
            # more; a long run tries them all.
            "phases": {"coverage": {"unexpected-methods": UNEXPECTED_METHODS}},
            "operations": operations,
        }
    )


def document() -> dict[str, Any]:
    """The API description as the hub serves it (it does not depend on the database)."""
    return create_app(Settings(environment="test", run_worker=False)).openapi()


schema = schemathesis.openapi.from_dict(document(), config=config())
# Per hub (each backend's) and operation, so that a run does not depend on the order.
turns: dict[tuple[str, str], int] = {}
wrong_types: set[tuple[str, str, object, object]] = set()


def sampled_out(served: Served, case: Case[Any]) -> bool:
    """Whether CI leaves this case out: of the coverage phase's wrong-typed values (nearly half
    of all it sends) one per parameter; a long run sends them all."""
    data = case.meta.phase.data if case.meta is not None else None
    if LONG_RUN or not isinstance(data, CoveragePhaseData):
        return False
    if data.scenario != CoverageScenario.INCORRECT_TYPE:
        return False
    parameter = (served.url, case.operation.label, data.parameter_location, data.parameter)
    if parameter in wrong_types:
        return True
    wrong_types.add(parameter)
    return False


@schema.parametrize()
def test_api(case: Case[Any], served: Served) -> None:
    """No server error, no accepted invalid input, answers as documented."""
    if sampled_out(served, case):
        return
    key = (served.url, case.operation.label)
    turn = turns[key] = turns.get(key, 0) + 1
    negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    if not negative and turn % 3:
        # Two valid paths in three name the world's objects, so the operation does real work;
        # the third keeps what was generated (ids of nothing, the largest numbers).
        values = served.world.path_values
        for name in case.path_parameters or {}:
            case.path_parameters[name] = values[name]
    excluded: list[CheckFunction] = [negative_data_rejection] if case.media_type == BATCH else []
    case.call_and_validate(
        base_url=served.url,
        headers=served.headers_for(case, turn),
        excluded_checks=excluded,
    )


Workflow = schema.as_state_machine()


def test_workflows(served: Served) -> None:
    """Chains of operations along the links Schemathesis infers (a case created, then read,
    changed, its documents listed…): the stateful checks — a deleted thing gone for good, a
    created one there at once — run here, with every other check on each step."""
    steps = iter(range(1_000_000))

    class Hub(Workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": served.url, "headers": served.headers_for(case, next(steps))}

        def validate_response(
            self,
            response: Response,
            case: Case[Any],
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            # The credential is named as ours (headers=), as call_and_validate does.
            case.validate_response(
                response,
                additional_checks=additional_checks,
                excluded_checks=[negative_data_rejection] if case.media_type == BATCH else [],
                headers=kwargs.get("headers"),
                transport_kwargs=kwargs,
                recorder=self.recorder,
            )

    Hub.run(
        settings=hypothesis.settings(
            max_examples=WORKFLOWS,
            stateful_step_count=WORKFLOW_STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            # The hub's state moves on with every step, so a failing chain cannot be replayed
            # to shrink it: it is reported as it ran.
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
    )


def test_every_check_is_run() -> None:
    """A check a newer Schemathesis brings is run too, or this names it."""
    load_all_checks()
    # max_response_time is a setting of the run, not a registered check.
    assert set(CHECKS) == set(REGISTERED.get_all_names()) | {"max_response_time"}
