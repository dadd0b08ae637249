"""Prometheus metrics (one registry per app, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "arkgate_calls_total", "Paid calls by endpoint and outcome", ["endpoint", "outcome"], registry=self.registry
        )
        self.sats_charged = Counter(
            "arkgate_sats_charged_total", "Sats kept for successful calls", ["endpoint"], registry=self.registry
        )
        self.payments = Counter("arkgate_payments_total", "Payments credited", ["rail"], registry=self.registry)
        self.payment_sats = Counter(
            "arkgate_payment_sats_total", "Sats credited to sessions", ["rail"], registry=self.registry
        )
        self.call_seconds = Histogram(
            "arkgate_call_duration_seconds", "Paid call duration", ["endpoint"], registry=self.registry
        )
        self.watcher_connected = Gauge(
            "arkgate_watcher_connected", "1 while the payment watcher follows barkd", registry=self.registry
        )
        self.watcher_event_age = Gauge(
            "arkgate_watcher_seconds_since_event",
            "Seconds since the watcher last saw a barkd event",
            registry=self.registry,
        )
