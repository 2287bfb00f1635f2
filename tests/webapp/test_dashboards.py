"""The dashboard and the alert rules read only metrics the app exports, and the dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from webapp.metrics import StateCollector, build_registry

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "front-door.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# Prometheus's own series, which it records for every scrape target.
PROMETHEUS_SERIES = {"up"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool"}
# What names labels rather than series: `by (le, channel)`, `offset 1d`, label matchers, strings, ranges.
NOT_SERIES = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\boffset\s+\w+|\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]"
)
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions and keywords left out)."""
    stripped = NOT_SERIES.sub(" ", expr)
    names = set()
    for match in IDENTIFIER.finditer(stripped):
        if stripped[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue  # a function or an aggregation
        names.add(match.group())
    return names


def exported(session_factory: sessionmaker[Session]) -> set[str]:
    """The sample names the exporter serves: its families' names with the suffixes of their types."""
    state = StateCollector(session_factory, "http://127.0.0.1:9", "http://127.0.0.1:9/webhook")
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in build_registry(state).collect()
        if family.name.startswith("civic_")
        for suffix in suffixes[family.type]
    }


def family_of(sample_name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", sample_name)


def dashboard_queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for value in node.values():
            yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


def test_series_names_reads_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, channel) (rate(civic_a_bucket{code="5xx"}[5m]))) > 2 * b offset 1d'
    assert series_names(expr) == {"civic_a_bucket", "b"}
    assert series_names("(x - (x offset 15m or x * 0)) > 0 and up == 0") == {"x", "up"}


@pytest.fixture(scope="module")
def names(session_factory: sessionmaker[Session]) -> set[str]:
    return exported(session_factory)


def test_the_dashboard_reads_only_exported_metrics(names: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    # What Grafana's import needs: a uid, a title, and the data source asked for on import.
    assert dashboard["uid"] and dashboard["title"] and dashboard["__inputs"][0]["pluginId"] == "prometheus"
    queries = list(dashboard_queries(dashboard["panels"]))
    assert len(queries) >= 20
    for query in queries:
        unknown = series_names(query) - names
        assert not unknown, f"{query!r} reads {unknown}, which the app does not export"


def test_the_dashboard_shows_every_exported_metric(names: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    shown = set().union(*(series_names(query) for query in dashboard_queries(dashboard["panels"])))
    assert {family_of(name) for name in names} - {family_of(name) for name in shown} == set()


def test_every_alert_reads_exported_metrics(names: set[str]) -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
    assert len(rules) >= 6
    for rule in rules:
        unknown = series_names(rule["expr"]) - names - PROMETHEUS_SERIES
        assert not unknown, f"alert {rule['alert']} reads {unknown}, which the app does not export"
