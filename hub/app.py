"""The wiring: ``create_app()`` builds the FastAPI application with its routers, the lifespan
(database, journey catalogue, live fan-out, in-process worker) and the channel adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from channels.devoutbox.adapter import DevOutboxAdapter
from channels.email import wiring as email_wiring
from channels.letter import wiring as letter_wiring
from channels.sms import wiring as sms_wiring
from hub.access import chain as access_chain
from hub.config import Settings, get_settings
from hub.db import Database
from hub.delivery.worker import Worker
from hub.errors import describe_problems, install_problem_handlers
from hub.events.fanout import connect_broker
from hub.live.connection import close_all as close_live_sockets
from hub.observability.middleware import RequestContext
from hub.ports import AdapterRegistry
from hub.ratelimit.logins import login_limits_for
from journeys.catalog import load_catalog


def build_adapters(settings: Settings, database: Database) -> AdapterRegistry:
    """The channel adapters the settings call for; in development, the development outbox for
    the rest."""
    adapters = AdapterRegistry()
    if settings.environment in ("development", "test"):
        # In production a channel without settings has no adapter: its deliveries fail and
        # fall back to the next channel, visibly, instead of pretending to be delivered.
        for channel in ("email", "sms", "letter"):
            adapters.register(DevOutboxAdapter(channel))
    for wiring in (email_wiring, sms_wiring, letter_wiring):
        for adapter in wiring.adapters(settings, database):
            adapters.register(adapter)
    return adapters


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    access_chain.use_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_database = database is None
        app.state.settings = settings
        app.state.database = database or Database(settings.database_url)
        app.state.catalog = load_catalog(settings.journeys_dir)
        app.state.broker = await connect_broker(settings.redis_url)
        app.state.adapters = build_adapters(settings, app.state.database)
        app.state.login_limits = login_limits_for(settings)
        stop = asyncio.Event()
        worker_task = None
        if settings.run_worker:
            worker = Worker(
                database=app.state.database,
                adapters=app.state.adapters,
                catalog=app.state.catalog,
                broker=app.state.broker,
                timezone=settings.timezone,
                interval=settings.worker_interval_seconds,
                concurrency=settings.delivery_concurrency,
                unrecorded_at_most=settings.delivery_unrecorded_at_most,
                claim_seconds=settings.delivery_claim_seconds,
                base_url=settings.base_url,
                document_store=settings.document_store,
            )
            worker_task = asyncio.create_task(worker.run(stop), name="hub-worker")
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                await worker_task
            await close_live_sockets(app.state)
            await app.state.broker.close()
            await app.state.login_limits.close()
            if own_database:
                await app.state.database.dispose()

    app = FastAPI(
        title="Interaction Hub",
        summary="One shared case record for a citizen's interactions with government, "
        "across channels and agencies.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    describe_problems(app)
    # Agency API keys: the rate limit (outer, before any database work), then Idempotency-Key
    # (inner). Both sit inside the request-id middleware so that their answers carry the id.
    from hub.idempotency.middleware import Idempotency
    from hub.ratelimit.middleware import RateLimit

    app.add_middleware(Idempotency, settings=settings)
    app.add_middleware(RateLimit, settings=settings)
    # Every request body is bounded (HUB_MAX_BODY_BYTES, or a file route's own limit)
    # before anything inside reads it.
    from hub.ratelimit.body_size import BodySizeLimit

    app.add_middleware(BodySizeLimit, settings=settings)

    # Outermost: the request id (X-Request-ID, and on every log line) and the HTTP metrics.
    app.add_middleware(RequestContext)

    from channels.email.routes import router as email_router
    from channels.letter.routes import router as letters_router
    from channels.sms.routes import router as sms_router
    from hub.access.routes import router as access_router
    from hub.auth.routes import router as auth_router
    from hub.backoffice.routes import router as backoffice_router
    from hub.cases.routes import router as cases_router
    from hub.chat.routes import router as chat_router
    from hub.desk.routes import router as desk_router
    from hub.documents.routes import router as documents_router
    from hub.export.routes import router as export_router
    from hub.health.routes import router as health_router
    from hub.insights.routes import router as insights_router
    from hub.live.routes import router as live_router
    from hub.messages.routes import router as messages_router
    from hub.notices.job_routes import router as notice_jobs_router
    from hub.notices.routes import router as notices_router
    from hub.observability.routes import router as metrics_router
    from hub.parties.routes import router as parties_router
    from hub.review.routes import router as review_router
    from hub.webhooks.routes import router as webhooks_router

    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(cases_router)
    app.include_router(messages_router)
    app.include_router(documents_router)
    app.include_router(chat_router)
    app.include_router(live_router)
    app.include_router(desk_router)
    app.include_router(review_router)
    app.include_router(parties_router)
    app.include_router(access_router)
    app.include_router(export_router)
    app.include_router(email_router)
    app.include_router(sms_router)
    app.include_router(letters_router)
    app.include_router(notices_router)
    app.include_router(notice_jobs_router)
    app.include_router(backoffice_router)
    app.include_router(webhooks_router)
    app.include_router(insights_router)
    if settings.environment in ("development", "test"):
        from hub.web.dev_outbox import router as dev_outbox_router

        app.include_router(dev_outbox_router)
    app.include_router(auth_router)
    # The portal and console pages, their static files, and the security headers.
    from hub.web.pages import install_pages

    install_pages(app, settings)
    return app
