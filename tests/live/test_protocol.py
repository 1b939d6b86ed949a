"""The pure parts of the live protocol: frames, positions, origins, the rate window, tickets."""

from __future__ import annotations

import time
import uuid

import pytest

from hub.live.protocol import (
    REPLAY_WINDOW,
    FollowFrame,
    FrameError,
    MessageFrame,
    RateWindow,
    TypingFrame,
    origin_allowed,
    origin_of,
    parse_frame,
    resume_position,
)
from hub.live.tickets import TICKET_LENGTH, issue_ticket, read_ticket

CASE = "6f1c2a3e-2d4b-4c8e-9a1f-0b5d7e3c9a21"  # any case id; fixed so test ids are stable


def test_frames_are_parsed_by_type_and_unknown_fields_ignored() -> None:
    follow = parse_frame(f'{{"type": "follow", "case_id": "{CASE}", "after": 3, "x": 1}}')
    assert isinstance(follow, FollowFrame) and follow.after == 3
    message = parse_frame(f'{{"type": "note", "case_id": "{CASE}", "body": "hi", "ref": "r"}}')
    assert isinstance(message, MessageFrame) and message.type == "note"
    assert isinstance(parse_frame(f'{{"type": "typing", "case_id": "{CASE}"}}'), TypingFrame)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '"follow"',
        '{"type": "shout"}',
        '{"no": "type"}',
        '{"type": "follow", "case_id": "12"}',
        f'{{"type": "message", "case_id": "{CASE}", "body": ""}}',
        f'{{"type": "message", "case_id": "{CASE}", "body": "x", "ref": "{"r" * 65}"}}',
        f'{{"type": "read", "case_id": "{CASE}", "seq": -1}}',
    ],
)
def test_frames_the_server_cannot_take(text: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(text)


@pytest.mark.parametrize(
    ("after", "last_seq", "expected"),
    [
        (0, 0, 0),
        (0, 5, 0),
        (5, 5, 5),
        (6, 5, "future"),
        (0, REPLAY_WINDOW, 0),
        (0, REPLAY_WINDOW + 1, "too_old"),
        (1, REPLAY_WINDOW + 1, 1),
        (None, 5, "malformed"),
        ("3", 5, "malformed"),
        (3.0, 5, "malformed"),
        (True, 5, "malformed"),
        (-1, 5, "malformed"),
    ],
)
def test_resume_position(after: object, last_seq: int, expected: int | str) -> None:
    assert resume_position(after, last_seq) == expected


def test_origins() -> None:
    base, allowed = "https://hub.example.nl", ["http://localhost:5173"]
    assert origin_of("HTTPS://Hub.Example.nl:443/path") == "https://hub.example.nl"
    assert origin_allowed(None, base, allowed)  # not a browser
    assert origin_allowed("https://hub.example.nl", base, allowed)
    assert origin_allowed("http://localhost:5173", base, allowed)
    for refused in (
        "https://hub.example.nl.evil.com",
        "http://hub.example.nl",
        "https://hub.example.nl:8443",
        "http://localhost:5174",
        "null",
        "",
    ):
        assert not origin_allowed(refused, base, allowed), refused


def test_rate_window_counts_the_last_minute() -> None:
    window = RateWindow(3, 60.0)
    assert [window.allow(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert window.allow(60.5)  # the first one left the window
    assert not window.allow(60.6)


def test_tickets_are_signed_expire_and_name_their_session() -> None:
    session_id = uuid.uuid4()
    ticket = issue_ticket("secret", session_id, 60)
    assert len(ticket) == TICKET_LENGTH and ticket.replace("-", "").replace("_", "").isalnum()
    found = read_ticket("secret", ticket)
    assert found is not None and found.session_id == session_id
    assert read_ticket("other secret", ticket) is None
    assert read_ticket("secret", ticket, now=time.time() + 61) is None
    tampered = ticket[:10] + ("A" if ticket[10] != "A" else "B") + ticket[11:]
    assert read_ticket("secret", tampered) is None
    assert read_ticket("secret", ticket[:-1]) is None
    assert read_ticket("secret", "é" * TICKET_LENGTH) is None
    assert issue_ticket("secret", session_id, 60) != ticket  # a fresh nonce each time
