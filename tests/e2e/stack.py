"""Starts the real stack (Rasa engine, action server, web app) as subprocesses for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text

from bot.gateway import server_metadata
from civic.db import normalize_url
from civic.settings import get_settings
from webapp.scale import ensure_schema, rasa_env

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
    # Every simulated citizen (benchmarks, soak) comes from 127.0.0.1: the per-address quotas would count them as
    # one. The per-conversation and per-phone limits still hold; tests/security checks the per-address ones.
    env.setdefault("SMS_CODES_PER_ADDRESS_PER_HOUR", "100000")
    env.setdefault("CHAT_MESSAGES_PER_ADDRESS_PER_MINUTE", "100000")
    env.setdefault("CHAT_PHOTOS_PER_ADDRESS_PER_HOUR", "100000")
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
    database_url: str,
    rasa_url: str,
    name: str = "web",
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[tuple[str, int]]:
    """The web app on a free port; with `workers` > 1 the pid yielded is uvicorn's supervisor."""
    port = free_port()
    env = base_env(database_url) | {
        "RASA_URL": rasa_url,
        "OUTBOX_POLL_SECONDS": "0.2",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env |= extra_env or {}
    command = [str(ROOT / ".venv/bin/uvicorn"), "webapp.main:app", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    with started(name, command, env) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(f"{url}/health", process, timeout=30)
        yield url, process.pid


def rasa_command(port: int, endpoints: str = "endpoints.yml") -> list[str]:
    """The Rasa engine as `make run` starts it: through bot.rasa_server, API behind RASA_AUTH_TOKEN."""
    return [str(ROOT / ".venv/bin/python"), "-m", "bot.rasa_server", "--port", str(port), "--endpoints", endpoints]


def actions_command(port: int) -> list[str]:
    """The action server as `make run` starts it: on loopback, behind ACTION_SERVER_TOKEN."""
    return [str(ROOT / ".venv/bin/python"), "-m", "actions.server", "--port", str(port)]


def rasa_api_params() -> dict[str, str]:
    """The query Rasa's HTTP API wants from the tests (the stack runs with ENVIRONMENT=test's token)."""
    return {"token": get_settings().rasa_auth_token}


def signed_rest_turn(sender: str, text: str, **facts: Any) -> dict[str, Any]:
    """A REST-channel body carrying the gateway's signed metadata, as the web app would send it."""
    return {"sender": sender, "message": text, "metadata": server_metadata(sender, facts)}


def has_model(response: httpx.Response) -> bool:
    return bool(response.json().get("model_file"))


@contextmanager
def running_engine(database_url: str) -> Iterator[tuple[str, str, dict[str, int]]]:
    """Rasa and the action server alone, as `make run` starts them: (rasa_url, actions_url, pids)."""
    action_port, rasa_port = free_port(), free_port()
    actions_url = f"http://127.0.0.1:{action_port}"
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    env = base_env(database_url)
    rasa_env = env | {"ACTION_SERVER_URL": f"{actions_url}/webhook"}
    with (
        started("actions", actions_command(action_port), env) as actions,
        started("rasa", rasa_command(rasa_port), rasa_env) as rasa,
    ):
        wait_until(f"{actions_url}/health", actions, timeout=60)
        wait_until(f"{rasa_url}/status?token={get_settings().rasa_auth_token}", rasa, timeout=240, ready=has_model)
        yield rasa_url, actions_url, {"rasa": rasa.pid, "actions": actions.pid}


@contextmanager
def running_stack(database_url: str, web_env: dict[str, str] | None = None) -> Iterator[Stack]:
    with ExitStack() as processes:
        rasa_url, actions_url, pids = processes.enter_context(running_engine(database_url))
        web_url, web_pid = processes.enter_context(web_app(database_url, rasa_url, extra_env=web_env))
        yield Stack(rasa_url, actions_url, web_url, database_url, pids | {"web": web_pid})


RASA_START_SECONDS = 300  # two replicas loading at once on two cores, next to a busy stack


def web_worker_pids_of(supervisor: int) -> list[int]:
    """uvicorn's worker processes: the supervisor's children, less multiprocessing's resource tracker."""
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError:
        return []
    pids = []
    for child in map(int, children):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue  # exited between the two reads
        if b"resource_tracker" not in command:
            pids.append(child)
    return sorted(pids)


@dataclass
class RasaReplica:
    """One Rasa replica of the scaled stack: its port, and the process serving it now."""

    name: str
    url: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    starts: int = 1


@dataclass
class ScaledStack:
    """Scale mode on loopback: two Rasa replicas on one tracker store, one action server, two web workers."""

    web_url: str
    actions_url: str
    database_url: str
    redis_url: str
    rasa_schema: str
    supervisor_pid: int
    web_log: str
    replicas: list[RasaReplica]
    _processes: ExitStack = field(repr=False)

    @property
    def rasa_urls(self) -> list[str]:
        return [replica.url for replica in self.replicas]

    def web_worker_pids(self) -> list[int]:
        return web_worker_pids_of(self.supervisor_pid)

    def kill_web_worker(self, timeout: float = 60) -> tuple[int, int]:
        """SIGKILLs one web worker and waits until uvicorn's supervisor has a new one serving; (killed, new)."""
        before = self.web_worker_pids()
        if not before:
            raise RuntimeError("the web app has no workers to kill")
        victim = before[0]
        served = _startups_logged(self.web_log)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = set(self.web_worker_pids()) - set(before)
            if fresh and _startups_logged(self.web_log) > served:
                return victim, fresh.pop()
            time.sleep(0.2)
        raise TimeoutError(f"no new web worker serving {timeout}s after killing {victim}; see {LOGS}")

    def kill_rasa(self, index: int) -> int:
        """SIGKILLs replica `index` (its whole process group); returns the pid killed."""
        replica = self.replicas[index]
        pid = replica.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        replica.process.wait(timeout=30)
        return pid

    def restart_rasa(self, index: int, timeout: float = RASA_START_SECONDS) -> int:
        """Starts replica `index` again on its port and waits until it has loaded the model; returns its pid."""
        replica = self.replicas[index]
        replica.starts += 1
        name = f"{replica.name}-start{replica.starts}"
        replica.process = self._processes.enter_context(started(name, replica.command, replica.env))
        wait_until(f"{replica.url}/status?token={get_settings().rasa_auth_token}", replica.process, timeout, has_model)
        warm_up(replica.url)
        return replica.process.pid


def _startups_logged(name: str) -> int:
    """How many workers of the `name` app have logged that their startup completed."""
    try:
        return (LOGS / f"{name}.log").read_text(errors="replace").count("Application startup complete")
    except OSError:
        return 0


def _drop_schema(database_url: str, schema: str) -> None:
    engine = create_engine(normalize_url(database_url))
    try:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        engine.dispose()


def _drop_locks(redis_url: str, lock_prefix: str) -> None:
    """Locks a killed replica held stay in Redis with no expiry (their tickets expire inside them)."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(f"{lock_prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _start_replicas(processes: ExitStack, rasa_env: dict[str, str], prefix: str) -> list[RasaReplica]:
    """Starts both replicas before waiting for either: each spends most of a minute loading the model."""
    replicas = []
    for index in range(2):
        port = free_port()
        command = rasa_command(port, "endpoints-scaled.yml")
        name = f"{prefix}-rasa{index}"
        process = processes.enter_context(started(name, command, rasa_env))
        replicas.append(RasaReplica(name, f"http://127.0.0.1:{port}", command, rasa_env, process))
    for replica in replicas:
        status = f"{replica.url}/status?token={get_settings().rasa_auth_token}"
        wait_until(status, replica.process, timeout=RASA_START_SECONDS, ready=has_model)
        warm_up(replica.url)
    return replicas


def warm_up(rasa_url: str) -> None:
    """A replica's first turn takes seconds (models and connections load lazily); spend it here."""
    text = "가로등이 나가서 밤에 너무 어두워요"
    httpx.post(f"{rasa_url}/model/parse", params=rasa_api_params(), json={"text": text}, timeout=60)
    greeting = {"sender": f"warm-up-{uuid.uuid4().hex}", "message": "안녕하세요"}
    httpx.post(f"{rasa_url}/webhooks/rest/webhook", json=greeting, timeout=60)


@contextmanager
def running_scaled_stack(
    database_url: str, redis_url: str, web_env: dict[str, str] | None = None
) -> Iterator[ScaledStack]:
    """Two Rasa replicas (SQL tracker store in a fresh schema, Redis lock store), actions, two web workers."""
    suffix = uuid.uuid4().hex[:10]
    schema, prefix = f"rasa_{suffix}", f"scaled-{suffix}"  # logs of their own: other stacks may run meanwhile
    lock_prefix = f"soak{suffix}"  # alphanumeric: Rasa ignores any other prefix and shares locks across stacks
    ensure_schema(database_url, schema)
    action_port = free_port()
    actions_url = f"http://127.0.0.1:{action_port}"
    env = base_env(database_url) | {"REDIS_URL": redis_url}
    replica_env = env | rasa_env(database_url, redis_url, schema=schema, lock_prefix=lock_prefix)
    replica_env["ACTION_SERVER_URL"] = f"{actions_url}/webhook"
    actions_cmd = actions_command(action_port)
    try:
        with ExitStack() as processes:
            actions = processes.enter_context(started(f"{prefix}-actions", actions_cmd, env))
            replicas = _start_replicas(processes, replica_env, prefix)
            wait_until(f"{actions_url}/health", actions, timeout=60)
            rasa_url = ",".join(replica.url for replica in replicas)
            web_extra = {"REDIS_URL": redis_url} | (web_env or {})
            web_log = f"{prefix}-web"
            with web_app(database_url, rasa_url, web_log, web_extra, workers=2) as (web_url, supervisor):
                _wait_for_workers(supervisor, web_log, 2)
                yield ScaledStack(
                    web_url, actions_url, database_url, redis_url, schema, supervisor, web_log, replicas, processes
                )
    finally:
        _drop_schema(database_url, schema)
        _drop_locks(redis_url, lock_prefix)


def _wait_for_workers(supervisor: int, log: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(web_worker_pids_of(supervisor)) < count or _startups_logged(log) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"uvicorn did not start {count} workers in {timeout}s; see {LOGS}")
        time.sleep(0.2)


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
