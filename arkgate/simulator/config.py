"""Static configuration of one simulated barkd + Ark server."""

from __future__ import annotations

from dataclasses import dataclass

NETWORKS = ("bitcoin", "mainnet", "testnet", "signet", "mutinynet", "regtest")
COMPAT_VERSIONS = ("0.8.0", "0.6.0", "0.1.4")


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything ``create_simulator_app`` can tune; defaults mirror a signet barkd 0.8.0."""

    network: str = "signet"
    compat: str = "0.8.0"
    no_auth: bool = False
    wait_timeout_s: float = 30.0
    invoice_expiry_s: int = 3600
    vtxo_lifetime: int = 144
    exit_delta: int = 12
    start_height: int = 200_000
    round_interval: str = "1m"
    required_board_confirmations: int = 3
    max_vtxo_exit_depth: int = 100
    lightning_receive_base_fee_sat: int = 0
    lightning_receive_ppm: int = 0
    lightning_send_base_fee_sat: int = 0
    refresh_base_fee_sat: int = 0
    offboard_feerate_sat_per_kvb: int = 1000
    max_offboard_inputs: int = 4
    # VTXOs this close to expiry count as "must refresh" for refresh/counterparty and docs.
    vtxo_refresh_expiry_threshold: int = 12
    # Consecutive unused key indices a seed recovery crosses before it stops (``/_sim/recover``).
    gap_limit: int = 20

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"unknown network {self.network!r}; expected one of {NETWORKS}")
        if self.compat not in COMPAT_VERSIONS:
            raise ValueError(f"unknown compat version {self.compat!r}; expected one of {COMPAT_VERSIONS}")

    @property
    def legacy(self) -> bool:
        """True in 0.1.4 compatibility mode."""
        return self.compat == "0.1.4"

    @property
    def v08(self) -> bool:
        """True in 0.8.0 mode (the default): new balance fields, round states, ``vtxo-swept``."""
        return self.compat == "0.8.0"

    @property
    def chain_network(self) -> str:
        """The network name ark-info reports (bitcoin, testnet, signet or regtest)."""
        return {"mainnet": "bitcoin", "mutinynet": "signet"}.get(self.network, self.network)


@dataclass(kw_only=True)
class Faults:
    """Fault switches set through ``POST /_sim/faults``; in memory only."""

    latency_ms: int = 0
    fail_routes: tuple[str, ...] = ()
    hold_receives: str | None = None  # "htlcs-ready" or "preimage-revealed"
    mailbox_down: bool = False
    duplicate_arkoor: int = 0
    refuse_near_expiry: bool = False
    lightning_send_fail: bool = False
    ws_paused: bool = False
    fail_rounds: str | None = None  # "failed" or "canceled": the next rounds end that way
    hide_fingerprint: bool = False  # GET /wallet answers {"fingerprint": null}, as a wallet still loading

    def as_dict(self) -> dict[str, object]:
        return {
            "latency_ms": self.latency_ms,
            "fail_routes": list(self.fail_routes),
            "hold_receives": self.hold_receives,
            "mailbox_down": self.mailbox_down,
            "duplicate_arkoor": self.duplicate_arkoor,
            "refuse_near_expiry": self.refuse_near_expiry,
            "lightning_send_fail": self.lightning_send_fail,
            "ws_paused": self.ws_paused,
            "fail_rounds": self.fail_rounds,
            "hide_fingerprint": self.hide_fingerprint,
        }
