"""How many SMS parts a text takes, so that over-long texts are refused before they are queued.

A text travels in GSM-7 when every character is in the GSM 03.38 alphabet (its basic table,
or its extension table, whose characters take an escape and so count as two), and in UCS-2
otherwise: a single ``ë`` or emoji turns the whole text into UCS-2. One part holds 160 GSM-7
septets or 70 UTF-16 code units; a text longer than that is split into parts of 153 septets or
67 code units (the rest of each part carries the header that joins them again). An escaped
character is never split over two parts, nor is a character outside the Basic Multilingual
Plane (most emoji), which takes two UTF-16 code units.

Pure: no database, no network. Twilio counts the same way, except that it may replace some
characters by GSM-7 look-alikes when its "smart encoding" is switched on; the hub does not
count on that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.errors import InvalidInput

Encoding = Literal["GSM-7", "UCS-2"]

# Twilio refuses bodies over 1600 characters; ten parts is also what it advises as the most.
MAX_SEGMENTS = 10

# GSM 03.38 basic character set (the escape code 0x1B is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each of these is sent as an escape plus a septet.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_PART = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SegmentCount:
    """What a text costs: its encoding, its length in that encoding's units (septets or
    UTF-16 code units), and the number of parts. ``outside_gsm7`` lists the characters that
    forced UCS-2, in order of first appearance."""

    encoding: Encoding
    units: int
    segments: int
    outside_gsm7: tuple[str, ...] = ()

    @property
    def per_segment(self) -> int:
        """How many units one part holds at this length."""
        return SINGLE[self.encoding] if self.segments <= 1 else PER_PART[self.encoding]


def unit_lengths(text: str, encoding: Encoding) -> list[int]:
    """Each character's length in units of ``encoding``."""
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2."""
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text) else "UCS-2"


def _parts(lengths: list[int], encoding: Encoding) -> int:
    total = sum(lengths)
    if total <= SINGLE[encoding]:
        return 1
    room = PER_PART[encoding]
    parts, used = 1, 0
    for length in lengths:
        if used + length > room:  # a two-unit character moves whole to the next part
            parts, used = parts + 1, 0
        used += length
    return parts


def count_segments(text: str) -> SegmentCount:
    """The encoding, length and number of parts of ``text`` (an empty text is one part)."""
    encoding = encoding_of(text)
    lengths = unit_lengths(text, encoding)
    outside: tuple[str, ...] = ()
    if encoding == "UCS-2":
        seen = dict.fromkeys(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION)
        outside = tuple(seen)
    return SegmentCount(encoding, sum(lengths), _parts(lengths, encoding), outside)


def _longest_fitting_prefix(text: str, max_segments: int) -> int:
    """The most characters from the start of ``text`` that fit in ``max_segments`` parts."""
    low, high = 0, len(text)
    while low < high:  # the number of parts only grows as the prefix grows
        middle = (low + high + 1) // 2
        if count_segments(text[:middle]).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    return low


def check_text(text: str, *, max_segments: int = MAX_SEGMENTS) -> SegmentCount:
    """The text's segment count; raises :class:`InvalidInput` when it is empty or needs more
    than ``max_segments`` parts, saying by how many characters to shorten it and, for UCS-2,
    which characters made every part shorter."""
    if not text.strip():
        raise InvalidInput("A text message needs text.")
    count = count_segments(text)
    if count.segments <= max_segments:
        return count
    excess = len(text) - _longest_fitting_prefix(text, max_segments)
    detail = (
        f"This text needs {count.segments} SMS parts; the most is {max_segments}. "
        f"Shorten it by {excess} character{'s' if excess != 1 else ''}."
    )
    if count.encoding == "UCS-2":
        shown = " ".join(count.outside_gsm7[:5])
        detail += (
            f" It contains characters outside the GSM-7 alphabet ({shown}), so each part "
            f"holds {PER_PART['UCS-2']} characters instead of {PER_PART['GSM-7']}."
        )
    raise InvalidInput(
        detail, segments=count.segments, max_segments=max_segments, encoding=count.encoding
    )
