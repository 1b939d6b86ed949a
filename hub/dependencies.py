"""``Annotated`` aliases typed into route signatures: the session, the catalogue, the broker,
and dates read as the API description writes them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from pydantic import AfterValidator, BeforeValidator
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.config import Settings
from hub.db import Database
from hub.events.fanout import Broker
from journeys.catalog import Catalog


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the route returns, rolled back when it raises.

    The commit happens before the response is sent, so what a client is told was stored
    has been stored.
    """
    async with get_database(request).session() as session:
        yield session


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


async def get_request_id(request: Request) -> str:
    request_id: str = request.state.request_id
    return request_id


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
BrokerDep = Annotated[Broker, Depends(get_broker)]
RequestIdDep = Annotated[str, Depends(get_request_id)]


ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_date(value: object) -> object:
    # Pydantic alone reads a bare number as a Unix time: "0" would be 1970-01-01.
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


def _iso_datetime(value: object) -> object:
    if isinstance(value, str) and not ISO_DATETIME.match(value):
        raise ValueError("give a date and time as ISO 8601, such as 2026-12-07T09:30:00Z")
    return value


def _utc_if_naive(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_datetime), AfterValidator(_utc_if_naive)]
