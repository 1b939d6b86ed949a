"""``Annotated`` aliases typed into route signatures: the session, the catalogue, the broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
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
