"""The receiving end of the delivery fault run: an aiosmtpd server in a process of its own that
accepts every mail and appends its Message-ID to a file, one line per mail, before it answers
250 — so a mail the hub handed over is on file even when the hub never heard the answer.

    python tests/hardening/mail_sink.py RECEIVED_FILE

Prints the port it listens on (on 127.0.0.1, one the system chose), then serves until killed.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    """Notes the Message-ID of each mail accepted (``<none>`` for a mail without one)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        found = MESSAGE_ID.search(content[: content.find(b"\r\n\r\n")])
        os.write(self.fd, (found.group(1) if found else b"<none>") + b"\n")
        return "250 OK: queued"


async def main(path: str) -> None:
    recorder = Recorder(path)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder, hostname="sink.test"), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
