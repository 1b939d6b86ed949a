"""A real `hub serve` process stopped with SIGTERM, as a deploy stops it: its live sockets are
closed with 1012 ("reconnect"), it exits cleanly, and what it logged is one JSON object a
line, the access lines carrying the request id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import httpx

from hub.db import Database
from hub.live.protocol import Close
from tests.live.harness import LiveServer, free_port, live_client, make_world

HUB = str(Path(sys.executable).with_name("hub"))


async def test_sigterm_tells_live_clients_to_reconnect_and_logs_json(
    database: Database, tmp_path: Path
) -> None:
    if database.dialect == "sqlite":
        # `hub serve` migrates an embedded database itself: give it a file of its own.
        url = f"sqlite+aiosqlite:///{tmp_path}/served.db"
    else:
        url = database.url
    port = free_port()
    env = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_HOST": "127.0.0.1",
        "HUB_PORT": str(port),
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_BASE_URL": f"http://127.0.0.1:{port}",
        "HUB_LOG_FORMAT": "json",
    }
    env.pop("HUB_REDIS_URL", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            HUB, "serve", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=stderr
        )
    served = database if database.dialect != "sqlite" else Database(url)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(400):
                assert process.returncode is None, log.read_text()
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            world = await make_world(served)
            server = LiveServer(app=None, host="127.0.0.1", port=port, server=None)  # type: ignore[arg-type]
            client = await live_client(server, http, world.citizen_token)
            await client.follow(world.case_id, after=0)
            metrics = await http.get("/metrics", headers={"X-Request-ID": "scrape-before-stop"})
            assert "hub_live_websockets 1.0" in metrics.text

            process.send_signal(signal.SIGTERM)
            assert await client.closed_with(10) == Close.RECONNECT
            # uvicorn shuts down gracefully, then raises the signal again for its exit status.
            assert await asyncio.wait_for(process.wait(), 15) in (0, -signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if served is not database:
            await served.dispose()

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert lines, "hub serve logged nothing"
    assert all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    scrape = [
        line
        for line in lines
        if line["logger"] == "uvicorn.access" and line.get("path") == "/metrics"
    ]
    assert [line["request_id"] for line in scrape] == ["scrape-before-stop"]
    assert scrape[0]["status"] == 200 and scrape[0]["method"] == "GET"
    assert any(line["message"] == "Shutting down" for line in lines)
    assert any(line["message"].startswith("Finished server process") for line in lines)
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")], lines
