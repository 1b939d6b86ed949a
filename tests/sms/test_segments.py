"""Segment counting: GSM-7 and UCS-2 parts at their boundaries, escapes, emoji, refusals."""

from __future__ import annotations

import pytest

from hub.errors import InvalidInput
from hub.messages.segments import MAX_SEGMENTS, check_text, count_segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 1530, 10),
        ("a" * 1531, 11),
    ],
)
def test_gsm7_parts_hold_160_alone_and_153_joined(text: str, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments) == ("GSM-7", segments)


@pytest.mark.parametrize("char", list("€[]{}\\~^|"))
def test_extension_characters_count_double(char: str) -> None:
    assert count_segments(char * 80).units == 160
    assert count_segments(char * 80).segments == 1
    assert count_segments(char * 81).segments == 2
    assert count_segments("a" * 159 + char).segments == 2


def test_an_escaped_character_is_not_split_over_two_parts() -> None:
    # 152 septets then "€" (2): the euro moves whole to part two, which then holds 153 + 1.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text).units == 306
    assert count_segments(text).segments == 3
    assert count_segments("a" * 151 + "€" + "a" * 153).segments == 2


def test_dutch_and_accented_letters_in_gsm7_stay_gsm7() -> None:
    assert count_segments("é è à ù ì ò ä ö ü ñ Ä Ö Ü É £ ¥ § ¿ ¡ Ø å").encoding == "GSM-7"


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ë" * 70, 1),
        ("ë" * 71, 2),
        ("ë" * 134, 2),
        ("ë" * 135, 3),
        ("Beëindiging", 1),
    ],
)
def test_ucs2_parts_hold_70_alone_and_67_joined(text: str, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments) == ("UCS-2", segments)


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2() -> None:
    assert count_segments("a" * 70).segments == 1
    assert count_segments("a" * 69 + "ë").segments == 1
    assert count_segments("a" * 70 + "ë").segments == 2
    assert count_segments("a" * 159 + "ï").outside_gsm7 == ("ï",)


def test_emoji_outside_the_bmp_take_two_units_and_are_not_split() -> None:
    assert count_segments("🙂").units == 2
    assert count_segments("🙂" * 35).segments == 1
    assert count_segments("a" + "🙂" * 35).segments == 2
    # 66 units, then an emoji that does not fit in the 67th unit alone.
    assert count_segments("a" * 66 + "🙂" + "a" * 66).segments == 3
    assert count_segments("a" * 65 + "🙂" + "a" * 67).segments == 2


def test_check_text_returns_the_count_when_it_fits() -> None:
    assert check_text("a" * 1530).segments == MAX_SEGMENTS


def test_check_text_says_how_many_characters_to_cut() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_text("a" * 1600)
    assert refused.value.detail == (
        "This text needs 11 SMS parts; the most is 10. Shorten it by 70 characters."
    )
    assert refused.value.extra["segments"] == 11
    check_text("a" * (1600 - 70))


def test_check_text_names_the_characters_that_forced_ucs2() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_text("Uw uitkering is beëindigd. " * 30, max_segments=4)
    detail = refused.value.detail
    assert "needs 13 SMS parts; the most is 4" in detail
    assert "(ë)" in detail
    assert "67 characters instead of 153" in detail
    cut = int(detail.split("Shorten it by ")[1].split(" ")[0])
    text = "Uw uitkering is beëindigd. " * 30
    assert count_segments(text[: len(text) - cut]).segments == 4
    assert count_segments(text[: len(text) - cut + 1]).segments == 5


def test_check_text_refuses_an_empty_text() -> None:
    with pytest.raises(InvalidInput, match="needs text"):
        check_text("  \n")
