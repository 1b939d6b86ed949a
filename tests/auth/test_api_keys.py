from __future__ import annotations

import re

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.auth.api_keys import (
    hash_key,
    issue_key,
    list_keys,
    revoke_key,
    rotate_key,
    verify_api_key,
)
from hub.errors import NotFound
from tests.builders import make_agency


async def test_an_issued_key_verifies_and_only_its_hash_is_kept(session: AsyncSession) -> None:
    await make_agency(session)

    key, raw = await issue_key(session, agency_id="toeslagen", name="back office")

    assert re.fullmatch(r"hub_[a-z0-9]{8}_[A-Za-z0-9_-]{32,}", raw)
    assert raw.split("_")[1] == key.prefix
    assert key.key_hash == hash_key(raw)
    assert raw not in key.key_hash
    assert key.last_used_at is None
    found = await verify_api_key(session, raw)
    assert found is not None and found.id == key.id
    assert found.last_used_at is not None


async def test_wrong_or_garbled_keys_verify_as_nothing(session: AsyncSession) -> None:
    await make_agency(session)
    _, raw = await issue_key(session, agency_id="toeslagen", name="back office")

    assert await verify_api_key(session, raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert await verify_api_key(session, raw + "x") is None
    assert await verify_api_key(session, "hub_short_secret") is None
    assert await verify_api_key(session, "hub_zzzzzzzz_" + "a" * 43) is None
    assert await verify_api_key(session, "") is None


async def test_rotation_revokes_the_old_key(session: AsyncSession) -> None:
    await make_agency(session)
    old, old_raw = await issue_key(session, agency_id="toeslagen", name="back office")

    new, new_raw = await rotate_key(session, key_id=old.id)

    assert new.id != old.id and new.name == "back office" and new.agency_id == "toeslagen"
    assert old.revoked_at is not None
    assert await verify_api_key(session, old_raw) is None
    assert await verify_api_key(session, new_raw) is not None


async def test_a_revoked_key_stops_working(session: AsyncSession) -> None:
    await make_agency(session)
    key, raw = await issue_key(session, agency_id="toeslagen", name="back office")

    revoked = await revoke_key(session, key_id=str(key.id))
    first_revocation = revoked.revoked_at
    await revoke_key(session, key_id=key.id)

    assert first_revocation is not None and key.revoked_at == first_revocation
    assert await verify_api_key(session, raw) is None


async def test_list_keys_is_per_agency(session: AsyncSession) -> None:
    await make_agency(session)
    await make_agency(session, "rdw")
    a, _ = await issue_key(session, agency_id="toeslagen", name="a")
    b, _ = await issue_key(session, agency_id="toeslagen", name="b")
    await issue_key(session, agency_id="rdw", name="c")
    await revoke_key(session, key_id=a.id)

    assert [k.id for k in await list_keys(session, "toeslagen")] == [a.id, b.id]


async def test_unknown_agency_or_key_is_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFound):
        await issue_key(session, agency_id="nope", name="x")
    with pytest.raises(NotFound):
        await revoke_key(session, key_id="00000000-0000-0000-0000-000000000000")
