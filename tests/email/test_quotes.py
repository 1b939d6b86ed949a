"""The quote and signature stripping, on a corpus of real reply formats.

Each ``tests/fixtures/mail/quotes/<name>.eml`` is a reply as a mail client writes it; the
``<name>.expected.txt`` beside it is what the citizen wrote, as the case should show it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.parsing import parse_mail
from channels.email.quotes import html_to_text, strip_reply

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "quotes"
MAILS = sorted(CORPUS.glob("*.eml"))


def test_the_corpus_covers_the_clients_we_promise() -> None:
    names = {mail.stem for mail in MAILS}
    for expected in (
        "outlook_nl",
        "outlook_en",
        "outlook_original_message",
        "outlook_oorspronkelijk_bericht",
        "gmail_en",
        "gmail_nl",
        "gmail_wrapped_en",
        "gmail_wrapped_nl",
        "apple_nl",
        "apple_en",
        "iphone_nl",
        "iphone_en",
        "quoted_lines",
        "signature_dashes",
        "html_gmail",
        "html_outlook_nl",
        "html_outlook_web_en",
        "html_apple_en",
        "html_gmail_nl_signature",
        "html_yahoo_en",
    ):
        assert expected in names


@pytest.mark.parametrize("path", MAILS, ids=[mail.stem for mail in MAILS])
def test_the_shown_body_is_what_the_citizen_wrote(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    expected = path.with_suffix(".expected.txt").read_text(encoding="utf-8").strip()
    assert mail.body == expected


@pytest.mark.parametrize("path", MAILS, ids=[mail.stem for mail in MAILS])
def test_the_original_keeps_everything(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    assert mail.body in mail.text or mail.body.replace("\n", " ") in mail.text.replace("\n", " ")
    if path.stem not in ("forward_only", "inline_answers", "iphone_en"):
        assert len(mail.text) > len(mail.body)


def test_html_is_read_as_text_without_scripts_or_styles() -> None:
    text = html_to_text(
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<script>alert('x')</script><p>Eerste&nbsp;regel<br>tweede &lt;regel&gt;</p>"
        "<noscript>geen</noscript><p>Alinea</p></body></html>"
    )
    assert text == "Eerste regel\ntweede <regel>\n\nAlinea"


def test_a_marked_signature_is_left_out_but_kept_in_the_original() -> None:
    html = (
        '<div>Tot morgen.</div><div class="gmail_signature"><div><div>Jan</div></div>'
        "<div>06-12345678</div></div><p>PS: ik neem de stukken mee.</p>"
    )
    assert html_to_text(html, cut_at_quote=True) == "Tot morgen.\n\nPS: ik neem de stukken mee."
    assert "06-12345678" in html_to_text(html)


def test_a_mail_that_is_only_a_quote_keeps_its_text() -> None:
    assert strip_reply("> alleen een citaat\n> meer\n") == "> alleen een citaat\n> meer"


def test_a_from_line_without_a_date_below_is_the_citizens_own_text() -> None:
    text = "Van: mijn werkgever heb ik een nieuw contract.\nDat stuur ik mee."
    assert strip_reply(text) == text


def test_a_sentence_that_reads_like_an_attribution_is_kept() -> None:
    text = "Op 12 maart ben ik verhuisd. De notaris schreef\nmij het volgende:\nHet huis is van u."
    assert strip_reply(text) == text
