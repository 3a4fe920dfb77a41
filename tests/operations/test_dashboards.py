"""The Grafana dashboard and the Prometheus alert rules in docs/ name only metrics and labels the app exposes.

A renamed metric would otherwise leave an empty panel, or an alert that never fires, with nothing to say
so. The series' names come from the app's own registry (every metric, counted or not), so the check needs
no traffic; `promtool check rules docs/prometheus-alerts.yml` checks the queries' syntax where promtool is
installed (it is not part of the suite).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from app.plumbing.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bpassid_[a-z0-9_]+")
# `{label="…"`, `label=~"…"`, `label!~"…"` inside a selector, and `by (label, …)`.
MATCHED_LABEL = re.compile(r"[{,]\s*([a-z_]+)\s*(?:=|!=|=~|!~)\s*\"")
GROUPED_BY = re.compile(r"\bby\s*\(([^)]*)\)")
PROMETHEUS_OWN_LABELS = {"job", "instance", "le"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exposed() -> dict[str, set[str]]:
    """Each series name the app can expose, with the labels it carries."""
    series: dict[str, set[str]] = {}
    for metric in vars(Metrics(CollectorRegistry())).values():  # every metric, with or without samples yet
        if not isinstance(metric, MetricWrapperBase):
            continue
        labels = set(metric._labelnames)
        for family in metric.describe():
            for suffix in SUFFIXES[family.type]:
                series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries.append(dashboard["templating"]["list"][1]["definition"])
    return queries


def alert_queries() -> list[str]:
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    found = [rule for group in rules["groups"] for rule in group["rules"]]
    assert all({"alert", "expr", "labels", "annotations"} <= set(rule) for rule in found)
    return [rule["expr"] for rule in found]


def unknown_names_and_labels(queries: list[str]) -> list[str]:
    series = exposed()
    problems = []
    for query in queries:
        names = NAME.findall(query)
        problems += [f"{name} (in {query!r})" for name in names if name not in series]
        known = set().union(*(series.get(name, set()) for name in names)) | PROMETHEUS_OWN_LABELS
        used = set(MATCHED_LABEL.findall(query))
        used |= {label.strip() for grouped in GROUPED_BY.findall(query) for label in grouped.split(",")
                 if label.strip()}
        problems += [f"label {label} (in {query!r})" for label in sorted(used - known)]
    return problems


def test_every_metric_and_label_the_dashboard_queries_exists() -> None:
    queries = dashboard_queries()
    assert len(queries) > 20 and all(NAME.search(query) for query in queries)
    assert not unknown_names_and_labels(queries)


def test_every_metric_and_label_the_alert_rules_query_exists_and_each_concern_has_an_alert() -> None:
    queries = alert_queries()
    assert not unknown_names_and_labels(queries)
    text = "\n".join(queries)
    for concern in ('passid_http_requests_total{status=~"5.."}', 'route="/verify/qr/status"',
                    "passid_upstream_calls_total", "passid_webhook_handling_lag_seconds_bucket",
                    'passid_notification_attempts_total{result="failed"}'):
        assert concern in text, concern


def test_the_checker_finds_a_renamed_metric_and_an_unknown_label() -> None:
    """Positive control: a query the app cannot answer is found out."""
    assert unknown_names_and_labels(["rate(passid_http_request_total[5m])"])
    assert unknown_names_and_labels(['sum by (path) (rate(passid_http_requests_total{route="/"}[5m]))'])
    assert not unknown_names_and_labels(['sum by (route) (rate(passid_http_requests_total{status="200"}[5m]))'])
