"""Web chat turn latency (HTTP in, replies out) with 1, 10 and 50 citizens each filing a whole complaint.

Runs against a real stack it starts itself (Rasa, action server, web app) on a throw-away SQLite
database, and reports the stack's memory at rest.
"""

from __future__ import annotations

import asyncio
import random
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import declining_the_offer_to_follow, percentiles, write_result
from civic.migrate import upgrade
from tests.e2e.stack import running_stack

CSRF = re.compile(r"[0-9a-f]{64}")
# One citizen's complaint, turn by turn; the district and place come in answers to questions.
SCRIPT: list[dict[str, Any]] = [
    {"text": "가로등이 고장나서 밤에 골목이 너무 어두워요"},
    {"text": "마포구요"},
    {"text": "합정역 2번 출구 앞 골목이에요"},
    {"text": "네", "payload": "/affirm"},
]
CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")
# A citizen reads the reply and types the next message: 2-4 s is quick for a phone keyboard.
# The stress mode sends the next message the instant the reply arrives.
THINK_SECONDS = (2.0, 4.0)


async def citizen(base_url: str, latencies: list[float], errors: list[str], think: bool) -> bool:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        page = await http.get("/chat")
        match = CSRF.search(page.text)
        if match is None:
            errors.append("no csrf token")
            return False
        filed = False
        turns = list(SCRIPT)
        while turns:
            turn = turns.pop(0)
            if think:
                await asyncio.sleep(random.uniform(*THINK_SECONDS))
            body = {"client_message_id": uuid.uuid4().hex, **turn}
            started = time.perf_counter()
            try:
                response = await http.post("/chat/api/messages", json=body, headers={"X-CSRF-Token": match.group(0)})
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
                return False
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
                return False
            replies = response.json()["replies"]
            filed = filed or any(CASE_NUMBER.search(r["text"]) for r in replies)
            if not turns and not filed and (decline := declining_the_offer_to_follow(replies)):
                turns.append(decline)  # every simulated citizen reports the same spot: each files anew
        if not filed:
            errors.append("conversation ended without a case number")
        return filed


async def wave(base_url: str, concurrency: int, think: bool) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(citizen(base_url, latencies, errors, think) for _ in range(concurrency)))
    return {
        "citizens": concurrency,
        "turns": len(latencies),
        "cases_filed": sum(outcomes),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "turn_ms": percentiles(latencies),
        "wall_seconds": round(time.perf_counter() - started, 2),
    }


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, from /proc."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (OSError, StopIteration):
            continue
    return round(total / 1024, 1)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        upgrade(url)
        with running_stack(url) as stack:
            asyncio.run(wave(stack.web_url, 2, think=False))  # warm up models, caches and connections
            memory = {name: rss_mb(pid) for name, pid in stack.pids.items()}
            waves = [asyncio.run(wave(stack.web_url, n, think=True)) for n in (1, 10, 50)]
            stress = [asyncio.run(wave(stack.web_url, n, think=False)) for n in (1, 10, 50)]
    write_result(
        "webchat",
        {
            "script_turns": len(SCRIPT),
            "think_seconds": THINK_SECONDS,
            "waves": waves,
            "stress_no_think_time": stress,
            "memory_at_rest_mb": {**memory, "total": round(sum(memory.values()), 1)},
            "targets": {"p95_ms_at_10": 250, "errors_at_50": 0},
        },
    )


if __name__ == "__main__":
    main()
