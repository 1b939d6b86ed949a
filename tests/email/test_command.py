"""`hub mail-receiver` as the process an operator starts: it migrates the embedded database,
takes a reply for the inbound domain onto its case, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from asyncio.subprocess import PIPE, STDOUT, Process
from pathlib import Path

import aiosmtplib
from sqlmodel import select

from hub.db import Database
from hub.models import Message
from tests.builders import make_agency, make_case, make_party
from tests.email.mails import DOMAIN, SECRET_KEY, citizen_mail, reply_to

HUB = Path(sys.executable).parent / "hub"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for(port: int, process: Process) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert process.returncode is None, "hub mail-receiver stopped"
            assert time.monotonic() < deadline, "hub mail-receiver did not listen within 30 s"
            await asyncio.sleep(0.1)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def test_hub_mail_receiver_puts_a_reply_on_its_case(tmp_path: Path) -> None:
    port = free_port()
    url = f"sqlite+aiosqlite:///{tmp_path}/hub.db"
    environment = {
        **os.environ,
        "HUB_ENVIRONMENT": "test",
        "HUB_DATABASE_URL": url,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_SECRET_KEY": SECRET_KEY,
        "HUB_INBOUND_MAIL_DOMAIN": DOMAIN,
        "HUB_MAIL_RECEIVER_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        str(HUB), "mail-receiver", env=environment, cwd=tmp_path, stdout=PIPE, stderr=STDOUT
    )
    database = Database(url)
    try:
        await wait_for(port, process)
        async with database.session() as session:
            await make_agency(session)
            party = await make_party(session, "Jan Jansen", email="jan@example.nl")
            case = await make_case(session, party)
        await aiosmtplib.send(
            citizen_mail(to=reply_to(case)),
            sender="jan@example.nl",
            recipients=[reply_to(case)],
            hostname="127.0.0.1",
            port=port,
            timeout=10,
        )
        async with database.session() as session:
            [message] = (
                await session.exec(select(Message).where(Message.case_id == case.id))
            ).all()
        assert message.identified_by == "reply_token"
        assert message.body == "Ik heb de stukken gestuurd."
    finally:
        if process.returncode is None:
            process.terminate()
        raw_output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        await database.dispose()
    output = raw_output.decode()
    assert process.returncode == 0, output
    assert f"Mail receiver listening on 127.0.0.1:{port} for mail to {DOMAIN}" in output
