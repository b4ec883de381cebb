"""Prometheus metrics: one registry per process, exposed at `/metrics`.

Domains count their own events through the helpers here (`count("uploads")`), so no domain
imports prometheus-client directly and the names stay consistent. Gauges that describe the
database (log size, members) are read at scrape time, so every hub process reports the truth.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "concord_http_requests_total",
    "HTTP requests served.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "concord_http_request_seconds",
    "Time to serve an HTTP request.",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENTS = Counter(
    "concord_events_total",
    "Domain events: rounds, updates, uploads, downloads, ballots, publications.",
    ["kind"],
    registry=REGISTRY,
)
BYTES = Counter(
    "concord_bytes_total", "Bytes moved, by direction.", ["direction"], registry=REGISTRY
)
_gauges: dict[str, Gauge] = {}


def count(kind: str, amount: float = 1.0) -> None:
    """Counts a domain event such as `round`, `upload`, `download`, `ballot`."""
    EVENTS.labels(kind=kind).inc(amount)


def moved(direction: str, amount: int) -> None:
    """Counts bytes sent (`out`) or received (`in`) by uploads and downloads."""
    BYTES.labels(direction=direction).inc(amount)


def gauge(name: str, help_text: str, read: Callable[[], float]) -> None:
    """A gauge computed when Prometheus scrapes."""
    if name not in _gauges:
        g = Gauge(name, help_text, registry=REGISTRY)
        _gauges[name] = g
    _gauges[name].set_function(read)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)
