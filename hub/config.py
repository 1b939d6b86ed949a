"""Settings for the hub: one pydantic-settings class, read from the environment (prefix ``HUB_``).

Every setting is documented in its ``description``; ``hub settings`` prints them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105 - refused outside development
# In development the inbound mail endpoint and the SMS webhooks are on with these public
# values, so that a developer (or scripts/channel_switch.py) can answer mail and text the
# hub; outside development they are unset unless configured.
DEVELOPMENT_INBOUND_MAIL_SECRET = "development-inbound-mail-secret"  # noqa: S105
DEVELOPMENT_TWILIO_AUTH_TOKEN = "development-twilio-auth-token"  # noqa: S105
DEVELOPMENT_SECRETS = frozenset(
    {DEVELOPMENT_SECRET, DEVELOPMENT_INBOUND_MAIL_SECRET, DEVELOPMENT_TWILIO_AUTH_TOKEN}
)
# Production refuses a secret shorter than this. The hub's own secrets (signing key, the
# shared secret of the inbound mail endpoint) are ours to make long; a Twilio auth token is
# 32 characters; an SMTP password is the provider's choice, so only the weakest are refused.
SECRET_MINIMUM = {
    "secret_key": 32,
    "inbound_mail_secret": 32,
    "twilio_auth_token": 32,
    "smtp_password": 8,
}
DEFAULT_SECRET_MINIMUM = 16
# What the example values in .env.example and the README contain, so that a copied example
# is refused instead of run with.
PLACEHOLDER_MARKERS = ("changeme", "replaceme", "placeholder")


class InsecureSettings(RuntimeError):
    """Raised when the hub is asked to run outside development with a development secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = Field(
        "development",
        description="development enables demo logins, the development outbox page and "
        "default secrets; production refuses default secrets.",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./var/hub.db",
        description="SQLAlchemy async URL. SQLite (aiosqlite) by default; "
        "postgresql+asyncpg://user@host/db for production.",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db. When set, live events fan out across processes "
        "through Redis pub/sub.",
    )
    secret_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_SECRET),
        description="Signs reply tokens and other tokens. Must be set outside development.",
    )
    access_log_key: SecretStr | None = Field(
        None,
        description="Key of the pseudonyms (HMAC-SHA256) that name citizens in the access log's "
        "hash chain. Unset: derived from HUB_SECRET_KEY. Changing it changes the pseudonyms of "
        "new entries only; the chain still verifies.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="The public URL of the hub, used in links sent to citizens.",
    )
    host: str = Field("127.0.0.1", description="Address `hub serve` binds to.")
    port: int = Field(8000, description="Port `hub serve` binds to.")
    timezone: str = Field(
        "Europe/Amsterdam", description="Time zone in which dates are shown and deadlines fall."
    )
    data_dir: Path = Field(Path("var"), description="Folder for the SQLite file and documents.")
    journeys_dir: Path | None = Field(
        None, description="Folder of journey definitions; the packaged catalogue by default."
    )
    session_hours: int = Field(8, description="How long a login session stays valid.")
    login_code_minutes: int = Field(10, description="How long a one-time login code is valid.")
    login_code_attempts: int = Field(5, description="Wrong tries before a login code is void.")
    response_norm_hours: int = Field(
        24,
        ge=1,
        description="The service norm for answering a citizen: the staff queue flags a message "
        "on any channel that has waited longer than this many hours without an answer.",
    )
    chat_norm_minutes: int = Field(
        10,
        ge=1,
        description="The service norm for a waiting chat: the staff queue flags a chat that has "
        "waited longer than this many minutes to be picked up.",
    )
    run_worker: bool = Field(
        True,
        description="Run the delivery worker and timers inside `hub serve` (the embedded "
        "default). Set false when separate `hub worker` processes run.",
    )
    worker_interval_seconds: float = Field(
        1.0, description="How often the in-process worker looks for due timers and deliveries."
    )
    delivery_concurrency: int = Field(
        16,
        ge=1,
        le=256,
        description="Messages the delivery worker sends at once per channel; each email "
        "send uses an SMTP connection of its own, kept open between mails.",
    )
    delivery_unrecorded_at_most: int | None = Field(
        None,
        ge=1,
        description="Messages the delivery worker may have handed to a provider and not yet "
        "recorded, at most: the most a crash of the worker can send twice. 1 sends one "
        "message at a time, so a crash repeats at most one; default 4 x HUB_DELIVERY_CONCURRENCY.",
    )
    delivery_claim_seconds: float = Field(
        120.0,
        gt=0,
        description="How long the delivery worker holds the outbox rows it takes; the rows of "
        "a worker that died are sent by another after this, marked as perhaps sent twice.",
    )
    documents_dir: Path | None = Field(
        None,
        description="Folder of the document store (uploads, mail attachments, letters). "
        "Default: documents/ under HUB_DATA_DIR.",
    )
    max_upload_bytes: int = Field(
        10_000_000, description="Largest document a citizen, a mail or a desk scan may add."
    )
    notice_job_max_bytes: int = Field(
        2_000_000_000,
        description="Largest bulk file of notices (NDJSON or CSV) an agency may post as a job.",
    )
    notice_job_claim_seconds: float = Field(
        60.0,
        description="How long `hub notices push` holds a bulk job between two batches; if it "
        "dies, a worker or `hub notices resume` takes the job over after this.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host:port) whose pages may open the live websocket, "
        "besides HUB_BASE_URL's own. JSON list.",
    )
    ws_max_frame_bytes: int = Field(
        16_384, description="Largest websocket frame a client may send; larger closes with 1009."
    )
    ws_messages_per_minute: int = Field(
        60, description="Chat messages and signals one websocket connection may send a minute."
    )
    ws_token_seconds: int = Field(
        60, description="How long a websocket ticket (from POST /api/live/tickets) is valid."
    )
    smtp_host: str | None = Field(
        None,
        description="SMTP server for outbound email. Unset: mail goes to the development outbox.",
    )
    smtp_port: int = Field(587, description="SMTP server port.")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (upgrade on port 587), tls (implicit, port 465) or none "
        "(only for a local relay or test server).",
    )
    smtp_username: str | None = Field(None, description="SMTP user name, if it asks for one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_timeout_seconds: float = Field(30.0, description="Give up on the SMTP server after.")
    mail_from: str = Field(
        "Interaction Hub <noreply@hub.example.nl>",
        description="From header of outbound mail. Replies go to the per-case reply address.",
    )
    inbound_mail_domain: str = Field(
        "reply.hub.example.nl",
        description="Domain of the per-case reply addresses reply+<token>@<domain>; the only "
        "domain the mail receiver accepts.",
    )
    inbound_mail_secret: SecretStr | None = Field(
        None,
        description="Shared secret a mail provider sends (Authorization: Bearer) when it posts "
        "raw inbound mail to /api/inbound/email. Unset: that endpoint is off (in development "
        f"it is '{DEVELOPMENT_INBOUND_MAIL_SECRET}').",
    )
    mail_receiver_host: str = Field("127.0.0.1", description="Address `hub mail-receiver` binds.")
    mail_receiver_port: int = Field(2525, description="Port `hub mail-receiver` listens on.")
    max_mail_bytes: int = Field(
        25_000_000, description="Largest inbound mail accepted, attachments included."
    )
    twilio_account_sid: str | None = Field(
        None, description="Twilio account for SMS. Unset: texts go to the development outbox."
    )
    twilio_auth_token: SecretStr | None = Field(
        None,
        description="Twilio auth token: authenticates API calls and signs webhooks. Unset: "
        f"the SMS webhooks are off (in development it is '{DEVELOPMENT_TWILIO_AUTH_TOKEN}').",
    )
    twilio_from_number: str | None = Field(
        None, description="The hub's sending number in E.164 (or a Messaging Service SID)."
    )
    twilio_api_base: str | None = Field(
        None,
        description="Base URL of Twilio's API, for a regional edge or a local stand-in in "
        "tests. Unset: https://api.twilio.com.",
    )
    sms_default_region: str = Field(
        "NL", description="Region for phone numbers written without a country code."
    )
    oidc_issuer: str | None = Field(
        None,
        description="OpenID Connect issuer for citizen login (e.g. a DigiD broker). Unset: "
        "one-time code login.",
    )
    oidc_client_id: str | None = Field(None, description="OpenID Connect client id.")
    oidc_client_secret: SecretStr | None = Field(None, description="OpenID Connect secret.")
    rate_limit_per_minute: float = Field(
        600,
        ge=0,
        description="Requests an agency API key may make a minute, on average (a token "
        "bucket per key, shared through Redis when HUB_REDIS_URL is set). 0 turns it off.",
    )
    rate_limit_burst: int = Field(
        60,
        ge=1,
        description="Requests an agency API key may make at once before the per-minute rate "
        "applies (the token bucket's size).",
    )
    login_tries_per_address: int = Field(
        10,
        ge=0,
        description="Login tries (staff passwords, one-time codes typed in) one email address "
        "or phone number gets within HUB_LOGIN_LIMIT_MINUTES, known or not; refills "
        "evenly over that time. 0 turns it off.",
    )
    login_tries_per_client: int = Field(
        100,
        ge=0,
        description="Logins and code requests one client address (IP) may make within "
        "HUB_LOGIN_LIMIT_MINUTES; refills evenly over that time. 0 turns it off.",
    )
    login_limit_minutes: float = Field(
        15, gt=0, description="The time in which the login limits refill completely."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxies (IP addresses or CIDRs, JSON list) whose X-Forwarded-For or "
        "Forwarded header names the client. Unset: the connection's own address is the "
        "client, and those headers are ignored.",
    )
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1,
        description="Largest request body anywhere but where a larger one has its own "
        "setting (documents: HUB_MAX_UPLOAD_BYTES, bulk notices: HUB_NOTICE_JOB_MAX_BYTES, "
        "inbound mail: HUB_MAX_MAIL_BYTES). Larger is refused with 413.",
    )
    idempotency_key_hours: float = Field(
        24,
        gt=0,
        description="How long an agency's Idempotency-Key and the answer stored with it are "
        "kept; after that the same key runs the request again.",
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="Log lines of `hub serve`, `hub worker` and `hub mail-receiver`: json (one "
        "object a line, for a log collector) or text (readable). Unset: text in development, "
        "json otherwise.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="The least severe log lines written."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token Prometheus sends to GET /metrics. Unset: /metrics is open in "
        "development and test, and off (404) in production.",
    )
    metrics_finished_seconds: float = Field(
        60,
        ge=0,
        description="How often a process counts the finished deliveries for /metrics (a read "
        "of the whole outbox); unfinished ones are counted on every scrape.",
    )

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def log_style(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "text" if self.development else "json"

    @property
    def document_store(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or CIDR") from None
        return proxies

    @model_validator(mode="after")
    def _refuse_insecure_secrets(self) -> Settings:
        if self.environment == "production":
            problems = insecure_secrets(self)
            if problems:
                raise InsecureSettings(
                    "; ".join(problems) + ". Outside development every secret must be a "
                    "random value (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')."
                )
        if self.environment == "development":
            if self.inbound_mail_secret is None:
                self.inbound_mail_secret = SecretStr(DEVELOPMENT_INBOUND_MAIL_SECRET)
            if self.twilio_auth_token is None:
                self.twilio_auth_token = SecretStr(DEVELOPMENT_TWILIO_AUTH_TOKEN)
        return self


def secret_fields() -> list[str]:
    """The settings that hold a secret: every field typed SecretStr (optional or not)."""
    return [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    ]


def secret_minimum(name: str) -> int:
    return SECRET_MINIMUM.get(name, DEFAULT_SECRET_MINIMUM)


def is_placeholder(value: str) -> bool:
    """change-me, CHANGE_ME, Replace Me…: spelled any way, still a placeholder."""
    squashed = "".join(ch for ch in value.lower() if ch.isalnum())
    return any(marker in squashed for marker in PLACEHOLDER_MARKERS)


def insecure_secrets(settings: Settings) -> list[str]:
    """Why each secret that is set would be unsafe in production, naming its variable and
    never its value: a development value, one shorter than its minimum, or a placeholder
    left from an example file."""
    problems = []
    for name in secret_fields():
        secret = getattr(settings, name)
        if secret is None:
            continue
        value = secret.get_secret_value()
        variable = f"HUB_{name.upper()}"
        if value in DEVELOPMENT_SECRETS:
            problems.append(f"{variable} is the development value")
        elif is_placeholder(value):
            problems.append(f"{variable} is a placeholder")
        elif len(value) < secret_minimum(name):
            problems.append(f"{variable} is shorter than {secret_minimum(name)} characters")
    # The database's and Redis's passwords travel inside their URLs. How long they must be
    # is the operator's business; a placeholder copied from .env.example is not.
    for name in ("database_url", "redis_url"):
        password = urlsplit(getattr(settings, name) or "").password or ""
        if is_placeholder(unquote(password)):
            problems.append(f"the password in HUB_{name.upper()} is a placeholder")
    return problems


@lru_cache
def get_settings() -> Settings:
    return Settings()
