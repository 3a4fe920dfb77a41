"""Reading `/metrics` as Prometheus does: the text format parsed by prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

METRICS_TOKEN = "metrics-token-for-the-tests-0123"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def samples(exposition: str) -> list[Sample]:
    """Every sample of an exposition, each with its full name (`…_total`, `…_bucket`) and labels."""
    return [sample for family in text_string_to_metric_families(exposition) for sample in family.samples]


def value(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    wanted = dict(labels or {})
    return sum(sample.value for sample in samples(exposition)
               if sample.name == name and wanted.items() <= sample.labels.items())
