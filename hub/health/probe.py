"""The container health check: ``python -m hub.health serve|worker|mail-receiver``.

Each hub process is checked by the thing it does, from inside its own container, with the
same settings it runs with: ``serve`` asks its own ``/healthz``; ``mail-receiver`` waits for
its SMTP greeting; ``worker``, which listens on nothing, checks that it can reach the
database and Redis it works on. Exit status 0 is healthy, 1 is not; one line says why.
The slim image has no curl, hence the standard library.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from hub.config import Settings
from hub.db import Database
from hub.health.service import CHECK_SECONDS, check_readiness

# The address to reach a server on that was told to bind to every interface.
ANY_ADDRESS = {"", "0.0.0.0", "::"}  # noqa: S104 - compared with, never bound


def _local(host: str) -> str:
    return "127.0.0.1" if host in ANY_ADDRESS else host


def probe_serve(settings: Settings) -> str | None:
    url = f"http://{_local(settings.host)}:{settings.port}/healthz"
    # No proxies: a health check asks this container, whatever HTTP_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=CHECK_SECONDS) as response:
            status = int(response.status)
    except (OSError, urllib.error.URLError) as error:
        return f"{url} did not answer ({type(error).__name__})"
    return None if status == 200 else f"{url} answered {status}"


def probe_mail_receiver(settings: Settings) -> str | None:
    address = (_local(settings.mail_receiver_host), settings.mail_receiver_port)
    try:
        with socket.create_connection(address, timeout=CHECK_SECONDS) as connection:
            greeting = connection.recv(512)
            connection.sendall(b"QUIT\r\n")
    except OSError as error:
        return f"no SMTP server at {address[0]}:{address[1]} ({type(error).__name__})"
    if not greeting.startswith(b"220"):
        return f"{address[0]}:{address[1]} did not greet as an SMTP server"
    return None


def probe_worker(settings: Settings) -> str | None:
    async def check() -> str | None:
        database = Database(settings.database_url)
        try:
            readiness = await check_readiness(database, settings.redis_url)
        finally:
            await database.dispose()
        if readiness.ready:
            return None
        return "cannot reach " + " and ".join(readiness.down())

    return asyncio.run(check())


PROBES: dict[str, Callable[[Settings], str | None]] = {
    "serve": probe_serve,
    "worker": probe_worker,
    "mail-receiver": probe_mail_receiver,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in PROBES:
        print(f"usage: python -m hub.health {{{','.join(PROBES)}}}", file=sys.stderr)
        return 2
    try:
        settings = Settings()
    except Exception as error:  # a bad setting: unhealthy
        print(f"unhealthy: the settings do not load ({type(error).__name__})", file=sys.stderr)
        return 1
    trouble = PROBES[args[0]](settings)
    if trouble is not None:
        print(f"unhealthy: {trouble}", file=sys.stderr)
        return 1
    print(f"healthy: hub {args[0]}")
    return 0
