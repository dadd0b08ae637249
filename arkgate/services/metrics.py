"""Prometheus metrics (one registry per app, so tests can build many apps)."""

from __future__ import annotations

import math
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._call_outcomes: dict[tuple[str, str], Counter] = {}
        self._endpoint_series: dict[str, tuple[Counter, Histogram]] = {}
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
        # Process (memory, CPU, open files) and build information, for every instance.
        ProcessCollector(registry=self.registry)
        for collector in (GC_COLLECTOR, PLATFORM_COLLECTOR):
            self.registry.register(collector)
        self.build_info = Gauge(
            "arkgate_build_info", "Always 1; labels say which arkgate runs", ["version"], registry=self.registry
        )
        self.build_info.labels(_version()).set(1)
        # Solvency, set at scrape time by the admin part (arkgate.admin.gauges).
        self.liabilities_sats = Gauge(
            "arkgate_liabilities_sats", "Sum of unspent session balances (sats owed)", registry=self.registry
        )
        self.wallet_assets_sats = Gauge(
            "arkgate_wallet_assets_sats", "Operator funds in the barkd wallet", registry=self.registry
        )
        self.solvency_surplus_sats = Gauge(
            "arkgate_solvency_surplus_sats", "Wallet assets minus liabilities", registry=self.registry
        )
        self.vtxo_nearest_expiry_height = Gauge(
            "arkgate_vtxo_nearest_expiry_height", "Block height of the soonest-expiring VTXO", registry=self.registry
        )
        self.vtxo_nearest_expiry_blocks = Gauge(
            "arkgate_vtxo_nearest_expiry_blocks", "Blocks until the soonest VTXO expiry", registry=self.registry
        )

        # Unknown until read from barkd: NaN, never a zero that looks like an empty wallet.
        for gauge in (
            self.wallet_assets_sats,
            self.solvency_surplus_sats,
            self.vtxo_nearest_expiry_height,
            self.vtxo_nearest_expiry_blocks,
        ):
            gauge.set(math.nan)

    # prometheus_client's labels() validates, takes a lock and looks the child up on every call:
    # each paid call needs three, so the children are kept here once made (their label sets are
    # few: endpoints times outcomes).
    def call_outcome(self, endpoint_id: str, outcome: str) -> Counter:
        """``arkgate_calls_total`` for this endpoint and outcome."""
        key = (endpoint_id, outcome)
        child = self._call_outcomes.get(key)
        if child is None:
            child = self._call_outcomes[key] = self.calls.labels(endpoint_id, outcome)
        return child

    def endpoint_series(self, endpoint_id: str) -> tuple[Counter, Histogram]:
        """``arkgate_sats_charged_total`` and ``arkgate_call_duration_seconds`` for this endpoint."""
        series = self._endpoint_series.get(endpoint_id)
        if series is None:
            series = self._endpoint_series[endpoint_id] = (
                self.sats_charged.labels(endpoint_id),
                self.call_seconds.labels(endpoint_id),
            )
        return series


def _version() -> str:
    try:
        return version("arkgate")
    except PackageNotFoundError:
        return "unknown"
