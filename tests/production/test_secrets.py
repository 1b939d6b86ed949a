"""In production every secret refuses a development value, a placeholder copied from an
example file, or a short value, naming the variable and never the value; development runs
with anything."""

from __future__ import annotations

import secrets

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from hub.cli import app
from hub.config import (
    DEVELOPMENT_SECRETS,
    InsecureSettings,
    Settings,
    secret_fields,
    secret_minimum,
)

GOOD = secrets.token_urlsafe(48)
SECRETS = secret_fields()


def production(**values: str) -> Settings:
    return Settings(environment="production", **{"secret_key": GOOD, **values})  # type: ignore[arg-type]


def test_the_secrets_are_the_ones_we_expect() -> None:
    # A new SecretStr setting is checked without anyone remembering to; this list is here so
    # that a secret typed as plain text (and so unchecked, and shown by `hub settings`) is
    # noticed in review.
    assert set(SECRETS) >= {
        "secret_key",
        "smtp_password",
        "inbound_mail_secret",
        "twilio_auth_token",
        "oidc_client_secret",
    }
    for name in Settings.model_fields:
        if any(word in name for word in ("secret", "password", "token")) and not name.endswith(
            ("_seconds", "_minutes", "_hours")
        ):
            assert name in SECRETS, f"{name} looks like a secret but is not typed SecretStr"


def test_production_refuses_to_start_on_the_development_signing_key() -> None:
    with pytest.raises(InsecureSettings, match="HUB_SECRET_KEY is the development value"):
        Settings(environment="production")


@pytest.mark.parametrize("name", SECRETS)
def test_each_secret_refuses_a_development_value(name: str) -> None:
    for value in DEVELOPMENT_SECRETS:
        with pytest.raises(InsecureSettings) as refused:
            production(**{name: value})
        assert f"HUB_{name.upper()} is the development value" in str(refused.value)
        assert value not in str(refused.value)


@pytest.mark.parametrize("name", SECRETS)
@pytest.mark.parametrize("placeholder", ["change-me", "CHANGE_ME", "replace-me", "placeholder"])
def test_each_secret_refuses_a_placeholder(name: str, placeholder: str) -> None:
    value = f"{placeholder}-{GOOD}"
    with pytest.raises(InsecureSettings) as refused:
        production(**{name: value})
    assert f"HUB_{name.upper()} is a placeholder" in str(refused.value)
    assert value not in str(refused.value)


@pytest.mark.parametrize("name", SECRETS)
def test_each_secret_refuses_a_short_value_and_takes_a_long_enough_one(name: str) -> None:
    minimum = secret_minimum(name)
    short = GOOD[: minimum - 1]
    with pytest.raises(InsecureSettings) as refused:
        production(**{name: short})
    assert f"HUB_{name.upper()} is shorter than {minimum} characters" in str(refused.value)
    assert short not in str(refused.value)
    accepted = production(**{name: GOOD[:minimum]})
    assert getattr(accepted, name) == SecretStr(GOOD[:minimum])


def test_a_placeholder_password_in_the_database_or_redis_url_is_refused() -> None:
    with pytest.raises(InsecureSettings) as refused:
        production(
            database_url="postgresql+asyncpg://hub:change-me-database-password@db/hub",
            redis_url="redis://:Replace%20Me@redis:6379/0",
        )
    message = str(refused.value)
    assert "the password in HUB_DATABASE_URL is a placeholder" in message
    assert "the password in HUB_REDIS_URL is a placeholder" in message
    assert "change-me-database-password" not in message and "Replace" not in message
    chosen = production(database_url=f"postgresql+asyncpg://hub:{GOOD[:12]}@db/hub")
    assert chosen.database_url.endswith("@db/hub")


def test_every_bad_secret_is_named_at_once() -> None:
    with pytest.raises(InsecureSettings) as refused:
        Settings(environment="production", smtp_password="hunter2", twilio_auth_token="abc")
    message = str(refused.value)
    for variable in ("HUB_SECRET_KEY", "HUB_SMTP_PASSWORD", "HUB_TWILIO_AUTH_TOKEN"):
        assert variable in message
    assert "hunter2" not in message


def test_development_runs_with_short_and_default_secrets() -> None:
    settings = Settings(environment="development", smtp_password="pw", inbound_mail_secret="x")
    assert settings.secret_key.get_secret_value() in DEVELOPMENT_SECRETS


def test_the_hub_command_refuses_in_one_line_without_the_value() -> None:
    result = CliRunner().invoke(
        app,
        ["settings"],
        env={"HUB_ENVIRONMENT": "production", "HUB_SECRET_KEY": GOOD, "HUB_SMTP_PASSWORD": "pw1"},
    )
    assert result.exit_code == 2
    assert result.output.startswith("Error: HUB_SMTP_PASSWORD is shorter than 8 characters.")
    assert len(result.output.strip().splitlines()) == 1 and "pw1" not in result.output
