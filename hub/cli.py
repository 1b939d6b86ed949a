"""The ``hub`` command: run the hub, migrate its database, load demo data, check the journey
catalogue and keep the register of agencies, staff, processing activities and API keys.

Bad input ends in a one-line error on stderr and exit code 2; an unusable database or
catalogue in exit code 1. Secrets (API keys, TOTP secrets) are printed once, to stdout, and
never logged.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.config import InsecureSettings, Settings
from hub.db import Database
from hub.errors import HubError, InvalidInput
from hub.observability.logging import configure_logging
from journeys.catalog import (
    PACKAGED_CATALOG,
    Catalog,
    DefinitionError,
    check_catalog,
    load_catalog,
)
from journeys.model import Duration

T = TypeVar("T")

BAD_INPUT = 2
UNUSABLE = 1

app = typer.Typer(
    name="hub",
    help="Interaction Hub: one shared case record for a citizen's interactions with government.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
journeys_app = typer.Typer(help="Inspect and check the journey catalogue.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Keep the register: agencies, teams, staff, processing activities, API keys.",
    no_args_is_help=True,
)
agency_app = typer.Typer(help="Agencies.", no_args_is_help=True)
team_app = typer.Typer(help="Teams of an agency.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff members of an agency.", no_args_is_help=True)
activity_app = typer.Typer(
    help="The agency's register of processing activities (purpose and legal ground).",
    no_args_is_help=True,
)
key_app = typer.Typer(help="API keys of agency systems.", no_args_is_help=True)

app.add_typer(journeys_app, name="journeys")
app.add_typer(admin_app, name="admin")
admin_app.add_typer(agency_app, name="agency")
admin_app.add_typer(team_app, name="team")
admin_app.add_typer(staff_app, name="staff")
admin_app.add_typer(activity_app, name="activity")
admin_app.add_typer(key_app, name="key")


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment, or a one-line error naming the bad variable."""
    try:
        return Settings()
    except InsecureSettings as error:
        fail(str(error))
    except ValidationError as error:
        first = error.errors()[0]
        name = "HUB_" + "_".join(str(part) for part in first["loc"]).upper()
        fail(f"{name}: {first['msg']}")


def is_embedded(settings: Settings) -> bool:
    return make_url(settings.database_url).get_backend_name() == "sqlite"


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def migrate_database(settings: Settings, *, verbose: bool = False) -> None:
    from hub.migrations import upgrade

    try:
        upgrade(settings.database_url, verbose=verbose)
    except (OSError, DBAPIError) as error:
        fail(_database_problem(settings, error), UNUSABLE)


def _database_problem(settings: Settings, error: BaseException) -> str:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    advice = (
        " Has it been migrated? Run `hub migrate`."
        if isinstance(error, OperationalError | ProgrammingError)
        else ""
    )
    return f"cannot use the database at {shown_url(settings.database_url)}: {reason}.{advice}"


def run_in_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one session that commits when it succeeds; domain errors end the command.

    The embedded SQLite database is migrated first, so the register can be kept before the
    hub ever ran.
    """
    if is_embedded(settings):
        migrate_database(settings)

    async def main() -> T:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except HubError as error:
        fail(error.detail)
    except (OSError, DBAPIError) as error:
        fail(_database_problem(settings, error), UNUSABLE)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(header), *(len(row[i]) for row in rows)) if rows else len(header)
        for i, header in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    typer.echo(line(headers).rstrip())
    typer.echo(line(["-" * width for width in widths]).rstrip())
    for row in rows:
        typer.echo(line(row).rstrip())


# --- running ---------------------------------------------------------------------------------


@app.command()
def serve(
    reload: Annotated[
        bool, typer.Option("--reload", help="Restart when code changes (development).")
    ] = False,
) -> None:
    """Run the hub (API, pages, and by default the delivery worker) with uvicorn.

    The embedded SQLite database is migrated first; a PostgreSQL database is migrated with
    `hub migrate` before deploying.
    """
    import uvicorn

    settings = load_settings()
    log_config = configure_logging(settings.log_style, settings.log_level)
    if is_embedded(settings):
        migrate_database(settings)
    address = f"http://{settings.host}:{settings.port}"
    extras = "API docs at /docs"
    if settings.development:
        extras += ", development outbox at /dev/outbox"
    typer.echo(f"Interaction Hub is running at {address} ({extras})")
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=reload,
        # Oversized frames are refused (1009) before they are buffered; the hub checks again.
        ws_max_size=settings.ws_max_frame_bytes,
        # uvicorn's own lines (the access log too) go through the hub's handler: the same
        # format, the request id, and the redacting filter.
        log_config=log_config,
    )


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Do one round of timers and deliveries, then stop.")
    ] = False,
) -> None:
    """Run the delivery worker and durable timers as a process of their own.

    Use it with HUB_RUN_WORKER=false on the `hub serve` processes. Several workers may run
    side by side on PostgreSQL: they claim outbox rows and timers with SKIP LOCKED.
    """
    import signal

    from hub.app import build_adapters
    from hub.delivery.worker import Worker
    from hub.events.fanout import connect_broker

    settings = load_settings()
    configure_logging(settings.log_style, settings.log_level)
    if is_embedded(settings):
        migrate_database(settings)

    async def run() -> None:
        database = Database(settings.database_url)
        # With Redis, events the worker appends (timers, fallbacks) reach live sockets too.
        broker = await connect_broker(settings.redis_url) if settings.redis_url else None
        loop = Worker(
            database=database,
            adapters=build_adapters(settings, database),
            catalog=_load_catalog(settings.journeys_dir),
            broker=broker,
            timezone=settings.timezone,
            interval=settings.worker_interval_seconds,
            concurrency=settings.delivery_concurrency,
            unrecorded_at_most=settings.delivery_unrecorded_at_most,
            claim_seconds=settings.delivery_claim_seconds,
            base_url=settings.base_url,
            document_store=settings.document_store,
        )
        try:
            if once:
                done = await loop.run_once()
                typer.echo(f"Worker round done: {done} timers fired and deliveries attempted.")
                return
            stop = asyncio.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            typer.echo(f"Worker running on {shown_url(settings.database_url)}; Ctrl-C stops it.")
            await loop.run(stop)
        finally:
            if broker is not None:
                await broker.close()
            await database.dispose()

    asyncio.run(run())


@app.command("mail-receiver")
def mail_receiver() -> None:
    """Receive replies by SMTP for the inbound mail domain and put them on their cases.

    Listens on HUB_MAIL_RECEIVER_HOST:HUB_MAIL_RECEIVER_PORT; accepts mail only for
    HUB_INBOUND_MAIL_DOMAIN, up to HUB_MAX_MAIL_BYTES.
    """
    from channels.email.receiver import run_receiver

    settings = load_settings()
    configure_logging(settings.log_style, settings.log_level)
    if is_embedded(settings):
        migrate_database(settings)
    run_receiver(settings)


@app.command()
def migrate() -> None:
    """Bring the database (HUB_DATABASE_URL) up to the newest migration."""
    from hub.migrations import head_revision

    settings = load_settings()
    migrate_database(settings, verbose=True)
    typer.echo(
        f"Database {shown_url(settings.database_url)} is at the newest revision "
        f"({head_revision()})."
    )


@app.command()
def demo() -> None:
    """Migrate, then fill the database with demo agencies, staff, citizens and cases.

    Only in development (HUB_ENVIRONMENT=development): the demo logins are public.
    """
    settings = load_settings()
    if not settings.development:
        fail(
            f"`hub demo` loads logins anyone can read, so it runs only with "
            f"HUB_ENVIRONMENT=development (it is {settings.environment})."
        )
    try:
        import hub.demo as demo_data
    except ModuleNotFoundError as error:
        if error.name != "hub.demo":
            raise
        fail("demo data is not available in this version of the hub (no hub.demo).", UNUSABLE)
    catalog = _load_catalog(settings.journeys_dir)
    migrate_database(settings)

    async def main() -> Any:
        database = Database(settings.database_url)
        try:
            return await demo_data.load_demo(database, catalog)
        finally:
            await database.dispose()

    try:
        summary = asyncio.run(main())
    except HubError as error:
        fail(error.detail)
    except (OSError, DBAPIError) as error:
        fail(_database_problem(settings, error), UNUSABLE)
    print_demo_summary(summary, password=getattr(demo_data, "DEMO_PASSWORD", None))


def print_demo_summary(summary: Any, *, password: str | None) -> None:
    if getattr(summary, "already_loaded", False):
        typer.echo("Demo data is already loaded; nothing was added.")
        if password:
            typer.echo(f"Demo staff log in with password {password} and their TOTP code.")
        return
    typer.echo(f"Demo data loaded: {getattr(summary, 'cases', 0)} cases.")
    staff = getattr(summary, "staff", [])
    if staff:
        typer.echo("")
        typer.echo(
            f"Staff logins (password {password}, plus a code from the TOTP secret):"
            if password
            else "Staff logins (plus a code from the TOTP secret):"
        )
        print_table(["email", "name", "agency", "TOTP secret"], [list(row) for row in staff])
    citizens = getattr(summary, "citizens", [])
    if citizens:
        typer.echo("")
        typer.echo("Citizens (log in with a one-time code; read it in the development outbox):")
        print_table(["name", "email"], [list(row) for row in citizens])
    keys = getattr(summary, "keys", [])
    if keys:
        typer.echo("")
        typer.echo("Agency API keys (shown this once):")
        print_table(["agency", "key"], [list(row) for row in keys])


@app.command("settings")
def show_settings(
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown",
            help="Print the reference of every setting (type, default, meaning) as Markdown, "
            "from the code, whatever the environment holds: docs/settings.md is this output.",
        ),
    ] = False,
) -> None:
    """Every setting: its environment variable, current value and what it does."""
    if markdown:
        typer.echo(settings_markdown(), nl=False)
        return
    settings = load_settings()
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        shown = "(set, hidden)" if isinstance(value, SecretStr) else repr(value)
        if value is None:
            shown = "(not set)"
        typer.echo(f"HUB_{name.upper()} = {shown}")
        typer.echo(f"    {field.description or ''}")


SETTINGS_PREAMBLE = """\
# Settings

<!-- Generated by `hub settings --markdown > docs/settings.md`: edit the descriptions in
hub/config.py, not here. tests/production/test_settings_doc.py fails when they disagree. -->

The hub reads every setting from an environment variable starting with `HUB_`, or from a
`.env` file in the folder it runs in (`.env.example` lists what a production stack sets).
`hub settings` prints the values in force, secrets hidden.

The defaults run the embedded setup: one process, a SQLite file under `var/`, development
mode. With `HUB_ENVIRONMENT=production` the hub refuses to start while a secret is a
development value, a placeholder (a value containing `change-me`, `replace-me` or
`placeholder`, as in `.env.example`) or shorter than the minimum given below, or while the
password inside `HUB_DATABASE_URL` or `HUB_REDIS_URL` is a placeholder; the error names the
variable, never the value.

| Variable | Type | Default | What it does |
|---|---|---|---|
"""


def settings_markdown() -> str:
    """The reference of every setting as a Markdown table, from the code alone."""
    from hub.config import secret_fields, secret_minimum

    secrets = set(secret_fields())
    rows = []
    for name, field in Settings.model_fields.items():
        kind = _setting_type(field.annotation)
        if name in secrets:
            kind = f"secret, at least {secret_minimum(name)} characters in production"
        default = field.get_default(call_default_factory=True)
        rows.append(
            f"| `HUB_{name.upper()}` | {kind} | {_setting_default(default)} "
            f"| {_cell(field.description or '')} |"
        )
    return SETTINGS_PREAMBLE + "\n".join(rows) + "\n"


def _setting_type(annotation: Any) -> str:
    import types
    import typing

    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        named = [_setting_type(a) for a in arguments if a is not type(None)]
        return " or ".join(named) + ", optional"
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in arguments)
    if origin is list:
        return f"JSON list of {_setting_type(arguments[0])}s"
    names = {str: "text", int: "integer", float: "number", bool: "true/false", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _setting_default(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, SecretStr):
        return "a development value"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[]`" if not value else _cell(f"`{value!r}`")
    return _cell(f"`{value}`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- journeys --------------------------------------------------------------------------------


def _catalog_dir(directory: Path | None) -> Path:
    return directory or PACKAGED_CATALOG


def _load_catalog(directory: Path | None) -> Catalog:
    try:
        return load_catalog(_catalog_dir(directory))
    except DefinitionError as error:
        fail(f"{error} (run `hub journeys check` for every problem)", UNUSABLE)


def describe_duration(duration: Duration) -> str:
    return f"{duration.days} {duration.unit} day{'' if duration.days == 1 else 's'}"


DirectoryArgument = Annotated[
    Path | None,
    typer.Argument(
        help="Folder of journey definitions; default HUB_JOURNEYS_DIR or the packaged catalogue.",
        show_default=False,
    ),
]


@journeys_app.command("list")
def list_journeys(directory: DirectoryArgument = None) -> None:
    """The journeys a case can start under (latest version of each)."""
    catalog = _load_catalog(directory or load_settings().journeys_dir)
    rows = [
        [
            d.id,
            str(d.version),
            d.title.en,
            d.context,
            d.citizen_context,
            d.done_by,
            describe_duration(d.service_norm),
        ]
        for d in catalog.all()
    ]
    print_table(
        ["id", "version", "title", "context", "citizen context", "done by", "service norm"], rows
    )


@journeys_app.command("check")
def check_journeys(directory: DirectoryArgument = None) -> None:
    """Check every definition file; list each problem as `file: field: message`."""
    folder = _catalog_dir(directory or load_settings().journeys_dir)
    problems = check_catalog(folder)
    if problems:
        for problem in problems:
            typer.echo(str(problem))
        typer.echo(f"{len(problems)} problem{'' if len(problems) == 1 else 's'}", err=True)
        raise typer.Exit(1)
    count = len(load_catalog(folder))
    typer.echo(f"{count} journey{'' if count == 1 else 's'} OK")


# --- admin: agencies, teams, staff -----------------------------------------------------------


@agency_app.command("create")
def create_agency(
    code: Annotated[str, typer.Argument(help="Short code, e.g. gemeente-utrecht.")],
    name: Annotated[str, typer.Argument(help="Name shown to citizens.")],
) -> None:
    """Register an agency."""
    from hub.agencies import service

    agency = run_in_session(
        load_settings(), lambda session: service.create_agency(session, code=code, name=name)
    )
    typer.echo(f"Created agency {agency.id} ({agency.name}).")


@agency_app.command("list")
def list_agencies() -> None:
    """Every agency."""
    from hub.agencies import service

    agencies = run_in_session(load_settings(), service.list_agencies)
    print_table(["code", "name"], [[a.id, a.name] for a in agencies])


@team_app.command("create")
def create_team(
    agency: Annotated[str, typer.Argument(help="Agency code.")],
    name: Annotated[str, typer.Argument(help="Team name, unique within the agency.")],
) -> None:
    """Add a team to an agency."""
    from hub.agencies import service

    team = run_in_session(
        load_settings(),
        lambda session: service.create_team(session, agency_id=agency, name=name),
    )
    typer.echo(f"Created team {team.name!r} (id {team.id}) of agency {team.agency_id}.")


@staff_app.command("create")
def create_staff(
    agency: Annotated[str, typer.Option(help="Agency code.")],
    email: Annotated[str, typer.Option(help="Login email address.")],
    name: Annotated[str, typer.Option(help="The name citizens see.")],
    role: Annotated[str, typer.Option(help="agent, supervisor or admin.")] = "agent",
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="Ask for a password (hidden). Without it the member cannot log in yet.",
        ),
    ] = False,
) -> None:
    """Add a staff member; prints the TOTP secret for their authenticator app once."""
    from hub.agencies import service
    from hub.auth.totp import provisioning_uri

    secret_password = (
        typer.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    )
    staff, secret = run_in_session(
        load_settings(),
        lambda session: service.create_staff(
            session,
            agency_id=agency,
            email=email,
            display_name=name,
            role=role,
            password=secret_password,
        ),
    )
    typer.echo(
        f"Created staff member {staff.email} ({staff.role}) of {staff.agency_id}: {staff.id}"
    )
    typer.echo("TOTP secret, shown this once - enter it in an authenticator app:")
    typer.echo(f"  {secret}")
    typer.echo(f"  {provisioning_uri(secret, staff.email)}")


# --- admin: processing activities ------------------------------------------------------------


@activity_app.command("create")
def create_activity(
    agency: Annotated[str, typer.Argument(help="Agency code.")],
    code: Annotated[str, typer.Argument(help="Activity code that journeys refer to.")],
    purpose: Annotated[str, typer.Option(help="What the personal data is processed for.")],
    legal_ground: Annotated[str, typer.Option(help="The legal ground, e.g. 'Art. 6(1)(e) AVG'.")],
) -> None:
    """Register a processing activity of an agency."""
    from hub.agencies import service

    activity = run_in_session(
        load_settings(),
        lambda session: service.add_processing_activity(
            session, agency_id=agency, code=code, purpose=purpose, legal_ground=legal_ground
        ),
    )
    typer.echo(f"Registered processing activity {activity.code} of {activity.agency_id}.")


@activity_app.command("list")
def list_activities(agency: Annotated[str, typer.Argument(help="Agency code.")]) -> None:
    """The agency's register of processing activities."""
    from hub.agencies import service

    activities = run_in_session(
        load_settings(),
        lambda session: service.list_processing_activities(session, agency_id=agency),
    )
    print_table(
        ["code", "purpose", "legal ground"],
        [[a.code, a.purpose, a.legal_ground] for a in activities],
    )


# --- admin: API keys -------------------------------------------------------------------------


def _show_new_key(key: Any, raw: str) -> None:
    typer.echo(f"Issued API key {key.id} ({key.name!r}) for agency {key.agency_id}.")
    typer.echo("The key, shown this once - store it in the agency system's secret store:")
    typer.echo(f"  {raw}")


@key_app.command("issue")
def issue_key(
    agency: Annotated[str, typer.Argument(help="Agency code.")],
    name: Annotated[str, typer.Argument(help="Name of the system that uses the key.")],
) -> None:
    """Issue an API key for an agency's system."""
    from hub.agencies.service import get_agency
    from hub.auth import api_keys

    async def work(session: AsyncSession) -> tuple[Any, str]:
        await get_agency(session, agency)
        if not name.strip():
            raise InvalidInput("the key's name must not be empty")
        return await api_keys.issue_key(session, agency_id=agency, name=name.strip())

    _show_new_key(*run_in_session(load_settings(), work))


@key_app.command("rotate")
def rotate_key(key_id: Annotated[uuid.UUID, typer.Argument(help="Id of the key.")]) -> None:
    """Revoke the key and issue its successor (same agency and name)."""
    from hub.auth import api_keys

    async def work(session: AsyncSession) -> tuple[Any, str]:
        return await api_keys.rotate_key(session, key_id=key_id)

    key, raw = run_in_session(load_settings(), work)
    typer.echo(f"Revoked API key {key_id}.")
    _show_new_key(key, raw)


@key_app.command("revoke")
def revoke_key(key_id: Annotated[uuid.UUID, typer.Argument(help="Id of the key.")]) -> None:
    """Revoke an API key: it stops working at once."""
    from hub.auth import api_keys

    async def work(session: AsyncSession) -> Any:
        return await api_keys.revoke_key(session, key_id=key_id)

    key = run_in_session(load_settings(), work)
    typer.echo(f"Revoked API key {key.id} ({key.name!r}) of agency {key.agency_id}.")


@key_app.command("list")
def list_keys(agency: Annotated[str, typer.Argument(help="Agency code.")]) -> None:
    """The agency's API keys (never the keys themselves)."""
    from hub.agencies.service import get_agency
    from hub.auth import api_keys

    async def work(session: AsyncSession) -> Sequence[Any]:
        await get_agency(session, agency)
        return await api_keys.list_keys(session, agency)

    keys = run_in_session(load_settings(), work)

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"

    print_table(
        ["id", "name", "prefix", "created", "last used", "status"],
        [
            [
                str(k.id),
                k.name,
                k.prefix,
                when(k.created_at),
                when(k.last_used_at),
                f"revoked {when(k.revoked_at)}" if k.revoked_at else "active",
            ]
            for k in keys
        ],
    )


# --- notices ------------------------------------------------------------------------------

notices_app = typer.Typer(help="Proactive notices.", no_args_is_help=True)
app.add_typer(notices_app, name="notices")


def _run_notice_job(
    settings: Settings,
    work: Callable[[Database, Callable[[Any], None]], Awaitable[Any]],
    *,
    title: str,
) -> None:
    """Run a bulk job here with a progress bar over the file, then print its summary."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from hub.notices.push import write_report

    if is_embedded(settings):
        migrate_database(settings)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeRemainingColumn(),
        transient=False,
    )
    task = bar.add_task(title, total=None, rows=0)

    def progress(job: Any) -> None:
        bar.update(task, total=job.size, completed=job.offset, rows=job.next_row)

    async def main() -> Any:
        database = Database(settings.database_url)
        try:
            with bar:
                job = await work(database, progress)
            report = None
            if job.rejected:
                report = Path(f"notice-job-{job.id}-rejected.csv")
                await write_report(database, job.id, report)
            return job, report
        finally:
            await database.dispose()

    try:
        job, report = asyncio.run(main())
    except HubError as error:
        fail(error.detail)
    except (OSError, DBAPIError) as error:
        fail(_database_problem(settings, error), UNUSABLE)
    typer.echo(f"Notice job {job.id}: {job.status}.")
    print_table(
        ["rows read", "accepted", "not sent", "duplicates", "rejected"],
        [
            [
                f"{n:,}"
                for n in (job.next_row, job.accepted, job.not_sent, job.duplicates, job.rejected)
            ]
        ],
    )
    if report is not None:
        typer.echo(f"The rejected rows and why: {report}")


@notices_app.command("push")
def push_notices(
    file: Annotated[Path, typer.Argument(help="NDJSON (one notice a line) or CSV file.")],
    agency: Annotated[str, typer.Option(help="The agency the notices come from.")],
    format: Annotated[
        str | None, typer.Option(help="ndjson or csv; by default from the file's extension.")
    ] = None,
    batch_rows: Annotated[int, typer.Option(min=1, max=100_000, help="Rows a batch.")] = 5000,
) -> None:
    """Send a file of notices as a bulk job, here and now, with a progress bar.

    Every row is checked as POST /api/notices checks one notice; rows that cannot be used are
    written with their reason to notice-job-<id>-rejected.csv. If the push is interrupted,
    `hub notices resume JOB` (or a worker, a minute later) finishes it: no row is sent twice.
    """
    from hub.notices.push import format_of, queue_file, run_here

    settings = load_settings()
    if not file.is_file():
        fail(f"there is no file {file}.")
    try:
        kind = format_of(file, format)
    except HubError as error:
        fail(error.detail)
    catalog = _load_catalog(settings.journeys_dir)

    async def work(database: Database, progress: Callable[[Any], None]) -> Any:
        job = await queue_file(database, settings, path=file, agency_id=agency, format=kind)
        return await run_here(
            database, settings, catalog, job.id, batch_rows=batch_rows, progress=progress
        )

    _run_notice_job(settings, work, title=file.name)


@notices_app.command("resume")
def resume_notices(
    job: Annotated[str, typer.Argument(help="The id of an interrupted notice job.")],
) -> None:
    """Finish a bulk job that stopped (its process died), from the last batch it wrote."""
    import uuid

    from hub.notices.push import run_here

    settings = load_settings()
    try:
        job_id = uuid.UUID(job)
    except ValueError:
        fail(f"'{job}' is not a notice job id.")
    catalog = _load_catalog(settings.journeys_dir)

    async def work(database: Database, progress: Callable[[Any], None]) -> Any:
        return await run_here(database, settings, catalog, job_id, progress=progress)

    _run_notice_job(settings, work, title=f"job {job_id}")


access_log_app = typer.Typer(
    help="The access log: who read or changed a citizen's data.", no_args_is_help=True
)
app.add_typer(access_log_app, name="access-log")


@access_log_app.command("verify")
def verify_access_log(
    batch: Annotated[int, typer.Option(min=1, help="Entries read at a time.")] = 5000,
) -> None:
    """Check the access log's hash chain from its first entry. Exit code 0 when every entry is
    in place and unchanged; 1 at the first that is not, naming it and why."""
    from hub.access.chain import verify_chain

    settings = load_settings()

    def progress(checked: int, total: int) -> None:
        if checked < total:
            typer.echo(f"checked {checked} of {total} entries…", err=True)

    async def main() -> Any:
        database = Database(settings.database_url)
        try:
            return await verify_chain(database, batch=batch, progress=progress)
        finally:
            await database.dispose()

    try:
        report = asyncio.run(main())
    except (OSError, DBAPIError) as error:
        fail(_database_problem(settings, error), UNUSABLE)
    if report.broken is None:
        typer.echo(f"{report.checked} entries checked, all OK. Last hash: {report.head_hash}")
        return
    broken = report.broken
    typer.echo(
        f"The access log is broken at entry {broken.seq} (id {broken.entry_id}): "
        f"{broken.reason}. The {report.checked} entries before it are OK.",
        err=True,
    )
    raise typer.Exit(UNUSABLE)
