"""The action server counts and times each action call and logs it as one line, behind its token as before."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from actions.server import create_action_app
from bot.gateway import server_metadata
from bot.json_logs import JsonFormatter
from civic.settings import get_settings
from telephony.local_twilio import serve_in_thread

SENDER = "telegram:424242"
ACTION = "action_metrics_probe"  # no such action: the executor answers 404, which is counted like any outcome


@pytest.fixture(scope="module")
def actions_url() -> Iterator[str]:
    with serve_in_thread(create_action_app()) as url:
        yield url


def call(url: str, token: str) -> httpx.Response:
    metadata = server_metadata(SENDER, {"channel": "telegram", "external_id": "424242", "language": "ko"})
    body = {
        "next_action": ACTION,
        "sender_id": SENDER,
        "version": "3.6.21",
        "domain": {},
        "tracker": {"sender_id": SENDER, "slots": {}, "latest_message": {"text": "…", "metadata": metadata}},
    }
    return httpx.post(f"{url}/webhook", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_an_action_call_is_counted_timed_and_logged(actions_url: str) -> None:
    labels = {"action": ACTION, "code": "404"}
    before = REGISTRY.get_sample_value("civic_action_requests_total", labels) or 0
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    events = logging.getLogger("civic.events")
    events.addHandler(handler)
    events.setLevel(logging.INFO)
    try:
        assert call(actions_url, get_settings().action_server_token).status_code == 404
    finally:
        events.removeHandler(handler)
    assert REGISTRY.get_sample_value("civic_action_requests_total", labels) == before + 1
    assert (REGISTRY.get_sample_value("civic_action_seconds_count", {"action": ACTION}) or 0) >= 1
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "action" and line["action"] == ACTION and line["status"] == 404
    assert len(line["conversation"]) == 16 and "424242" not in stream.getvalue()


def test_a_call_without_the_token_is_refused_and_not_counted_as_an_action(actions_url: str) -> None:
    before = REGISTRY.get_sample_value("civic_action_requests_total", {"action": ACTION, "code": "401"})
    assert call(actions_url, "wrong-token").status_code == 401
    assert REGISTRY.get_sample_value("civic_action_requests_total", {"action": ACTION, "code": "401"}) == before
    assert httpx.get(f"{actions_url}/metrics", timeout=5).status_code == 401  # nothing new is open
