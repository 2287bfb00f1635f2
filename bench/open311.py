"""Open311 GeoReport v2: GET a page of 1,000 requests with 100,000 cases stored, and POST throughput.

Reads go through the real app in this process (TestClient), on SQLite and PostgreSQL. Posts go over HTTP to
uvicorn with two workers on PostgreSQL, on 32 keep-alive connections of a bare client (httpx would spend more CPU
than the server on the same cores), each post with its own Idempotency-Key and description; a tenth are sent
again, and the database is then checked post by post for lost and duplicated requests. The web app's CPU per post
(its processes' /proc times) is reported beside the rate, which on a shared machine says less.
Targets (issue 16): GET p95 ≤ 50 ms; POST ≥ 200 requests/s with 0 lost or duplicated.
`python -m bench.open311 [--cases N] [--posts N] [--only sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select

from bench.common import RawHttpConnection, drop_schema, postgres_url, write_result
from bench.console import app_client, timed
from bench.generate_cases import generate
from civic.api_keys import create_key
from civic.db import make_engine, make_session_factory, session_scope
from civic.migrate import upgrade
from civic.models import Case

CASES = 100_000
POSTS = 3000
CONCURRENCY = 32
WARM_UP_POSTS = 50
RESEND_SHARE = 10  # one post in this many is sent a second time
FORM = "application/x-www-form-urlencoded"
TARGET_P95_MS = 50.0
TARGET_POSTS_PER_SECOND = 200.0
READS = {
    "requests_json_1000": "/open311/v2/requests.json",
    "requests_xml_1000": "/open311/v2/requests.xml",
    "requests_open_parking": "/open311/v2/requests.json?status=open&service_code=illegal_parking",
    "request_by_id": "/open311/v2/requests/{number}.json",
}


def read_latency(url: str, count: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    generate(engine, count)
    generated = time.perf_counter() - started
    with session_scope(make_session_factory(engine)) as session:
        number = session.execute(select(Case.number).order_by(Case.id.desc()).limit(1)).scalar_one()
    engine.dispose()
    results: dict[str, Any] = {}
    with app_client(url) as client:
        for name, path in READS.items():

            def once(path: str = path.format(number=number)) -> object:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text[:200])
                return response

            results[name] = timed(once)
        results["page_items"] = len(client.get(READS["requests_json_1000"]).json())
    return {"cases": count, "generate_seconds": round(generated, 1), "ms": results}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"DATABASE_URL": url, "ENVIRONMENT": "test", "TELEGRAM_BOT_TOKEN": "", "ASR_PRELOAD": "false"}
    command = [sys.executable, "-m", "uvicorn", "webapp.main:app", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen([*command, "--workers", "2", "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the web app did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants (uvicorn's workers), from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total += (int(stat[11]) + int(stat[12])) / tick
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += _cpu_seconds(int(child))
    return total


async def _post_all(base: str, key: str, forms: list[tuple[str, dict[str, str]]]) -> tuple[dict[str, str], list[str]]:
    """Posts every (Idempotency-Key, form) on CONCURRENCY keep-alive connections; the id each key got, the errors."""
    ids: dict[str, str] = {}
    errors: list[str] = []
    idle: asyncio.Queue[RawHttpConnection] = asyncio.Queue()
    for _ in range(min(CONCURRENCY, len(forms))):
        idle.put_nowait(await RawHttpConnection.open(base))

    async def one(idempotency_key: str, form: dict[str, str]) -> None:
        body = urlencode(form | {"api_key": key}).encode()
        connection = await idle.get()
        try:
            status, answer = await connection.post(
                "/open311/v2/requests.json", body, {"Idempotency-Key": idempotency_key}, FORM
            )
            idle.put_nowait(connection)
        except (OSError, asyncio.IncompleteReadError, ValueError) as failure:  # the database tells lost from filed
            errors.append(f"{type(failure).__name__} {failure}")
            connection.close()
            idle.put_nowait(await RawHttpConnection.open(base))
            return
        if status != 200:
            errors.append(f"{status} {answer[:120].decode(errors='replace')}")
            return
        number = json.loads(answer)[0]["service_request_id"]
        if ids.setdefault(idempotency_key, number) != number:
            errors.append(f"duplicate: {idempotency_key} got {ids[idempotency_key]} and {number}")

    await asyncio.gather(*(one(k, form) for k, form in forms))
    while not idle.empty():
        idle.get_nowait().close()
    return ids, errors


def post_throughput(url: str, posts: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        key = create_key(session, name="bench", rate_limit_per_minute=100_000).secret
    point = {"service_code": "illegal_parking", "lat": "37.5495", "long": "126.9137"}
    forms = [(uuid.uuid4().hex, point | {"description": f"bench {i}"}) for i in range(posts)]
    port = _free_port()
    server = _start_server(url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        warm_up = point | {"description": "warm-up"}
        # Warm up: one post alone first, so each worker loads the Seoul maps once rather than in every thread at once.
        asyncio.run(_post_all(base, key, [(uuid.uuid4().hex, warm_up)]))
        asyncio.run(_post_all(base, key, [(uuid.uuid4().hex, warm_up) for _ in range(WARM_UP_POSTS - 1)]))
        server_cpu, client_cpu, started = _cpu_seconds(server.pid), time.process_time(), time.perf_counter()
        ids, errors = asyncio.run(_post_all(base, key, forms))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = _cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
        resent, resend_errors = asyncio.run(_post_all(base, key, forms[::RESEND_SHARE]))
    finally:
        server.terminate()
        server.wait(timeout=30)
    # Each post has its own description: the database says which were filed, and how often.
    with session_scope(factory) as session:
        filed = session.execute(
            select(Case.description, func.count(), func.min(Case.number))
            .where(Case.channel == "open311", Case.description.like("bench %"))
            .group_by(Case.description)
        ).all()
    engine.dispose()
    stored = {description: (count, number) for description, count, number in filed}
    lost = duplicated = 0
    for idempotency_key, form in forms:
        count, number = stored.get(form["description"], (0, None))
        # Lost: not in the database, or answered with an id other than the one stored for it.
        lost += count == 0 or ids.get(idempotency_key, number) != number
        # Duplicated: filed more than once, or a resend answered with another id.
        duplicated += count > 1 or (idempotency_key in resent and resent[idempotency_key] != number)
    return {
        "posts": posts,
        "concurrency": CONCURRENCY,
        "web_workers": 2,
        "client": "bare HTTP/1.1 keep-alive (bench.common.RawHttpConnection)",
        "seconds": round(elapsed, 2),
        "posts_per_second": round(posts / elapsed, 1),
        # CPU per post: the web app's processes (from /proc), and this load generator's (it shares the cores).
        "server_cpu_ms_per_post": round(server_cpu / posts * 1000, 2),
        "client_cpu_ms_per_post": round(client_cpu / posts * 1000, 2),
        "errors": len(errors) + len(resend_errors),
        "error_kinds": sorted({e.split(" ")[0] for e in errors + resend_errors}),
        "unanswered": posts - len(ids),
        "resent": len(forms[::RESEND_SHARE]),
        "lost": lost,
        "duplicated": duplicated,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--posts", type=int, default=POSTS)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    result: dict[str, Any] = {
        "targets": {"get_p95_ms": TARGET_P95_MS, "posts_per_second_postgresql": TARGET_POSTS_PER_SECOND},
    }
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as directory:
            result["sqlite"] = {"get": read_latency(f"sqlite:///{directory}/bench.db", args.cases)}
    if args.only != "sqlite":
        pg_url = postgres_url()
        try:
            result["postgresql"] = {"get": read_latency(pg_url, args.cases)}
        finally:
            drop_schema(pg_url)
        pg_url = postgres_url()
        try:
            result["postgresql"]["post"] = post_throughput(pg_url, args.posts)
        finally:
            drop_schema(pg_url)
    write_result("open311", result)


if __name__ == "__main__":
    main()
