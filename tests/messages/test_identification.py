"""How a citizen was identified is kept on every contact, whatever the channel.

Every place that puts an inbound message on a case goes through ``post_message``; this test
reads the hub's and the channels' source and requires each such call to say
``identified_by`` — so a new channel that forgets it fails here, not in an audit later.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def post_message_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for package in ("hub", "channels"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name == "post_message":
                    calls.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return calls


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_every_inbound_message_says_how_the_sender_was_identified() -> None:
    calls = post_message_calls()
    places = [place for place, _ in calls]
    assert any(p.startswith("hub/desk/") for p in places), "the counter's visit is not found"
    assert any(p.startswith("hub/messages/routes") for p in places), "portal messages not found"
    missing = []
    for place, call in calls:
        direction = keyword(call, "direction")
        inbound_or_unknown = not (
            isinstance(direction, ast.Constant) and direction.value in ("outbound", "internal")
        )
        identified_by = keyword(call, "identified_by")
        unset = identified_by is None or (
            isinstance(identified_by, ast.Constant) and identified_by.value is None
        )
        if inbound_or_unknown and unset:
            missing.append(place)
    assert missing == [], f"inbound messages without identified_by at {missing}"
