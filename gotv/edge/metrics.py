"""Prometheus metrics, counted in every process and read at /metrics.

Under gunicorn and `python -m workers` each process counts on its own; with
PROMETHEUS_MULTIPROC_DIR set (prometheus_client's multiprocess mode) they write to files in
that folder, and /metrics sums every process of the host. Without it (development, tests)
/metrics shows the serving process alone. Gauges that only the database knows (the outbox's
depth and oldest text) are read when /metrics is asked (`OutboxCollector`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SENDS = Counter(
    "gotv_sends_total", "Texts the pumps handed to Twilio, by Twilio's answer", ["outcome"]
)
REFUSED = Counter(
    "gotv_refused_total", "Texts the outbox's last gate refused, by reason", ["reason"]
)
WEBHOOK_SECONDS = Histogram(
    "gotv_webhook_seconds",
    "Time to answer Twilio's webhooks",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IMPORT_ROWS = Counter(
    "gotv_import_rows_total", "Rows of voter lists imported, by what became of them", ["outcome"]
)
LIVE_STREAMS = Gauge(
    "gotv_live_streams", "Volunteers' live event streams open", multiprocess_mode="livesum"
)
PUMP_IN_FLIGHT = Gauge(
    "gotv_pump_in_flight", "Requests to Twilio in flight", multiprocess_mode="livesum"
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OutboxCollector(Collector):
    """The outbox as the database holds it when /metrics is read: `depth()` returns how many
    texts are due and the time the oldest of them was queued (None when there are none)."""

    def __init__(self, depth: Callable[[], tuple[int, datetime | None]], now: datetime) -> None:
        self.depth, self.now = depth, now

    def collect(self) -> Iterable[GaugeMetricFamily]:
        count, oldest = self.depth()
        yield GaugeMetricFamily("gotv_outbox_queued", "Texts queued and due to send", count)
        age = (self.now - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "gotv_outbox_oldest_seconds", "How long the oldest due text has waited", age
        )


def exposition(collector: Collector, multiprocess_dir: str | None) -> bytes:
    """Every process's metrics (this process's alone without `multiprocess_dir`, the folder
    PROMETHEUS_MULTIPROC_DIR names) and `collector`'s, in Prometheus' text format."""
    ours = CollectorRegistry()
    ours.register(collector)
    if not multiprocess_dir:
        return generate_latest(REGISTRY) + generate_latest(ours)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    return generate_latest(registry) + generate_latest(ours)


def process_exited(pid: int, multiprocess_dir: str | None) -> None:
    """Forget a process that ended (gunicorn's child_exit): its live gauges stop counting."""
    if multiprocess_dir:
        multiprocess.mark_process_dead(pid, multiprocess_dir)


def serve(port: int, multiprocess_dir: str | None) -> None:
    """Serve the host's metrics (without the outbox's, which a web process adds) on `port`,
    from a thread of this process."""
    registry = CollectorRegistry()
    if multiprocess_dir:
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    start_http_server(port, registry=registry if multiprocess_dir else REGISTRY)
