"""Phone numbers as E.164, read in the default region."""

from __future__ import annotations

import pytest

from hub.parties.phones import InvalidNumber, e164_or_none, to_e164


@pytest.mark.parametrize(
    "raw",
    ["+31612345678", "06 12345678", "06-1234 5678", "(06) 12.34.56.78", "0031612345678"],
)
def test_dutch_mobile_numbers_in_any_writing_become_e164(raw: str) -> None:
    assert to_e164(raw) == "+31612345678"


def test_a_number_without_country_code_is_read_in_the_default_region() -> None:
    assert to_e164("030 123 4567", "NL") == "+31301234567"
    assert to_e164("0471 12 34 56", "BE") == "+32471123456"
    assert to_e164("+32 471 12 34 56", "NL") == "+32471123456"


@pytest.mark.parametrize("raw", ["", "12", "+3161234567890", "06-CALLME", "not a number", "+0"])
def test_what_is_not_a_valid_number_is_refused_clearly(raw: str) -> None:
    with pytest.raises(InvalidNumber) as refused:
        to_e164(raw)
    assert refused.value.status == 422
    assert "phone number" in refused.value.detail


def test_e164_or_none_for_short_codes_and_sender_names() -> None:
    assert e164_or_none("HUB") is None
    assert e164_or_none("4343") is None
    assert e164_or_none("+31612345678") == "+31612345678"
