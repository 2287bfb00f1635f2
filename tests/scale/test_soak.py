"""The short form of `make soak` (60 s, 50 citizens, a web worker and a Rasa replica killed): nothing lost."""

from __future__ import annotations

from typing import Any

import pytest

from bench.soak import SoakConfig, SoakTarget, soak

pytestmark = pytest.mark.e2e
MAX_ERROR_RATE = 0.005


@pytest.fixture(scope="module")
def result(target: SoakTarget, soak_config: SoakConfig) -> dict[str, Any]:
    """One soak for the module's tests, each of which reads one figure of it."""
    return soak(target, soak_config)


def test_every_acknowledged_item_exists(result: dict[str, Any]) -> None:
    assert result["lost"] == 0, {"lost": result["lost_by_kind"], "checks": result["checks"]}


def test_nothing_exists_twice(result: dict[str, Any]) -> None:
    assert result["duplicated"] == 0, {"duplicated": result["duplicated_by_kind"], "checks": result["checks"]}


def test_the_outbox_drains(result: dict[str, Any]) -> None:
    outbox = result["outbox"]
    assert outbox["drained"] and outbox["dead"] == 0, outbox


def test_errors_outside_the_kill_windows_stay_rare(result: dict[str, Any]) -> None:
    assert result["error_rate_outside_kills"] < MAX_ERROR_RATE, result["errors"]


def test_every_kind_of_item_was_acknowledged(result: dict[str, Any]) -> None:
    """A soak that filed no case or cast no ballot would reconcile to zero lost and prove nothing."""
    checks = result["checks"]
    acknowledged = {
        "cases": checks["cases"]["acknowledged"],
        "chat messages": checks["web_messages"]["acknowledged"],
        "Telegram updates": checks["telegram"]["acknowledged"],
        "ballots": checks["ballots"]["acknowledged_receipts"],
        "calls": checks["calls"]["acknowledged"],
        "SMS codes": checks["sms_codes"]["acknowledged"],
    }
    assert all(acknowledged.values()), acknowledged


def test_a_web_worker_and_a_rasa_replica_were_killed_and_replaced(result: dict[str, Any]) -> None:
    kills = {kill["component"]: kill for kill in result["kills"]}
    assert set(kills) == {"web worker", "rasa replica"}
    for kill in kills.values():
        assert kill["killed_gone"] and kill["new_pid"] not in (None, kill["killed_pid"]), kill
        assert kill["ended"] is not None, kill
    assert result["workers_after"] == 2
