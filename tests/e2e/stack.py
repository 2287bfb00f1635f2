"""Starts the real stack (Rasa engine, action server, web app) as subprocesses for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(url: str, process: subprocess.Popen[bytes], timeout: float, ready: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}; see {LOGS}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200 and (ready is None or ready(response)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout}s; see {LOGS}")


@contextmanager
def started(name: str, command: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = (LOGS / f"{name}.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def base_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT), DATABASE_URL=database_url, ENVIRONMENT="test", MEDIA_DIR=str(ROOT / "var" / "test-media")
    )
    return env


@dataclass(frozen=True)
class Stack:
    rasa_url: str
    actions_url: str
    web_url: str
    database_url: str
    pids: dict[str, int]


@contextmanager
def web_app(
    database_url: str, rasa_url: str, name: str = "web", extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = base_env(database_url) | {
        "RASA_URL": rasa_url,
        "OUTBOX_POLL_SECONDS": "0.2",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env |= extra_env or {}
    command = [str(ROOT / ".venv/bin/uvicorn"), "webapp.main:app", "--host", "127.0.0.1", "--port", str(port)]
    with started(name, command, env) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{url}/health", process, timeout=30)
        yield url, process.pid


@contextmanager
def running_stack(database_url: str, web_env: dict[str, str] | None = None) -> Iterator[Stack]:
    action_port, rasa_port = free_port(), free_port()
    actions_url = f"http://127.0.0.1:{action_port}"
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    env = base_env(database_url)
    actions_cmd = [str(ROOT / ".venv/bin/python"), "-m", "rasa_sdk", "--actions", "actions", "--port", str(action_port)]
    rasa_cmd = [
        str(ROOT / ".venv-rasa/bin/rasa"),
        "run",
        "--enable-api",
        "-i",
        "127.0.0.1",
        "--port",
        str(rasa_port),
        "--model",
        "models",
        "--endpoints",
        "endpoints.yml",
        "--credentials",
        "credentials.yml",
    ]
    rasa_env = env | {"ACTION_SERVER_URL": f"{actions_url}/webhook"}
    with started("actions", actions_cmd, env) as actions, started("rasa", rasa_cmd, rasa_env) as rasa:
        wait_until(f"{actions_url}/health", actions, timeout=60)
        wait_until(f"{rasa_url}/status", rasa, timeout=240, ready=lambda r: bool(r.json().get("model_file")))
        with web_app(database_url, rasa_url, extra_env=web_env) as (web_url, web_pid):
            pids = {"rasa": rasa.pid, "actions": actions.pid, "web": web_pid}
            yield Stack(rasa_url, actions_url, web_url, database_url, pids)


class ChatClient:
    """A citizen in a browser: cookie, CSRF token, and one client_message_id per send."""

    def __init__(self, web_url: str) -> None:
        self.http = httpx.Client(base_url=web_url, timeout=30)
        page = self.http.get("/chat")
        page.raise_for_status()
        match = re.search(r"[0-9a-f]{64}", page.text)
        assert match, "the chat page must carry a CSRF token"
        self.csrf = match.group(0)
        self.sent = 0
        self.prefix = f"{os.getpid()}-{id(self)}"

    def send(
        self, text: str = "", *, payload: str | None = None, message_id: str | None = None, **extra: Any
    ) -> httpx.Response:
        self.sent += 1
        body = {"client_message_id": message_id or f"msg-{self.prefix}-{self.sent}", "text": text, **extra}
        if payload:
            body["payload"] = payload
        return self.http.post("/chat/api/messages", json=body, headers={"X-CSRF-Token": self.csrf})

    def say(self, text: str = "", **kwargs: Any) -> list[dict[str, Any]]:
        response = self.send(text, **kwargs)
        assert response.status_code == 200, response.text
        return list(response.json()["replies"])

    def post_json(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """Any of the page's other JSON calls (e.g. /chat/api/phone), with the cookie and CSRF token."""
        return self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    def transcript(self) -> list[dict[str, Any]]:
        return list(self.http.get("/chat/api/messages").json()["messages"])
