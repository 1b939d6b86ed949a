from __future__ import annotations

from argon2 import PasswordHasher

from hub.auth.passwords import hash_password, needs_rehash, verify_password


def test_a_hash_verifies_its_password_only() -> None:
    hashed = hash_password("s3cret words")

    assert hashed.startswith("$argon2id$")
    assert "s3cret" not in hashed
    assert verify_password(hashed, "s3cret words")
    assert not verify_password(hashed, "s3cret word")


def test_a_malformed_hash_verifies_nothing() -> None:
    assert not verify_password("not a hash", "anything")
    assert not verify_password("", "")


def test_weaker_hashes_ask_for_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw")

    assert verify_password(weak, "pw")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("pw"))
