"""What every benchmark shares: percentiles, the machine's description and the result writer."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from civic.db import make_engine

RESULTS = Path(__file__).resolve().parent / "results"


def declining_the_offer_to_follow(replies: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The web chat message that declines the offer to follow an open case at the same spot (issue 17) and files
    anew, if the replies make that offer (a /deny button after the confirmation); simulated citizens all report
    the same spot."""
    buttons = [b for r in replies for b in r.get("buttons") or []]
    deny = next((b for b in buttons if b.get("payload") == "/deny"), None)
    return {"text": deny["title"], "payload": "/deny"} if deny is not None else None


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {}
    ordered = sorted(samples_ms)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": round(statistics.median(ordered), 2), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 2)}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory_kb = 0
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps({"benchmark": name, "machine": machine(), **result}, ensure_ascii=False, indent=2) + "\n"
    )
    print(f"{name}: {json.dumps(result, ensure_ascii=False)}")
    return path


def postgres_url() -> str:
    """A throw-away schema in the local PostgreSQL, so the benchmark never touches real data."""
    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = make_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    schema = url.rsplit("%3D", 1)[1]
    engine = make_engine(url.split("?")[0])
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


class RawHttpConnection:
    """A bare HTTP/1.1 keep-alive POST client: the load generator shares two cores with the stack, so
    it must cost far less per request than the server it measures (httpx costs ~1 ms of CPU)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base_url: str) -> RawHttpConnection:
        address = httpx.URL(base_url)
        reader, writer = await asyncio.open_connection(address.host, address.port)
        return cls(reader, writer, f"{address.host}:{address.port}")

    async def post(
        self, path: str, body: bytes, headers: dict[str, str], content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """The status and body of one POST (the server must answer with a Content-Length)."""
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}", f"Content-Type: {content_type}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        answer = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), answer

    def close(self) -> None:
        self.writer.close()
