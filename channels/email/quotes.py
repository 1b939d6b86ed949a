"""What a citizen wrote in a reply, without the quoted history and the signature.

Pure functions, no I/O. Mail clients mark the start of the quoted history in different ways:
an attribution line ("On … wrote:", "Op … schreef …:", Apple's "Op … heeft … het volgende
geschreven:", sometimes wrapped over two or three lines), Outlook's header block
("From:/Sent:", "Van:/Verzonden:") or its "-----Original Message-----" divider, and "> "
quoted lines. In HTML mail the quote is an element (Gmail's ``gmail_quote`` div, Outlook's
``divRplyFwdMsg`` and top-bordered divider, Apple's ``blockquote type=cite``). The reply is
cut at the first of these; a "-- " signature and a "Sent from my iPhone" line at the end go
too. When nothing would be left (a forward, a mail that is only a quote), the full text is
kept: a message is never shown empty.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# "-----Original Message-----" and its translations, and the forward dividers.
DIVIDER = re.compile(
    r"^\s*-{2,}\s*(original message|oorspronkelijk bericht|origineel bericht|"
    r"forwarded message|doorgestuurd bericht)\s*-{2,}\s*$",
    re.IGNORECASE,
)
# Outlook's header block: "From:" / "Van:" followed within a few lines by a date line.
HEADER_FROM = re.compile(r"^\s*\**\s*(from|van)\s*:\**\s*\S", re.IGNORECASE)
HEADER_DATE = re.compile(r"^\s*\**\s*(sent|date|verzonden|datum)\s*:\**\s*\S", re.IGNORECASE)
UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
# Attribution lines of Gmail, Apple Mail, Thunderbird and others, in English and Dutch.
ATTRIBUTION = (
    re.compile(r"^\s*on\b.{4,}\bwrote\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*op\b.{4,}\bschreef\b.*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*op\b.{4,}\bheeft\b.{2,}\bhet volgende geschreven\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*.{2,}\bschreef op\b.{4,}:\s*$", re.IGNORECASE),
)
ATTRIBUTION_START = re.compile(r"^\s*(on|op)\s", re.IGNORECASE)
SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
MOBILE_SIGNATURE = re.compile(
    r"^\s*(sent from my|sent from outlook|verstuurd vanaf mijn|verzonden vanaf mijn|"
    r"verzonden met|sent with|get outlook for|outlook voor (ios|android) downloaden)\b.{0,60}$",
    re.IGNORECASE,
)
HEADER_WINDOW = 4
ATTRIBUTION_LINES = 3


def _quote_marker(line: str) -> bool:
    return line.lstrip().startswith(">")


# A client's attribution names when (a time) or who (an address); a citizen's own sentence
# such as "On Monday my landlord wrote:" names neither and is kept.
ATTRIBUTION_DETAIL = re.compile(r"\d{1,2}[:.]\d{2}|@|\d{1,2}[-/]\d{1,2}[-/]\d{2,4}")


def _is_attribution(text: str) -> bool:
    return bool(ATTRIBUTION_DETAIL.search(text)) and any(
        pattern.match(text) for pattern in ATTRIBUTION
    )


def _quote_start(lines: list[str]) -> int | None:
    """The index of the first line of the quoted history, if one is recognised."""
    for index, line in enumerate(lines):
        if DIVIDER.match(line):
            return index
        if HEADER_FROM.match(line) and any(
            HEADER_DATE.match(following) for following in lines[index + 1 : index + HEADER_WINDOW]
        ):
            before = index - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            if before >= 0 and UNDERSCORES.match(lines[before]):
                return before
            return index
        if ATTRIBUTION_START.match(line) or _is_attribution(line):
            joined = line.strip()
            for extra in range(ATTRIBUTION_LINES):
                if _is_attribution(joined):
                    return index
                following = index + 1 + extra
                if following >= len(lines) or not lines[following].strip():
                    break
                joined = f"{joined} {lines[following].strip()}"
    return None


def _trim_trailing_quote(lines: list[str]) -> list[str]:
    """Drop a block of "> " lines at the end (and an attribution line just above it);
    quoted lines between the citizen's own lines are kept, as context of inline answers."""
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _quote_marker(lines[end - 1])):
        end -= 1
    if end == len(lines) or not any(_quote_marker(line) for line in lines[end:]):
        return lines
    trimmed = lines[:end]
    if trimmed and trimmed[-1].rstrip().endswith(":"):
        # An attribution we did not recognise by its words still ends in a colon right
        # above the quote; only drop it when it looks like one (names a date or "wrote").
        last = trimmed[-1].lower()
        if re.search(r"\d{1,2}[:.]\d{2}|\d{4}|wrote|schreef|geschreven", last):
            trimmed = trimmed[:-1]
    return trimmed


def _trim_signature(lines: list[str]) -> list[str]:
    for index in range(len(lines) - 1, -1, -1):
        if SIGNATURE_DELIMITER.match(lines[index]):
            return lines[:index]
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    if end > 0 and MOBILE_SIGNATURE.match(lines[end - 1]):
        return lines[: end - 1]
    return lines


def strip_reply(text: str) -> str:
    """The citizen's own words in a reply: quoted history and signature removed.

    Returns the whole text (trimmed) when stripping would leave nothing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _quote_start(lines)
    if start is not None:
        lines = lines[:start]
    lines = _trim_trailing_quote(lines)
    lines = _trim_signature(lines)
    kept = "\n".join(line.rstrip() for line in lines).strip("\n").rstrip()
    kept = re.sub(r"\n{3,}", "\n\n", kept)
    return kept.strip() or text.strip()


# --- HTML ---------------------------------------------------------------------------------

SKIPPED = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}
BLOCKS = {
    "p", "div", "section", "article", "header", "footer", "table", "tr", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "hr", "address", "dl", "dt", "dd",
}  # fmt: skip
VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"}


def _starts_quote(tag: str, attributes: dict[str, str]) -> bool:
    """Whether this element opens the quoted history in the HTML of a known mail client."""
    classes = attributes.get("class", "").split()
    element_id = attributes.get("id", "")
    style = attributes.get("style", "").replace(" ", "").lower()
    if "gmail_quote" in classes or "gmail_attr" in classes:
        return True
    if element_id in ("divRplyFwdMsg", "appendonsend", "mail-editor-reference-message-container"):
        return True  # Outlook on the web, on Windows and on the Mac
    if "moz-cite-prefix" in classes or "yahoo_quoted" in classes:
        return True  # Thunderbird, Yahoo
    if tag == "blockquote" and attributes.get("type", "").lower() == "cite":
        return True
    if tag == "hr" and attributes.get("tabindex") == "-1":
        return True  # Outlook on the web puts this line above divRplyFwdMsg
    # Outlook desktop: the header block sits in a div with a thin top border.
    return tag == "div" and "border-top:solid" in style and "border:none" in style


def _is_signature(attributes: dict[str, str]) -> bool:
    """Whether this element is a signature a mail client marked (Gmail, Outlook on the web,
    Thunderbird); the shown text leaves it out, the original keeps it."""
    classes = attributes.get("class", "").split()
    signature_classes = ("gmail_signature", "moz-signature")
    return any(c in classes for c in signature_classes) or attributes.get("id") == "Signature"


class _TextFromHtml(HTMLParser):
    """Text from HTML: no scripts, styles or markup; blocks become lines; quotes "> "."""

    def __init__(self, *, cut_at_quote: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.cut_at_quote = cut_at_quote
        self.parts: list[str] = []
        # The element whose content is left out (a script, a signature), and how deep we
        # are in elements of its name: an unclosed tag of another name cannot end it early.
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.quote_depth = 0
        self.cut = False
        self.in_pre = 0

    def _newline(self) -> None:
        self.parts.append("\n" + "> " * self.quote_depth)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        attributes = {name: value or "" for name, value in attrs}
        if self.cut_at_quote and _starts_quote(tag, attributes):
            self.cut = True
            return
        if tag in SKIPPED or (self.cut_at_quote and _is_signature(attributes)):
            if tag not in VOID:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "br" or tag in BLOCKS:
            self._newline()
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag == "pre":
            self.in_pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.cut:
            return
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "blockquote" and self.quote_depth:
            self.quote_depth -= 1
        elif tag == "pre" and self.in_pre:
            self.in_pre -= 1
        if tag in BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.cut or self.skip_tag is not None:
            return
        if not self.in_pre:
            data = re.sub(r"[ \t\r\n\f\v]+", " ", data)
        data = data.replace("\xa0", " ")
        if self.quote_depth:
            prefix = "> " * self.quote_depth
            data = data.replace("\n", "\n" + prefix)
            if not self.parts or self.parts[-1].endswith("\n"):
                data = prefix + data.lstrip()
            elif self.parts[-1].endswith(prefix):
                data = data.lstrip()
        self.parts.append(data)

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.parts).split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(html: str, *, cut_at_quote: bool = False) -> str:
    """Readable text from an HTML mail part: scripts, styles and markup are dropped, blocks
    and ``<br>`` become line breaks, blockquotes become "> " lines. With ``cut_at_quote`` the
    text ends where a known mail client's quoted history begins."""
    parser = _TextFromHtml(cut_at_quote=cut_at_quote)
    parser.feed(html)
    parser.close()
    return parser.text()
