"""Watch a citizen switch channels on a running hub, and nothing get lost.

Start the hub with demo data (``./scripts/run.sh``), then in another terminal:

    .venv/bin/python scripts/channel_switch.py [--base-url http://127.0.0.1:8000]

Jan Jansen logs in with a code from the development outbox and starts a chat with Dienst
Toeslagen, then leaves. Sanne de Wit picks the chat up and answers; Jan is gone, so the
answer goes by mail (see it in the development outbox at /dev/outbox). Jan answers that
mail, as his mail provider would post it to the hub; later he texts a question, signed as
Twilio signs it; then he visits the counter, where Ahmed El Amrani finds his case by its
reference and checks his passport. At the end the script prints the case thread as Jan sees
it and as the staff member sees it, and how each contact knew it was Jan.

It needs the hub in development mode: it reads login codes and mail from the development
outbox and uses the development values of HUB_INBOUND_MAIL_SECRET and
HUB_TWILIO_AUTH_TOKEN (or the ones you pass).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import sys
import time
from email.message import EmailMessage
from typing import Any

import httpx
import pyotp
from twilio.request_validator import RequestValidator

from hub.config import DEVELOPMENT_INBOUND_MAIL_SECRET, DEVELOPMENT_TWILIO_AUTH_TOKEN
from hub.demo import DEMO_PASSWORD, demo_totp_secret

CITIZEN = "jan@example.nl"
CITIZEN_PHONE = "+31612345001"
CHAT_STAFF = "sanne@toeslagen.demo"
DESK_STAFF = "ahmed@toeslagen.demo"


class Hub:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=15)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            sys.exit(f"{method} {path} → {response.status_code}: {response.text}")
        if "json" not in response.headers.get("content-type", ""):
            return response.text  # TwiML answers to webhooks
        return response.json()

    def outbox(self, channel: str, to: str, since: float) -> list[dict[str, Any]]:
        entries = self.call("GET", f"/api/dev/outbox?channel={channel}&limit=50")
        return [
            e for e in entries if e["recipient"] == to and _timestamp(e["created_at"]) >= since - 1
        ]

    def wait_for(self, channel: str, to: str, since: float, contains: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for entry in self.outbox(channel, to, since):
                if contains in entry["body"] and entry["status"] == "delivered":
                    return entry
            time.sleep(0.3)
        sys.exit(f"Nothing reached {to} by {channel} in 20 s: is the hub's worker running?")

    def staff_login(self, address: str) -> str:
        login = self.call(
            "POST",
            "/api/auth/staff/session",
            json={
                "email": address,
                "password": DEMO_PASSWORD,
                "totp": pyotp.TOTP(demo_totp_secret(address)).now(),
            },
        )
        return str(login["token"])


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def step(number: int, text: str) -> None:
    print(f"\n{number}. {text}")


def answer_mail(raw: bytes, text: str) -> bytes:
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    original = mail.get_body(preferencelist=("plain",))
    quoted = "\n".join(
        "> " + line
        for line in (original.get_content() if original else "").splitlines()  # type: ignore[attr-defined]
    )
    answer = EmailMessage(policy=email.policy.SMTP)
    answer["From"] = f"Jan Jansen <{CITIZEN}>"
    answer["To"] = str(mail["Reply-To"])
    answer["Subject"] = "Re: " + str(mail["Subject"])
    answer["Message-ID"] = f"<{time.time_ns()}@mail.example.nl>"
    answer["In-Reply-To"] = str(mail["Message-ID"])
    answer.set_content(f"{text}\n\nOp {mail['Date']} schreef Dienst Toeslagen:\n{quoted}\n")
    return answer.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--mail-secret", default=DEVELOPMENT_INBOUND_MAIL_SECRET)
    parser.add_argument("--twilio-token", default=DEVELOPMENT_TWILIO_AUTH_TOKEN)
    parser.add_argument(
        "--public-url", help="HUB_BASE_URL of the hub, if not --base-url (for signatures)"
    )
    args = parser.parse_args()
    hub = Hub(args.base_url)
    public_url = (args.public_url or args.base_url).rstrip("/")
    started_at = time.time()

    step(1, f"{CITIZEN} logs in with a one-time code from the development outbox.")
    hub.call("POST", "/api/auth/citizen/code", json={"address": CITIZEN})
    code_mail = hub.wait_for("email", CITIZEN, started_at)
    code = re.search(r"\b(\d{6})\b", code_mail["body"])
    if code is None:
        sys.exit("No login code in the mail.")
    jan = hub.call(
        "POST", "/api/auth/citizen/session", json={"address": CITIZEN, "code": code.group(1)}
    )["token"]

    step(2, "Jan starts a chat with Dienst Toeslagen, then closes the window.")
    started = hub.call(
        "POST",
        "/api/chats",
        jan,
        json={"agency_id": "toeslagen", "text": "Mijn toeslag is deze maand niet betaald."},
    )
    chat, case_id = started["chat"], started["chat"]["case_id"]
    print(f"   The chat became case {chat['case_reference']}.")
    if not started["opening"]["open"]:
        print(
            f"   Outside opening hours: an answer is expected from "
            f"{started['opening']['next_opening']}; Jan asks for it by email."
        )
        hub.call("PUT", f"/api/chats/{chat['id']}/reply-channel", jan, json={"channel": "email"})

    step(3, "Sanne de Wit picks the chat up and answers; Jan has left, so it goes by mail.")
    sanne = hub.staff_login(CHAT_STAFF)
    hub.call("POST", f"/api/chats/{chat['id']}/pickup", sanne)
    question = "Goedemiddag Jan, is uw rekeningnummer veranderd?"
    hub.call("POST", f"/api/chats/{chat['id']}/messages", sanne, json={"text": question})
    reply = hub.wait_for("email", CITIZEN, started_at, contains="rekeningnummer")
    print(f"   Mail to {CITIZEN}: {hub.base_url}{reply['file_url']}")

    step(4, "Jan answers the mail; his provider posts it to the hub.")
    raw = hub.http.get(reply["file_url"]).content
    hub.call(
        "POST",
        "/api/inbound/email",
        content=answer_mail(raw, "Ja, sinds 1 november heb ik een nieuw nummer."),
        headers={"Authorization": f"Bearer {args.mail_secret}", "Content-Type": "message/rfc822"},
    )

    step(5, "Later Jan texts a question from his verified number.")
    validator = RequestValidator(args.twilio_token)

    def text(body: str) -> None:
        sid = f"SM{time.time_ns():032x}"[:34]
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "From": CITIZEN_PHONE,
            "To": "+3197010000000",
            "Body": body,
            "NumSegments": "1",
            "AccountSid": "AC" + "0" * 32,
        }
        signature = validator.compute_signature(public_url + "/api/sms/inbound", form)
        hub.call("POST", "/api/sms/inbound", data=form, headers={"X-Twilio-Signature": signature})

    text("Wanneer krijg ik het geld?")
    time.sleep(1.5)
    thread = hub.call("GET", f"/api/cases/{case_id}/messages", jan)
    messages = thread["messages"] if isinstance(thread, dict) else thread
    if not any(m["channel"] == "sms" for m in messages):
        # Jan has several open cases: the hub texted back (now or on an earlier run) asking
        # which one he means; he answers with the reference.
        asked = hub.outbox("sms", CITIZEN_PHONE, 0)
        if asked:
            print(f"   The hub asks which case: {asked[0]['body']!r}")
        text(chat["case_reference"])
        print(f"   Jan answers {chat['case_reference']}.")

    step(6, "Jan visits the counter; Ahmed El Amrani finds the case by its reference.")
    ahmed = hub.staff_login(DESK_STAFF)
    found = hub.call(
        "POST",
        "/api/desk/search",
        ahmed,
        json={"case_reference": chat["case_reference"], "purpose": "balie-zoeken"},
    )
    print(f"   {found['party']['name']}: {len(found['cases'])} cases across agencies.")
    hub.call(
        "POST",
        f"/api/desk/cases/{case_id}/visits",
        ahmed,
        json={"topic": "Betaling toeslag", "identity_document": "passport"},
    )

    for who, token in (("Jan", jan), ("Ahmed (staff)", ahmed)):
        thread = hub.call("GET", f"/api/cases/{case_id}/messages", token)
        messages = thread["messages"] if isinstance(thread, dict) else thread
        print(f"\nThe thread of {chat['case_reference']} as {who} sees it:")
        for message in messages:
            if message["direction"] == "internal":
                continue
            body = (message["body"] or "").strip().replace("\n", " ")
            print(
                f"  {message['channel']:8} {message['direction']:8} "
                f"{(message.get('identified_by') or '-'):15} {body[:60]}"
            )
    print(f"\nThe development outbox: {hub.base_url}/dev/outbox")


if __name__ == "__main__":
    main()
