"""Agency API keys: ``hub_<prefix>_<secret>``. The prefix finds the row; only a SHA-256 hash
of the whole key is stored, so the key itself is shown once, when issued."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import string
import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.db import utcnow
from hub.errors import NotFound
from hub.models import Agency, ApiKey

KEY_PREFIX = "hub_"
PREFIX_LENGTH = 8
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# Writing last_used_at on every call would make every request of an agency wait on one row
# lock; once a minute is precise enough to tell a key in use from an abandoned one.
LAST_USED_PRECISION = dt.timedelta(minutes=1)
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def hash_key(raw: str) -> str:
    # The secret part is 256 random bits: a plain hash cannot be reversed by guessing.
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like_key(raw: str) -> bool:
    return raw.startswith(KEY_PREFIX)


def _parse(raw: str) -> tuple[str, str] | None:
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != "hub":
        return None
    _, prefix, secret = parts
    if len(prefix) != PREFIX_LENGTH or len(secret) < 32:
        return None
    return prefix, secret


def _new_raw_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


async def issue_key(session: AsyncSession, *, agency_id: str, name: str) -> tuple[ApiKey, str]:
    """A new key for the agency's system ``name``: the row, and the key to show once."""
    if await session.get(Agency, agency_id) is None:
        raise NotFound(f"No agency '{agency_id}'.")
    prefix, raw = _new_raw_key()
    key = ApiKey(agency_id=agency_id, name=name, prefix=prefix, key_hash=hash_key(raw))
    session.add(key)
    await session.flush()
    return key, raw


async def _get_key(session: AsyncSession, key_id: uuid.UUID | str) -> ApiKey:
    key = await session.get(ApiKey, uuid.UUID(str(key_id)))
    if key is None:
        raise NotFound("No such API key.")
    return key


async def revoke_key(session: AsyncSession, *, key_id: uuid.UUID | str) -> ApiKey:
    """Revoke the key: it stops working at once. Revoking a revoked key changes nothing."""
    key = await _get_key(session, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        await session.flush()
    return key


async def rotate_key(session: AsyncSession, *, key_id: uuid.UUID | str) -> tuple[ApiKey, str]:
    """Revoke the key and issue its successor under the same name and agency."""
    old = await revoke_key(session, key_id=key_id)
    return await issue_key(session, agency_id=old.agency_id, name=old.name)


async def list_keys(session: AsyncSession, agency_id: str) -> Sequence[ApiKey]:
    """The agency's keys, revoked ones included, oldest first."""
    query = (
        select(ApiKey)
        .where(ApiKey.agency_id == agency_id)
        .order_by(col(ApiKey.created_at), col(ApiKey.name))
    )
    return (await session.exec(query)).all()


async def verify_api_key(session: AsyncSession, raw: str) -> ApiKey | None:
    """The unrevoked key ``raw`` is, else None. Marks it used (to the minute)."""
    parsed = _parse(raw)
    if parsed is None:
        return None
    prefix, _ = parsed
    key = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    matches = hmac.compare_digest(key.key_hash if key else _DUMMY_HASH, hash_key(raw))
    if key is None or not matches or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        key.last_used_at = now
        session.add(key)
        await session.flush()
    return key
