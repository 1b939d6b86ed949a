"""Fixtures for the email channel: settings with a reply domain and provider secret, a real
SMTP server to send to, and a self-signed certificate for the TLS paths."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.config import Settings
from tests.email.mails import DOMAIN, MAIL_SECRET, SECRET_KEY
from tests.email.sink import SmtpSink, self_signed_certificate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        run_worker=False,
        secret_key=SECRET_KEY,
        base_url="https://hub.example.nl",
        mail_from="Gemeente Voorbeeld <noreply@hub.test>",
        inbound_mail_domain=DOMAIN,
        inbound_mail_secret=MAIL_SECRET,
        max_upload_bytes=100_000,
    )


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))
