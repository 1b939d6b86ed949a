"""The pure parts of the SMS service: keywords, references, the question it texts back."""

from __future__ import annotations

import uuid

import pytest

from channels.sms.service import keyword, references_in, which_case_text
from hub.messages.segments import count_segments
from hub.models import Case


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", "stop"),
        (" stop! ", "stop"),
        ("Stoppen", "stop"),
        ("START", "start"),
        ("aanmelden.", "start"),
        ("stop met sms", None),
        ("", None),
        ("Ja", None),
    ],
)
def test_keyword_is_the_whole_text(body: str, expected: str | None) -> None:
    assert keyword(body) == expected


def test_references_are_found_however_written() -> None:
    assert references_in("zaak VR-2026-000012 en hu 2026 7, niet 2026-12") == {
        "VR-2026-000012",
        "HU-2026-000007",
    }
    assert references_in("bel 0612345678") == set()


def case(number: int, title: str) -> Case:
    return Case(
        reference=f"HU-2026-{number:06d}",
        journey_id="huurtoeslag",
        journey_version=1,
        agency_id="toeslagen",
        party_id=uuid.uuid4(),
        title=title,
        stage="ontvangen",
    )


def test_the_question_lists_references_and_short_titles_in_the_party_language() -> None:
    cases = [case(1, "Huurtoeslag 2026"), case(2, "Bezwaar tegen de beschikking huurtoeslag 2025")]
    dutch = which_case_text(cases, "nl").splitlines()
    assert dutch[1:] == [
        "1 HU-2026-000001 Huurtoeslag 2026",
        "2 HU-2026-000002 Bezwaar tegen de...",
    ]
    assert count_segments("\n".join(dutch)).encoding == "GSM-7"
    english = which_case_text(cases, "en")
    assert english.startswith("You have more than one open case.")


def test_the_question_leaves_titles_out_rather_than_grow_past_three_parts() -> None:
    cases = [case(n, f"Beëindiging van uitkering {n}") for n in range(1, 6)]
    question = which_case_text(cases, "nl")
    assert count_segments(question).segments <= 3
    assert question.splitlines()[1:] == [f"{n} HU-2026-{n:06d}" for n in range(1, 6)]
