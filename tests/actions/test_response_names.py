"""Every message an action sends is a domain response by name, so each reaches the channels named."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.domain import domain_responses

ACTIONS = Path(__file__).resolve().parents[2] / "actions"


def test_every_utter_message_names_its_response() -> None:
    """Rasa names a message only when the action passes `response=`: a bare text would reach the phone unnamed."""
    calls = [
        (path.name, node.lineno, {keyword.arg for keyword in node.keywords})
        for path in ACTIONS.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "utter_message"
    ]
    assert calls
    assert [(name, line) for name, line, keywords in calls if "response" not in keywords] == []


def test_every_response_an_action_names_is_in_the_domain() -> None:
    named = {
        name
        for path in ACTIONS.glob("*.py")
        for name in re.findall(r"[\"'](utter_[a-z_]+)[\"']", path.read_text(encoding="utf-8"))
    }
    assert named and named - domain_responses() == set()
