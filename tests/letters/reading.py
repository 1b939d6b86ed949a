"""Reading back the PDFs the hub prints, as a person (or a print provider's software) would."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

POINT_MM = 25.4 / 72


def pdf_text(content: bytes) -> str:
    """All text of the PDF, page after page, one printed line per line."""
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def page_count(content: bytes) -> int:
    return len(PdfReader(io.BytesIO(content)).pages)


@dataclass(frozen=True)
class Placed:
    """A run of text and where it starts on the page, in millimetres from the top left."""

    text: str
    x: float
    y: float


def placed_text(content: bytes, page: int = 0) -> list[Placed]:
    reader = PdfReader(io.BytesIO(content))
    height = float(reader.pages[page].mediabox.height)
    found: list[Placed] = []

    def visit(text: str, cm: Any, tm: Any, _font: Any, _size: Any) -> None:
        if text.strip():
            x = float(tm[4]) * float(cm[0]) + float(cm[4])
            y = float(tm[5]) * float(cm[3]) + float(cm[5])
            found.append(Placed(text.strip(), x * POINT_MM, (height - y) * POINT_MM))

    reader.pages[page].extract_text(visitor_text=visit)
    return found


def find(placed: list[Placed], text: str) -> Placed:
    return next(p for p in placed if p.text == text)
