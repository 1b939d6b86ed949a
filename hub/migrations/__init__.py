"""Alembic migrations of the hub's database, run programmatically or with ``hub migrate``.

``alembic -c hub/alembic.ini …`` works too (for ``revision --autogenerate``); both use the
same configuration file and take the database URL from the settings unless given one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = MIGRATIONS_DIR.parent / "alembic.ini"


def alembic_config(database_url: str | None = None, *, configure_logging: bool = False) -> Config:
    """The hub's Alembic configuration, pointed at ``database_url`` when one is given.

    ``configure_logging`` lets Alembic set up logging from ``alembic.ini`` (the command line
    wants its progress lines; a running hub or a test keeps its own logging).
    """
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        # ConfigParser interpolates %; a password may contain one.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade(database_url: str, *, revision: str = "head", verbose: bool = False) -> None:
    """Bring the database at ``database_url`` up to ``revision`` (the newest by default).

    Safe to call from inside a running event loop: Alembic then runs, with its own loop, in a
    separate thread that this call waits for (so the calling loop is blocked meanwhile; from
    async code prefer :func:`upgrade_async`).
    """
    _run(command.upgrade, alembic_config(database_url, configure_logging=verbose), revision)


def downgrade(database_url: str, *, revision: str, verbose: bool = False) -> None:
    """Take the database back to ``revision`` ("base": no tables). Runs as :func:`upgrade`."""
    _run(command.downgrade, alembic_config(database_url, configure_logging=verbose), revision)


def _run(step: Callable[[Config, str], None], config: Config, revision: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        step(config, revision)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            step(config, revision)
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    worker = threading.Thread(target=run, name="hub-migrations")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]


async def upgrade_async(database_url: str, *, revision: str = "head") -> None:
    """:func:`upgrade` without blocking the running event loop."""
    await asyncio.to_thread(upgrade, database_url, revision=revision)


def head_revision() -> str | None:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


__all__ = [
    "ALEMBIC_INI",
    "alembic_config",
    "downgrade",
    "head_revision",
    "upgrade",
    "upgrade_async",
]
