"""The metrics: database figures that move with what happens, events added up across processes, a private port."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import utcnow
from civic.models import InboundUpdate
from civic.operations import Backlog, snapshot
from civic.outbox import enqueue
from civic.phone_calls import start_call
from civic.settings import Settings
from civic.workflow import CaseStatus, transition
from tests.fakes.rasa import FakeRasa
from tests.production_secrets import PRODUCTION_SECRETS
from webapp.metrics import StateCollector, build_registry, create_metrics_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-the-tests-" + "x7Qp2Lm9"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def file(session: Session, category: str = "noise") -> object:
    return file_case(session, category=category, district="마포구", place="합정역", description="소음", channel="web")


def test_the_database_figures_move_with_what_happens(session: Session) -> None:
    now = utcnow()
    before = snapshot(session, now)
    conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
    for _ in range(2):
        enqueue(
            session, conversation_id=conversation.id, channel="web", kind="reply", text="…", dedupe_key=uuid.uuid4().hex
        )
    dead = enqueue(
        session, conversation_id=conversation.id, channel="web", kind="reply", text="…", dedupe_key=uuid.uuid4().hex
    )
    assert dead is not None
    dead.status = "dead"
    session.add(InboundUpdate(channel="telegram", update_key=uuid.uuid4().hex, payload={}, received_at=now))
    late = file(session)
    late.due_at = date(2020, 1, 2)  # type: ignore[attr-defined]
    done = file(session, "sewer")
    for status in (CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.RESOLVED):
        transition(session, case=done, to=status, actor="operator:1", notify=False)  # type: ignore[arg-type]
    start_call(session, call_sid="CA" + uuid.uuid4().hex, caller=None, expectation={})
    session.flush()

    after = snapshot(session, now + timedelta(minutes=2))

    def grew(old: dict[str, int], new: dict[str, int], key: str) -> int:
        return new.get(key, 0) - old.get(key, 0)

    web_before = before.outbox_undelivered.get("web", Backlog())
    assert after.outbox_undelivered["web"].count - web_before.count == 2
    assert after.outbox_undelivered["web"].oldest_seconds >= 119
    assert grew(before.outbox_dead, after.outbox_dead, "web") == 1
    assert after.inbox_pending["telegram"].count - before.inbox_pending.get("telegram", Backlog()).count == 1
    assert after.inbox_pending["telegram"].oldest_seconds >= 119
    assert grew(before.phone_calls, after.phone_calls, "active") == 1
    assert after.console_queue.count - before.console_queue.count == 1  # `late` still waits; `done` was accepted
    assert after.console_queue.oldest_seconds >= 119
    assert grew(before.cases_filed, after.cases_filed, "noise") == 1
    assert grew(before.cases_filed, after.cases_filed, "sewer") == 1
    assert grew(before.cases_resolved, after.cases_resolved, "sewer") == 1
    assert grew(before.cases_overdue, after.cases_overdue, "noise") == 1


def test_the_exporter_reads_the_database_and_probes_rasa_and_the_actions(
    session_factory: sessionmaker[Session], rasa: FakeRasa
) -> None:
    collector = StateCollector(session_factory, f"{rasa.url},http://127.0.0.1:9", "http://127.0.0.1:9/webhook")
    app = create_metrics_app(build_registry(collector), token="")
    exposed = samples(TestClient(app).get("/metrics").text)
    assert exposed[("civic_database_up", ())] == 1
    assert exposed[("civic_rasa_replica_up", (("replica", rasa.url),))] == 1
    assert exposed[("civic_rasa_replica_up", (("replica", "http://127.0.0.1:9"),))] == 0
    assert exposed[("civic_action_server_up", ())] == 0
    assert ("civic_console_queue", ()) in exposed and ("civic_console_queue_oldest_seconds", ()) in exposed


def test_a_token_guards_the_metrics_when_set(session_factory: sessionmaker[Session]) -> None:
    collector = StateCollector(session_factory, "http://127.0.0.1:9", "http://127.0.0.1:9/webhook")
    client = TestClient(create_metrics_app(build_registry(collector), token=TOKEN))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "civic_database_up" in response.text


def test_metrics_leave_loopback_only_with_a_strong_token() -> None:
    with pytest.raises(ValidationError, match="METRICS_TOKEN"):
        Settings(environment="test", metrics_host="0.0.0.0")
    assert Settings(environment="test", metrics_host="0.0.0.0", metrics_token=TOKEN).metrics_host == "0.0.0.0"
    with pytest.raises(ValidationError, match="METRICS_TOKEN is too weak"):
        Settings(environment="production", metrics_token="short", **PRODUCTION_SECRETS)
    assert Settings(environment="production", metrics_token=TOKEN, **PRODUCTION_SECRETS).metrics_token == TOKEN


def test_several_processes_add_up(tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    """Two processes (two uvicorn workers) each time a turn and see Rasa time out: the exporter shows two."""
    script = (
        "from bot.metrics import RASA_ERRORS, TURN_SECONDS, process_exiting\n"
        "TURN_SECONDS.labels('telegram', 'answered').observe(0.3)\n"
        "RASA_ERRORS.labels('http://rasa-a:5005', 'timeout').inc()\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=ROOT)
    collector = StateCollector(session_factory, "http://127.0.0.1:9", "http://127.0.0.1:9/webhook")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        exposed = samples(TestClient(create_metrics_app(build_registry(collector), token="")).get("/metrics").text)
    labels = (("channel", "telegram"), ("outcome", "answered"))
    assert exposed[("civic_turn_seconds_count", labels)] == 2
    assert exposed[("civic_turn_seconds_bucket", tuple(sorted((*labels, ("le", "0.5")))))] == 2
    assert exposed[("civic_rasa_errors_total", (("kind", "timeout"), ("replica", "http://rasa-a:5005")))] == 2


def test_a_worker_killed_outright_leaves_its_counts_but_not_its_live_gauges(
    tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    """A SIGKILLed worker never marks itself dead: its queue depth must not stay in the sum, its counts must."""
    script = (
        "import os, signal\n"
        "from bot.metrics import ASR_QUEUE_DEPTH, PHONE_GATE_REFUSALS\n"
        "ASR_QUEUE_DEPTH.set(4)\n"
        "PHONE_GATE_REFUSALS.labels('no_speech').inc()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT)
    assert killed.returncode == -9 and list(tmp_path.glob("gauge_livesum_*.db"))
    collector = StateCollector(session_factory, "http://127.0.0.1:9", "http://127.0.0.1:9/webhook")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        exposed = samples(TestClient(create_metrics_app(build_registry(collector), token="")).get("/metrics").text)
    assert exposed.get(("civic_asr_queue_depth", ()), 0) == 0
    assert exposed[("civic_phone_gate_refusals_total", (("reason", "no_speech"),))] == 1
