"""The console's live paths on the real stack: a chat case reaching an open queue, and a live takeover's messages.

Queue: from the moment the chat answers the citizen's confirmation with the case number to the moment the
operator's event stream delivers a queue that contains that number.
Takeover: from the POST that sends a message to the moment the other side's read API returns it (the console
page and the chat page poll that API every second, which adds up to a second to what a person sees).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import declining_the_offer_to_follow, percentiles, write_result
from civic import console_accounts
from civic.db import make_engine, make_session_factory, session_scope
from civic.migrate import upgrade
from tests.e2e.stack import running_stack

CASES = 30
PASSWORD = "bench operator password"
CSRF = re.compile(r"[0-9a-f]{64}")
FORM_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")
REPORT = "마포구 합정역 2번 출구 앞 가로등이 꺼졌어요"
GAP_SECONDS = 1.5  # one citizen after another, as reports arrive on a quiet morning


async def operator_stream(base_url: str, email: str, seen: dict[str, float], ready: asyncio.Event) -> None:
    """Logs in like a browser and records when each case number first appears in a pushed queue."""
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as http:
        await logged_in(http, email)
        async with http.stream("GET", "/console/api/queue/events") as stream:
            ready.set()
            async for line in stream.aiter_lines():
                if not line.startswith("data: "):
                    continue
                now = time.perf_counter()
                for item in json.loads(line.removeprefix("data: "))["items"]:
                    seen.setdefault(item["title"], now)


async def file_one(base_url: str) -> tuple[str, float]:
    """A citizen's one-message report and its confirmation; the number and when it was answered."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        csrf = CSRF.search((await http.get("/chat")).text)
        assert csrf
        headers = {"X-CSRF-Token": csrf.group(0)}
        for body in ({"text": REPORT}, {"text": "네", "payload": "/affirm"}):
            response = await http.post(
                "/chat/api/messages", json={"client_message_id": uuid.uuid4().hex, **body}, headers=headers
            )
        replies = response.json()["replies"]
        decline = declining_the_offer_to_follow(replies)
        if decline is not None and not CASE_NUMBER.search(" ".join(r["text"] for r in replies)):
            response = await http.post(
                "/chat/api/messages", json={"client_message_id": uuid.uuid4().hex, **decline}, headers=headers
            )
        answered = time.perf_counter()
        number = CASE_NUMBER.search(" ".join(r["text"] for r in response.json()["replies"]))
        assert number, response.text
        return number.group(0), answered


async def logged_in(http: httpx.AsyncClient, email: str) -> None:
    page = await http.get("/console/login")
    token = FORM_CSRF.search(page.text)
    assert token, "the login form carries a CSRF token"
    form = {"csrf_token": token.group(1), "email": email, "password": PASSWORD, "next": ""}
    response = await http.post("/console/login", data=form)
    assert response.status_code in (200, 303), response.status_code


async def until_seen(read: Any, text: str) -> float:
    """Polls `read()` (a list of message texts) every 10 ms until `text` is there; when it was."""
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        if text in await read():
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise TimeoutError(text)


async def measure_takeover(base_url: str, email: str) -> dict[str, Any]:
    """An operator takes a web chat; messages go both ways, one at a time."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=60) as citizen,
        httpx.AsyncClient(base_url=base_url, timeout=60) as operator,
    ):
        csrf = CSRF.search((await citizen.get("/chat")).text)
        assert csrf
        chat_headers = {"X-CSRF-Token": csrf.group(0)}
        await citizen.post(
            "/chat/api/messages",
            json={"client_message_id": uuid.uuid4().hex, "text": "상담사 연결해 주세요"},
            headers=chat_headers,
        )
        first = (await citizen.get("/chat/api/messages")).json()["messages"][0]["id"]
        await logged_in(operator, email)
        conversation = await _conversation_of(operator, first)
        page = f"/console/conversations/{conversation}"
        token = FORM_CSRF.search((await operator.get(page)).text)
        assert token
        await operator.post(f"{page}/take", data={"csrf_token": token.group(1)})

        async def console_texts() -> list[str]:
            feed = await operator.get(f"/console/api/conversations/{conversation}/messages")
            return [m["text"] for m in feed.json()["messages"]]

        async def chat_texts() -> list[str]:
            return [m["text"] for m in (await citizen.get("/chat/api/messages")).json()["messages"]]

        to_console: list[float] = []
        to_citizen: list[float] = []
        for round_ in range(CASES):
            text = f"아직 그대로예요 ({round_})"
            sent = time.perf_counter()
            await citizen.post(
                "/chat/api/messages", json={"client_message_id": uuid.uuid4().hex, "text": text}, headers=chat_headers
            )
            to_console.append((await until_seen(console_texts, text) - sent) * 1000)
            answer = f"확인했습니다 ({round_})"
            sent = time.perf_counter()
            form = {"csrf_token": token.group(1), "form_key": uuid.uuid4().hex, "text": answer}
            await operator.post(f"{page}/messages", data=form, headers={"Accept": "application/json"})
            to_citizen.append((await until_seen(chat_texts, answer) - sent) * 1000)
    return {
        "messages_each_way": CASES,
        "citizen_to_console_ms": percentiles(to_console),
        "operator_to_citizen_ms": percentiles(to_citizen),
    }


async def _conversation_of(operator: httpx.AsyncClient, message_id: int) -> int:
    """The conversation holding `message_id`: the newest hand-off in the operator's queue."""
    items = (await operator.get("/console/api/queue")).json()["items"]
    handoffs = [item for item in items if item["kind"] == "handoff"]
    assert handoffs, f"the hand-off of message {message_id} is in the queue"
    return int(handoffs[-1]["conversation_id"])


async def measure(base_url: str, email: str) -> dict[str, Any]:
    seen: dict[str, float] = {}
    ready = asyncio.Event()
    watcher = asyncio.create_task(operator_stream(base_url, email, seen, ready))
    await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(1.0)  # the first push (the queue as it is) has arrived
    delays: list[float] = []
    missing = 0
    for _ in range(CASES):
        number, answered = await file_one(base_url)
        deadline = time.perf_counter() + 10
        while number not in seen and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if number in seen:
            delays.append((seen[number] - answered) * 1000)
        else:
            missing += 1
        await asyncio.sleep(GAP_SECONDS)
    watcher.cancel()
    return {"cases": CASES, "missing": missing, "case_filed_to_queue_ms": percentiles(delays)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'console_live.db'}"
        upgrade(url)
        engine = make_engine(url)
        email = f"bench-{uuid.uuid4().hex[:8]}@seoul.example.kr"
        with session_scope(make_session_factory(engine)) as session:
            console_accounts.create_user(session, email=email, password=PASSWORD, role="operator")
        engine.dispose()
        # The takeover rounds send a message every few hundred milliseconds, faster than any person types:
        # the web chat's per-conversation quota would cut them off, and it is not what this measures.
        quota = {"CHAT_MESSAGES_PER_CONVERSATION_PER_MINUTE": "100000"}
        with running_stack(url, web_env=quota) as stack:
            result = asyncio.run(measure(stack.web_url, email))
            result["takeover"] = asyncio.run(measure_takeover(stack.web_url, email))
    write_result("console_live", result)


if __name__ == "__main__":
    main()
