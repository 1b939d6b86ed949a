from __future__ import annotations

import datetime as dt

import pyotp

from hub.auth.totp import new_totp_secret, provisioning_uri, verify_totp

MOMENT = dt.datetime(2026, 3, 2, 9, 30, 15, tzinfo=dt.UTC)


def test_the_current_code_is_accepted() -> None:
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(MOMENT)

    assert verify_totp(secret, code, at=MOMENT)
    assert verify_totp(secret, f" {code[:3]} {code[3:]} ", at=MOMENT)


def test_one_step_of_drift_is_allowed_two_are_not() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)

    assert verify_totp(secret, totp.at(MOMENT - dt.timedelta(seconds=30)), at=MOMENT)
    assert verify_totp(secret, totp.at(MOMENT + dt.timedelta(seconds=30)), at=MOMENT)
    assert not verify_totp(secret, totp.at(MOMENT - dt.timedelta(seconds=90)), at=MOMENT)


def test_garbage_is_refused() -> None:
    secret = new_totp_secret()

    assert not verify_totp(secret, "", at=MOMENT)
    assert not verify_totp(secret, "abcdef", at=MOMENT)
    assert not verify_totp(secret, "1234567", at=MOMENT)
    assert not verify_totp("not base32!", "123456", at=MOMENT)


def test_provisioning_uri_names_the_hub_and_the_account() -> None:
    secret = new_totp_secret()
    uri = provisioning_uri(secret, "fatima@toeslagen.example")

    assert uri.startswith("otpauth://totp/Interaction%20Hub:fatima%40toeslagen.example?")
    assert f"secret={secret}" in uri
