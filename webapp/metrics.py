"""The metrics exporter: `python -m webapp.metrics` serves every process's metrics and the database's figures.

It runs as its own process (the Procfiles' `metrics`), on METRICS_HOST:METRICS_PORT (loopback by default; any
other address needs METRICS_TOKEN, sent as `Authorization: Bearer`), so no citizen-facing port carries them.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.metrics import MULTIPROC_DIR_VARIABLE
from civic.db import get_session_factory, utcnow
from civic.operations import Backlog, OperationsSnapshot, snapshot
from civic.settings import LOOPBACK_HOSTS, get_settings
from webapp.health import CHECK_TIMEOUT_SECONDS, action_server_health_url

LOG_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "logging.json"
log = logging.getLogger(__name__)


def _labelled(family: GaugeMetricFamily | CounterMetricFamily, values: Mapping[str, float]) -> Metric:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


def _backlogs(name: str, help_text: str, label: str, backlogs: dict[str, Backlog]) -> Iterator[Metric]:
    """`<name>` (how many wait) and `<name>_oldest_seconds`, one series per `label` value."""
    yield _labelled(GaugeMetricFamily(name, help_text, labels=[label]), {k: b.count for k, b in backlogs.items()})
    yield _labelled(
        GaugeMetricFamily(f"{name}_oldest_seconds", f"Age of the oldest of: {help_text.lower()}", labels=[label]),
        {k: b.oldest_seconds for k, b in backlogs.items()},
    )


def snapshot_metrics(figures: OperationsSnapshot) -> Iterator[Metric]:
    """The database's figures as metric families (what alerts.yml and the dashboard read)."""
    yield from _backlogs(
        "civic_outbox_undelivered", "Messages to citizens not yet delivered", "channel", figures.outbox_undelivered
    )
    yield _labelled(
        GaugeMetricFamily("civic_outbox_dead", "Messages to citizens given up on (dead letters)", labels=["channel"]),
        figures.outbox_dead,
    )
    yield from _backlogs(
        "civic_inbox_pending", "Channel updates stored but not handled yet", "channel", figures.inbox_pending
    )
    yield _labelled(
        GaugeMetricFamily(
            "civic_phone_calls", "Calls on the 120 line now, by status (active, queued)", labels=["status"]
        ),
        figures.phone_calls,
    )
    yield GaugeMetricFamily(
        "civic_console_queue", "Items waiting in the operators' queue", value=figures.console_queue.count
    )
    yield GaugeMetricFamily(
        "civic_console_queue_oldest_seconds",
        "How long the oldest item of the operators' queue has waited",
        value=figures.console_queue.oldest_seconds,
    )
    yield _labelled(
        CounterMetricFamily("civic_cases_filed", "Cases filed, by category", labels=["category"]), figures.cases_filed
    )
    yield _labelled(
        CounterMetricFamily("civic_cases_resolved", "Resolutions of cases, by category", labels=["category"]),
        figures.cases_resolved,
    )
    yield _labelled(
        GaugeMetricFamily("civic_cases_overdue", "Open cases past their due date, by category", labels=["category"]),
        figures.cases_overdue,
    )
    yield _labelled(
        CounterMetricFamily("civic_ballots_cast", "Ballots cast, by channel", labels=["channel"]),
        figures.ballots_cast,
    )


def answers(url: str, params: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=CHECK_TIMEOUT_SECONDS).status_code == 200
    except httpx.HTTPError:
        return False


class StateCollector(Collector):
    """Read at each scrape: the database's figures, and whether each Rasa replica and the action server answer."""

    def __init__(
        self, session_factory: sessionmaker[Session], rasa_url: str, action_server_url: str, rasa_auth_token: str = ""
    ) -> None:
        self.session_factory = session_factory
        self.replicas = [url.strip().rstrip("/") for url in rasa_url.split(",") if url.strip()]
        self.action_health = action_server_health_url(action_server_url)
        self.rasa_params = {"token": rasa_auth_token} if rasa_auth_token else {}

    def collect(self) -> Iterable[Metric]:
        try:
            with self.session_factory() as session:
                figures = snapshot(session, utcnow())
        except Exception:  # an unreachable database is itself the news: reported as civic_database_up 0
            log.exception("reading the operations figures failed")
            figures = None
        yield GaugeMetricFamily("civic_database_up", "Whether the database answered", value=float(figures is not None))
        if figures is not None:
            yield from snapshot_metrics(figures)
        yield _labelled(
            GaugeMetricFamily(
                "civic_rasa_replica_up", "Whether a Rasa replica serves (GET /status)", labels=["replica"]
            ),
            {replica: float(answers(f"{replica}/status", self.rasa_params)) for replica in self.replicas},
        )
        yield GaugeMetricFamily(
            "civic_action_server_up",
            "Whether the action server's /health answers",
            value=float(answers(self.action_health)),
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class AllProcesses(multiprocess.MultiProcessCollector):
    """Adds up every process's files, after dropping the live gauges of processes that died without saying so.

    A web worker killed outright (SIGKILL, the OOM killer) never runs its shutdown, and its queue depth and
    console count would otherwise stay in the sum; its counters stay, as they should. The exporter runs on
    the same machine as the workers, so their pids are its to ask about.
    """

    def collect(self) -> Iterable[Metric]:
        for path in Path(self._path).glob("gauge_live*_*.db"):
            pid = int(path.stem.rsplit("_", 1)[1])
            if not alive(pid):
                multiprocess.mark_process_dead(pid, self._path)
        return super().collect()


class ThisProcess(Collector):
    """Without a multiprocess directory (a shell, the tests) the only events are this process's own."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def build_registry(state: Collector) -> CollectorRegistry:
    """Every process's events (multiprocess files when PROMETHEUS_MULTIPROC_DIR is set) plus `state`."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_DIR_VARIABLE):
        AllProcesses(registry)
    else:
        registry.register(ThisProcess())
    registry.register(state)
    return registry


def create_metrics_app(registry: CollectorRegistry, token: str) -> Starlette:
    """`GET /metrics` in Prometheus's text format; with a token set, only for `Authorization: Bearer <token>`."""

    async def metrics(request: Request) -> Response:
        if token:
            presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(presented.encode(), token.encode()):
                return PlainTextResponse("unauthorized", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = await asyncio.to_thread(generate_latest, registry)  # database queries and probes: off the loop
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return Starlette(routes=[Route("/metrics", metrics)])


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=settings.metrics_host)
    parser.add_argument("--port", type=int, default=settings.metrics_port)
    args = parser.parse_args(argv)
    if args.host not in LOOPBACK_HOSTS and not settings.metrics_token:
        parser.error(f"--host {args.host} is not loopback: set METRICS_TOKEN so metrics stay private")
    state = StateCollector(
        get_session_factory(), settings.rasa_url, settings.action_server_url, settings.rasa_auth_token
    )
    app = create_metrics_app(build_registry(state), settings.metrics_token)
    uvicorn.run(app, host=args.host, port=args.port, log_config=str(LOG_CONFIG), access_log=False)


if __name__ == "__main__":
    main()
