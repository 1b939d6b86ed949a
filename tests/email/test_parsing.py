from email.message import EmailMessage
from pathlib import Path

from channels.email.parsing import authentication_verdict, parse_mail
from tests.email.mails import EXE, PDF, citizen_mail


def test_the_verdict_comes_from_the_topmost_authentication_results() -> None:
    mail = EmailMessage()
    mail["Authentication-Results"] = (
        "mx.hub.test; spf=pass smtp.mailfrom=example.nl; dkim=fail header.d=example.nl; "
        "dmarc=pass (p=reject) header.from=example.nl"
    )
    mail["Authentication-Results"] = "forged.example; spf=pass; dkim=pass; dmarc=pass"
    assert authentication_verdict(mail) == {"spf": "pass", "dkim": "fail", "dmarc": "pass"}


def test_no_authentication_results_is_none_for_each() -> None:
    assert authentication_verdict(EmailMessage()) == {
        "spf": "none",
        "dkim": "none",
        "dmarc": "none",
    }


def test_thread_ids_come_from_in_reply_to_then_references() -> None:
    raw = (
        b"From: a@example.nl\r\nMessage-ID: <m1@example.nl>\r\n"
        b"In-Reply-To: <b@hub.test>\r\nReferences: <a@hub.test>\r\n <b@hub.test>\r\n\r\nhoi\r\n"
    )
    assert parse_mail(raw).thread_ids == ["<b@hub.test>", "<a@hub.test>"]


def test_a_mail_without_message_id_gets_one_from_its_content() -> None:
    raw = b"From: a@example.nl\r\nSubject: x\r\n\r\nhoi\r\n"
    first, again = parse_mail(raw), parse_mail(raw)
    assert first.message_id == again.message_id
    assert first.message_id != parse_mail(raw + b"meer\r\n").message_id


def test_header_values_lose_line_breaks_and_encoded_words_are_read() -> None:
    raw = (
        b"From: =?utf-8?q?Ren=C3=A9e_de_Vries?= <Renee@Example.NL>\r\n"
        b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n\tmore\r\n\r\nhoi\r\n"
    )
    mail = parse_mail(raw)
    assert mail.sender == "renee@example.nl"
    assert mail.sender_name == "Renée de Vries"
    assert mail.subject is not None and "\n" not in mail.subject and "Café" in mail.subject


def test_attachments_are_read_apart_from_the_body() -> None:
    raw = citizen_mail(
        to="x@reply.hub.test",
        text="Zie bijlage.",
        attachments=[
            ("loonstrook.pdf", "application/pdf", PDF),
            ("tool.exe", "application/octet-stream", EXE),
        ],
    )
    mail = parse_mail(raw)
    assert mail.body == "Zie bijlage."
    assert [(a.filename, a.content) for a in mail.attachments] == [
        ("loonstrook.pdf", PDF),
        ("tool.exe", EXE),
    ]


def test_automatic_answers_are_recognised() -> None:
    out_of_office = b"From: a@example.nl\r\nAuto-Submitted: auto-replied\r\n\r\nAfwezig.\r\n"
    bulk = b"From: a@example.nl\r\nPrecedence: auto_reply\r\n\r\nAfwezig.\r\n"
    person = b"From: a@example.nl\r\nAuto-Submitted: no\r\n\r\nHoi.\r\n"
    assert parse_mail(out_of_office).auto_submitted == "auto-replied"
    assert parse_mail(bulk).auto_submitted == "auto_reply"
    assert parse_mail(person).auto_submitted is None


def test_encoded_attachment_names_are_read() -> None:
    raw = (
        b"From: a@example.nl\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nZie bijlage.\r\n--b\r\n"
        b'Content-Type: application/pdf; name="=?utf-8?q?b=C3=A9schikking.pdf?="\r\n'
        b'Content-Disposition: attachment; filename="=?utf-8?q?b=C3=A9schikking.pdf?="\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    )
    [attachment] = parse_mail(raw).attachments
    assert attachment.filename == "béschikking.pdf"
    assert attachment.content == b"%PDF-1.4\n"


def test_a_forwarded_mail_attached_is_a_file_not_the_body() -> None:
    raw = (
        b"From: a@example.nl\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/html\r\n\r\n<p>Zie de mail van mijn werkgever.</p>\r\n--b\r\n"
        b"Content-Type: message/rfc822\r\n\r\n"
        b"From: werkgever@example.com\r\nSubject: Loon\r\n\r\nUw loon is verhoogd.\r\n--b--\r\n"
    )
    mail = parse_mail(raw)
    assert mail.body == "Zie de mail van mijn werkgever."
    [forwarded] = mail.attachments
    assert forwarded.declared_type == "message/rfc822"
    assert b"Uw loon is verhoogd." in forwarded.content


REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "reports"


def test_a_bounce_names_the_mail_it_is_about() -> None:
    raw = (REPORTS / "postfix_failed.eml").read_bytes().replace(b"{MESSAGE_ID}", b"abc@hub.test")
    report = parse_mail(raw).delivery_status
    assert report is not None and report.failed
    assert report.original_ids == ["<abc@hub.test>"]
    assert report.status == "5.1.1"
    assert report.diagnostic is not None and "User unknown" in report.diagnostic
    delayed = (REPORTS / "postfix_delayed.eml").read_bytes()
    later = parse_mail(delayed.replace(b"{MESSAGE_ID}", b"abc@hub.test")).delivery_status
    assert later is not None and not later.failed and later.action == "delayed"


def test_an_ordinary_mail_is_no_delivery_report() -> None:
    assert parse_mail(citizen_mail(to="x@reply.hub.test")).delivery_status is None


def test_an_empty_text_part_beside_html_gives_way_to_the_html() -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.nl"
    mail.set_content("")
    mail.add_alternative("<p>Mijn antwoord staat in de HTML.</p>", subtype="html")
    assert parse_mail(mail.as_bytes()).body == "Mijn antwoord staat in de HTML."
