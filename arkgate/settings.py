"""Every setting arkgate reads, in one typed class.

Values come from ``ARKGATE_*`` environment variables, then an optional TOML file
(``ARKGATE_CONFIG`` or ``--config``), then the defaults below. The entry point
builds one ``Settings`` and passes it down; nothing reads the environment at
import time, so tests simply write ``Settings(database_url=..., ...)``.

Sections are grouped by the part of arkgate that owns them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import limits
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Network = Literal["bitcoin", "mainnet", "signet", "testnet", "regtest"]

# Settings holding an http(s) base URL (empty = feature off, where the default is empty).
_HTTP_URL_SETTINGS = (
    "public_url",
    "simulator_url",
    "barkd_url",
    "webhook_url",
    "rdap_bootstrap_url",
    "rdap_base_url",
    "ai_base_url",
    "translate_base_url",
    "image_base_url",
    "coingecko_url",
    "kraken_url",
    "mempool_url",
    "open_meteo_geocoding_url",
    "open_meteo_forecast_url",
    "esplora_url",
    "nvd_url",
    "polymarket_gamma_url",
)
T = TypeVar("T")


def _split_commas(value: Any) -> Any:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: how a list is written in an environment variable or TOML string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# A list setting: a TOML array or a comma-separated string (NoDecode: the environment's value is not JSON).
CommaList = Annotated[list[T], NoDecode, BeforeValidator(_split_commas)]

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}\.?")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _check_http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL with a host")
    if port == 0:
        raise ValueError(f"{value!r} has port 0")


def _check_nameserver(entry: str) -> None:
    """IP, IP:port or [IPv6]:port, as ``outbound.resolver.parse_nameserver`` reads them."""
    text = entry.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            host = ""
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    valid_port = not port_text or (port_text.isdigit() and 0 < int(port_text) < 65536)
    if not _is_ip(host) or not valid_port:
        raise ValueError(f"{entry!r} is not IP[:port] (e.g. 127.0.0.1:53 or [::1]:53; names are not allowed)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARKGATE_", extra="ignore", validate_default=True)

    # --- server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the gateway binds to.")
    port: int = Field(8080, ge=0, le=65535, description="Port the gateway binds to.")
    public_url: str = Field(
        "", description="Public base URL used in generated docs and manifests (default: from the request)."
    )
    data_dir: Path = Field(Path(".arkgate"), description="Directory for the SQLite database and downloads.")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    log_json: bool = Field(False, description="Write logs as JSON lines (production) instead of console text.")
    demo: bool = Field(False, description="Demo mode: the web pages offer 'pay with the simulator' controls.")
    simulator_url: str = Field("", description="Base URL of the bundled simulator's controls (demo mode only).")

    # --- database -----------------------------------------------------------------------
    database_url: str = Field(
        "",
        description="sqlite:///path, postgresql://... or mysql://... (default: SQLite in data_dir).",
    )

    # --- payments / barkd ---------------------------------------------------------------
    payment_mode: Literal["barkd", "free"] = Field(
        "barkd", description="'barkd' takes real payments; 'free' gives every session a test balance."
    )
    free_balance_sats: int = Field(1000, ge=0, description="Balance of a new session in free mode.")
    network: Network = Field("signet", description="Bitcoin network the barkd wallet is on.")
    barkd_url: str = Field("http://127.0.0.1:3000", description="Base URL of barkd's REST API.")
    barkd_token: SecretStr | None = Field(None, description="barkd bearer token.")
    barkd_token_file: Path | None = Field(None, description="File holding the barkd token (barkd's auth_token).")
    barkd_timeout_s: float = Field(10.0, gt=0, description="Timeout for one barkd request.")
    reconcile_interval_s: float = Field(
        60.0, gt=0, description="How often the payment watcher reconciles from barkd's history."
    )
    poll_interval_s: float = Field(
        2.0, gt=0, description="History polling interval when barkd has no notifications (0.1.x)."
    )
    payment_sync_interval_s: float = Field(
        1.0,
        gt=0,
        description="While receives are pending, ask barkd to sync this often (longer as more are pending).",
    )
    payment_sync_max_interval_s: float = Field(
        30.0, gt=0, description="Longest interval between barkd syncs while receives are pending."
    )
    history_audit_interval_s: float = Field(
        3600.0,
        gt=0,
        description="How often barkd's whole history is read past the stored cursor (a safety net).",
    )
    invoice_description: str = Field("arkgate session", description="Memo put on Lightning invoices.")

    # --- sessions and metering ----------------------------------------------------------
    min_session_sats: int = Field(1, ge=1, description="Smallest amount a session or top-up may request.")
    max_session_sats: int = Field(1_000_000, ge=1, description="Largest amount a session or top-up may request.")
    default_session_sats: int = Field(
        500, ge=1, description="Amount of the session offered in a 402 challenge to a tokenless call."
    )
    session_ttl_s: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="A session expires this long after its last payment; a later payment reactivates it.",
    )
    unpaid_session_ttl_s: int = Field(
        3600, ge=60, description="An unfunded session lapses after this long (a late payment still credits it)."
    )
    idempotency_ttl_s: int = Field(24 * 3600, ge=60, description="How long Idempotency-Key responses are kept.")
    call_timeout_s: float = Field(60.0, gt=0, description="Hard time budget of one paid call.")
    call_sweep_interval_s: float = Field(
        30.0,
        gt=0,
        description="How often calls left in flight past their deadline (a crashed instance's) are refunded.",
    )

    # --- payouts: withdraw, close, refund_to (issue 17) ----------------------------------
    payouts_enabled: bool = Field(True, description="Sessions may withdraw their balance (barkd mode only).")
    payout_min_sats: int = Field(1, ge=1, description="Smallest amount a withdrawal may take from a balance.")
    payout_fee_base_sats: int = Field(
        0, ge=0, description="Fee policy: sats the operator adds to barkd's fee estimate on every withdrawal."
    )
    payout_fee_ppm: int = Field(
        0, ge=0, le=1_000_000, description="Fee policy: parts per million of the amount added to the fee."
    )
    payout_max_per_hour: int = Field(10, ge=1, description="Withdrawals one session may start per hour.")
    payout_send_timeout_s: float = Field(30.0, gt=0, description="How long a withdrawal waits for barkd's answer.")
    payout_unknown_grace_s: float = Field(
        120.0,
        ge=0,
        description="A withdrawal barkd has no trace of this long after its send timed out is refunded.",
    )
    payout_recover_interval_s: float = Field(
        15.0, gt=0, description="How often withdrawals with an unknown outcome are settled from barkd's history."
    )
    payout_test_pause: str = Field(
        "",
        pattern="^(|before_send|after_send)$",
        description="Tests only: hold every withdrawal before or after barkd's send (crash tests).",
    )

    # --- rate limits --------------------------------------------------------------------
    rate_limits: str = Field("on", description="'off' disables rate limiting (load tests).")
    rate_limit_storage: str = Field("memory://", description="limits storage URL: memory:// or redis://host:port/db.")
    rate_limit_sessions: str = Field("20/minute", description="Session creations per client IP.")
    rate_limit_calls: str = Field("600/minute", description="Paid calls per token.")
    rate_limit_calls_ip: str = Field("1200/minute", description="Paid calls per client IP.")

    # --- CORS (issue 19) ------------------------------------------------------------------
    cors_allow_origins: CommaList[str] = Field(
        default_factory=lambda: ["*"],
        description="Comma-separated origins allowed to call /api/*, /v1/* and the discovery documents from a "
        "browser ('*': any, as ArkAPI; empty: no CORS headers). Credentials are never allowed.",
    )

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins_without_slash(cls, value: list[str]) -> list[str]:
        return [origin.rstrip("/") for origin in value]  # a browser's Origin header has no trailing slash

    # --- operator -----------------------------------------------------------------------
    admin_token: SecretStr | None = Field(None, description="Bearer token of the admin API; unset disables it.")

    # --- several instances and workers (docs/scaling.md) --------------------------------
    workers: int = Field(1, ge=1, le=64, description="Worker processes of 'arkgate serve' on this machine.")
    event_bus: str = Field(
        "auto",
        description="How live session events reach every instance: auto (PostgreSQL LISTEN/NOTIFY on PostgreSQL, "
        "the database table with several SQLite workers or on MariaDB, else in-process), memory, database, "
        "or a redis://host:port/db URL.",
    )
    database_pool_size: int = Field(
        20,
        ge=1,
        le=500,
        description="Connections each process keeps to PostgreSQL or MariaDB (it may open as many again at peaks); "
        "instances x workers x 2 x this must stay under the server's max_connections.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = Field(
        "FULL",
        description="SQLite's synchronous mode: FULL (default) keeps every committed payment and charge through a "
        "power cut; NORMAL only through a process crash, for a little more write throughput.",
    )
    leader_lease_s: float = Field(
        10.0,
        gt=0,
        description="Lease of the leader instance (operator monitor, sweeps, webhooks); another instance takes "
        "over within about this long after the leader dies.",
    )
    downloads_dir: Path | None = Field(
        None,
        description="Shared directory for hosted downloads (default: data_dir/downloads on SQLite, the database "
        "on PostgreSQL and MariaDB).",
    )

    # --- outbound guard and network lookups (security endpoints) -------------------------
    dns_nameservers: CommaList[str] = Field(
        default_factory=list,
        description="Comma-separated host:port resolvers used for every lookup (default: system resolver).",
    )
    unsafe_allow_private_targets: CommaList[str] = Field(
        default_factory=list,
        description="Comma-separated CIDRs the outbound guard lets through (tests only; refused on mainnet).",
    )
    outbound_timeout_s: float = Field(10.0, gt=0, description="Timeout of one outbound request.")
    outbound_max_bytes: int = Field(5_000_000, gt=0, description="Largest response body read from a target.")
    outbound_allowed_ports: CommaList[int] = Field(
        default_factory=lambda: [80, 443, 8080, 8443],
        description="Ports user-given URLs may use.",
    )

    # --- per-area settings are appended below by their owners -------------------------

    # --- health probes (issue 12) ---
    ready_requires_barkd: bool = Field(
        False,
        description="/health/ready answers 503 while barkd is unreachable (default: barkd's state is only "
        "reported, since funded sessions keep working without it).",
    )

    # --- agents: MCP, L402, discovery (issue 6) ---
    mcp_enabled: bool = Field(True, description="Serve the MCP server (streamable HTTP) at /mcp.")
    mcp_allowed_hosts: CommaList[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
        description="Comma-separated Host header values /mcp accepts (DNS-rebinding guard); "
        "'host:*' allows any port. Add your public host name in production.",
    )
    mcp_allowed_origins: CommaList[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        description="Comma-separated Origin header values /mcp accepts from browsers.",
    )
    l402_enabled: bool = Field(
        True, description="Offer L402 (macaroon + invoice) in 402 challenges and accept 'Authorization: L402'."
    )
    l402_root_key: SecretStr | None = Field(
        None,
        description="Root key signing L402 macaroons (hex or any string); unset: generated once and kept in "
        "the database, shared by every instance.",
    )
    l402_service_name: str = Field("arkgate", description="Service name bound into L402 macaroon caveats.")
    l402_validity_s: int = Field(
        30 * 24 * 3600, ge=60, description="How long an L402 macaroon stays valid after it is minted."
    )

    # --- operator console: refresh, sweeps, exits, alerts (issue 7) ---
    refresh_before_blocks: int | None = Field(
        None,
        ge=1,
        description="Refresh a VTXO when it is this many blocks from expiry (default: 288 on mainnet, "
        "24 on test networks, twice barkd's own maintenance threshold).",
    )
    refresh_check_interval_s: float = Field(
        60.0, gt=0, description="How often the operator task checks VTXO expiry, the Ark server and exits."
    )
    auto_exit_after_s: float | None = Field(
        None,
        gt=0,
        description="Start emergency exits of every VTXO after the Ark server has been unreachable this long "
        "(unset: never).",
    )
    exit_fee_rate_sat_per_vb: int | None = Field(
        None, ge=1, description="Fee rate for exit progress and claims (unset: barkd's estimate)."
    )
    exit_claim_address: str = Field(
        "", description="Bitcoin address claimed exits go to (default: a fresh address of barkd's on-chain wallet)."
    )
    sweep_destination: str = Field(
        "",
        description="Where sweeps send revenue: a bitcoin address, a Lightning invoice, Lightning address "
        "or LNURL, or an Ark address.",
    )
    sweep_floor_sats: int = Field(0, ge=0, description="The Ark wallet never goes below this balance through a sweep.")
    sweep_margin_sats: int = Field(
        10_000, ge=0, description="Sats kept in the wallet on top of the liabilities when sweeping."
    )
    solvency_alert_sats: int = Field(
        0,
        ge=0,
        description="Alert when the wallet holds less than liabilities plus this many sats.",
    )
    webhook_url: str = Field(
        "", description="URL that receives operator alerts, payment.credited and withdrawal.* as signed JSON POSTs."
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Key signing the operator's deliveries: Standard Webhooks headers (a whsec_ secret is "
        "base64-decoded, any other is used as UTF-8 bytes) and the older X-Arkgate-Signature.",
    )
    webhook_max_attempts: int = Field(6, ge=1, le=20, description="Delivery attempts per alert.")
    webhook_backoff_s: float = Field(
        2.0, ge=0, description="Delay before the first webhook retry; doubles per attempt."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Timeout of one webhook delivery.")

    # --- barkd 0.8, refresh policy, address hygiene, mainnet checks (issue 18) ---
    send_retry_for_secs: int | None = Field(
        60,
        ge=1,
        description="barkd 0.8: how long the Ark server keeps retrying an operator's Lightning send (unset: "
        "the server's default).",
    )
    refresh_schedule_margin_blocks: int | None = Field(
        None,
        ge=1,
        description="barkd 0.8: a due refresh is delegated to the server for this many blocks before the "
        "soonest expiry (default: half of refresh_before_blocks).",
    )
    refresh_batch_below_sats: int = Field(
        10_000,
        ge=0,
        description="Spendable VTXOs smaller than this join every refresh, consolidating small payments.",
    )
    refresh_max_fee_ppm: int = Field(
        5_000,
        ge=0,
        le=1_000_000,
        description="Skip a refresh whose estimated fee exceeds this share of the refreshed amount (parts per "
        "million), unless a VTXO is within half of refresh_before_blocks of expiry.",
    )
    address_pool_size: int = Field(
        8, ge=1, le=1000, description="Ark addresses shared by anonymous 402 challenges (reused once unpaid)."
    )
    address_gap_limit: int = Field(
        15,
        ge=2,
        le=10_000,
        description="Keep fewer than this many unused wallet keys after the last paid one (below barkd's "
        "recovery gap limit); a refresh closes the gap.",
    )
    backups_configured: bool = Field(
        False, description="Set when the database and data_dir (L402 key) are backed up; arkgate doctor checks it."
    )

    @property
    def effective_refresh_before_blocks(self) -> int:
        if self.refresh_before_blocks is not None:
            return self.refresh_before_blocks
        return 288 if self.network in ("bitcoin", "mainnet") else 24

    @property
    def effective_refresh_schedule_margin_blocks(self) -> int:
        if self.refresh_schedule_margin_blocks is not None:
            return self.refresh_schedule_margin_blocks
        return max(1, self.effective_refresh_before_blocks // 2)

    # --- security and OSINT endpoints (issue 4) ---
    outbound_ca_file: Path | None = Field(
        None,
        description="Extra PEM CA bundle trusted for outbound TLS besides the system store (private PKI, tests).",
    )
    dns_query_port: int = Field(
        53,
        ge=1,
        le=65535,
        description="Port used when asking a domain's authoritative nameservers directly (axfr-check).",
    )
    rdap_bootstrap_url: str = Field(
        "https://data.iana.org/rdap/dns.json", description="IANA RDAP bootstrap file for domains."
    )
    rdap_base_url: str = Field(
        "",
        description="One RDAP base URL for every TLD instead of the bootstrap (private deployments, tests).",
    )
    rdap_bootstrap_ttl_s: int = Field(86400, ge=60, description="How long the RDAP bootstrap file is cached.")
    whois_server: str = Field(
        "", description="Port-43 WHOIS server used for every TLD instead of the built-in IANA map."
    )
    whois_port: int = Field(43, ge=1, le=65535, description="Port of the port-43 WHOIS servers.")
    whois_timeout_s: float = Field(10.0, gt=0, description="Timeout of one RDAP or WHOIS query.")
    ssl_check_ports: CommaList[int] = Field(
        default_factory=lambda: [443, 465, 636, 853, 993, 995, 5061, 8443],
        description="Ports ssl-check may connect to (comma-separated).",
    )
    intel_http_port: int = Field(80, ge=1, le=65535, description="Port domain-intel uses for http:// of a domain.")
    intel_https_port: int = Field(
        443, ge=1, le=65535, description="Port domain-intel uses for https:// and TLS of a domain."
    )
    intel_cache_ttl_s: int = Field(3600, ge=0, description="How long a domain-intel report is cached (0: off).")
    ip_mmdb_path: Path | None = Field(
        None,
        description="Operator MaxMind/DB-IP city or country .mmdb used by ip-lookup instead of bundled data.",
    )
    ip_asn_mmdb_path: Path | None = Field(None, description="Operator MaxMind/DB-IP ASN .mmdb used by ip-lookup.")

    # --- AI endpoints: ai-chat, ai-translate, translate, image-generate ---
    ai_base_url: str = Field(
        "",
        description="Base URL of the OpenAI-compatible chat backend (Ollama, vLLM, llama.cpp or a hosted "
        "provider), e.g. http://127.0.0.1:11434/v1. Empty: ai-chat and ai-translate are unavailable (503, no charge).",
    )
    ai_api_key: SecretStr | None = Field(None, description="API key sent to the chat backend.")
    ai_chat_model: str = Field("llama3.2", description="Model name the chat backend is asked for (ai-chat).")
    ai_translate_model: str = Field("", description="Model for ai-translate (default: ai_chat_model).")
    ai_system_prompt: str = Field(
        "You are a helpful, concise assistant.",
        description="The operator's fixed system prompt for ai-chat; callers cannot replace it.",
    )
    ai_timeout_s: float = Field(50.0, gt=0, description="Timeout of one chat-backend request.")
    ai_max_output_tokens: int = Field(
        2048, ge=1, description="Largest max_tokens a caller may ask for; larger requests are lowered to it."
    )
    ai_default_max_tokens: int = Field(512, ge=1, description="max_tokens used when the caller gives none.")
    ai_chat_input_sats_per_1k: int = Field(2, ge=0, description="ai-chat price per 1,000 input tokens.")
    ai_chat_output_sats_per_1k: int = Field(24, ge=0, description="ai-chat price per 1,000 output tokens.")
    ai_chat_min_sats: int = Field(2, ge=1, description="Least an ai-chat call costs.")
    ai_translate_input_sats_per_1k: int = Field(2, ge=0, description="ai-translate price per 1,000 input tokens.")
    ai_translate_output_sats_per_1k: int = Field(4, ge=0, description="ai-translate price per 1,000 output tokens.")
    ai_translate_min_sats: int = Field(1, ge=1, description="Least an ai-translate call costs.")
    ai_daily_limit_sats: int = Field(
        0,
        ge=0,
        description="Most one session may spend per UTC day on ai-chat and ai-translate (0: no limit).",
    )
    translate_base_url: str = Field(
        "",
        description="Base URL of the LibreTranslate-compatible backend. Empty: translate is unavailable "
        "(503, no charge).",
    )
    translate_api_key: SecretStr | None = Field(None, description="LibreTranslate api_key, if it requires one.")
    translate_timeout_s: float = Field(15.0, gt=0, description="Timeout of one LibreTranslate request.")
    translate_sats_per_1k_chars: int = Field(
        3, ge=1, description="translate price per started 1,000 characters of input text."
    )
    translate_languages_ttl_s: float = Field(
        3600.0, gt=0, description="How long LibreTranslate's /languages answer is cached."
    )
    image_backend: Literal["openai", "comfyui"] = Field(
        "openai", description="Image backend protocol: an OpenAI-images-compatible API or ComfyUI."
    )
    image_base_url: str = Field(
        "",
        description="Base URL of the image backend (OpenAI-compatible: .../v1; ComfyUI: http://host:8188). "
        "Empty: image-generate is unavailable (503, no charge).",
    )
    image_api_key: SecretStr | None = Field(None, description="API key sent to the image backend.")
    image_model: str = Field("stable-diffusion", description="Model name sent to an OpenAI-compatible backend.")
    image_price_sats: int = Field(25, ge=1, description="image-generate price per image.")
    image_timeout_s: float = Field(55.0, gt=0, description="Time budget of one image generation.")
    image_steps: int = Field(20, ge=1, le=200, description="Sampler steps put into the ComfyUI workflow.")
    image_comfyui_workflow: Path | None = Field(
        None,
        description="ComfyUI workflow in API format (JSON); default: a bundled SD 1.5 text-to-image graph. "
        "Its EmptyLatentImage, KSampler and positive CLIPTextEncode nodes are filled in per call.",
    )
    image_comfyui_checkpoint: str = Field(
        "v1-5-pruned-emaonly.safetensors", description="Checkpoint file the bundled ComfyUI workflow loads."
    )
    image_poll_interval_s: float = Field(0.5, gt=0, description="How often ComfyUI's history is polled.")

    # --- utility upstreams, hosted downloads, screenshots (issue 5) -----------------------
    upstream_retries: int = Field(
        2, ge=0, le=5, description="Extra attempts for an idempotent upstream read that failed transiently."
    )
    upstream_retry_backoff_s: float = Field(
        0.2, ge=0, description="Delay before the first retry of an upstream read; doubles per attempt."
    )
    btc_price_providers: CommaList[str] = Field(
        default_factory=lambda: ["coingecko", "kraken"],
        description="Comma-separated BTC price providers tried in order (coingecko, kraken, mempool).",
    )
    btc_price_cache_ttl_s: float = Field(10.0, ge=0, description="How long a BTC spot price is reused.")
    btc_price_timeout_s: float = Field(5.0, gt=0, description="Timeout of one BTC price provider request.")
    coingecko_url: str = Field("https://api.coingecko.com/api/v3", description="CoinGecko API base URL.")
    coingecko_api_key: SecretStr | None = Field(
        None, description="Optional CoinGecko demo API key (sent as x-cg-demo-api-key)."
    )
    kraken_url: str = Field("https://api.kraken.com", description="Kraken public API base URL.")
    mempool_url: str = Field("https://mempool.space", description="mempool.space base URL (BTC prices).")
    open_meteo_geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1", description="Open-Meteo geocoding API base URL."
    )
    open_meteo_forecast_url: str = Field(
        "https://api.open-meteo.com/v1", description="Open-Meteo forecast API base URL."
    )
    weather_timeout_s: float = Field(8.0, gt=0, description="Timeout of one Open-Meteo request.")
    weather_cache_ttl_s: float = Field(600.0, ge=0, description="How long a forecast or geocoding answer is reused.")
    esplora_url: str = Field(
        "https://blockstream.info/api", description="Esplora-compatible API base URL (mainnet balances)."
    )
    esplora_timeout_s: float = Field(8.0, gt=0, description="Timeout of one Esplora request.")
    esplora_cache_ttl_s: float = Field(30.0, ge=0, description="How long an address balance is reused.")
    news_feeds: CommaList[str] = Field(
        default_factory=lambda: [
            "https://www.coindesk.com/arc/outboundfeeds/rss/",
            "https://cointelegraph.com/rss/tag/bitcoin",
            "https://bitcoinmagazine.com/.rss/full/",
        ],
        description="Comma-separated RSS/Atom feed URLs merged by bitcoin-news.",
    )
    news_timeout_s: float = Field(8.0, gt=0, description="Timeout of one news feed request.")
    news_cache_ttl_s: float = Field(300.0, ge=0, description="How long the merged headlines are reused.")
    nvd_url: str = Field("https://services.nvd.nist.gov/rest/json/cves/2.0", description="NVD CVE API 2.0 endpoint.")
    nvd_api_key: SecretStr | None = Field(None, description="Optional NVD API key (higher rate limits).")
    nvd_timeout_s: float = Field(15.0, gt=0, description="Timeout of one NVD request.")
    nvd_cache_ttl_s: float = Field(3600.0, ge=0, description="How long a CVE record or search is reused.")
    polymarket_gamma_url: str = Field("https://gamma-api.polymarket.com", description="Polymarket Gamma API base URL.")
    polymarket_timeout_s: float = Field(8.0, gt=0, description="Timeout of one Polymarket request.")
    polymarket_cache_ttl_s: float = Field(300.0, ge=0, description="How long a market search is reused.")
    polymarket_scan_limit: int = Field(
        500, ge=1, le=1000, description="Open markets fetched from Gamma per search (matched locally)."
    )
    downloads_ttl_s: int = Field(1800, ge=10, description="How long a hosted download stays available.")
    downloads_cleanup_interval_s: float = Field(
        60.0, gt=0, description="How often expired hosted downloads are deleted."
    )
    downloads_max_bytes: int = Field(20_000_000, gt=0, description="Largest file the downloads store accepts.")
    chromium_path: Path = Field(Path("/usr/bin/chromium"), description="Chromium executable used for screenshots.")
    screenshot_pool_size: int = Field(2, ge=1, le=16, description="Browser contexts rendering at the same time.")
    screenshot_timeout_s: float = Field(25.0, gt=0, description="Hard time budget of one screenshot.")
    screenshot_max_height: int = Field(
        8000, ge=100, description="Tallest full-page screenshot, in CSS pixels (taller pages are cut)."
    )
    screenshot_inline_max_bytes: int = Field(
        300_000, ge=0, description="Largest PNG also returned inline as base64 when asked (0: never)."
    )

    # --- endpoint availability (issue 12) ---
    unavailable_endpoints: Literal["show", "hide"] = Field(
        "show",
        description="Endpoints whose backend is not configured: 'show' lists them as unavailable (calls answer "
        "503 at no cost); 'hide' leaves them out of the catalog, docs, manifests and routes.",
    )

    @field_validator("btc_price_providers")
    @classmethod
    def _known_price_providers(cls, value: list[str]) -> list[str]:
        names = [name.strip().lower() for name in value]
        unknown = sorted(set(names) - {"coingecko", "kraken", "mempool"})
        if unknown:
            raise ValueError(f"unknown BTC price provider(s): {', '.join(unknown)} (use coingecko, kraken, mempool)")
        return names

    # --- hardening: proxies, request limits, retention, metrics (issue 15) ---------------
    forwarded_allow_ips: CommaList[str] = Field(
        default_factory=list,
        description="Comma-separated proxy addresses or networks (e.g. 10.0.0.0/8) whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted for the client IP and public scheme; '*' trusts every peer. Empty: none.",
    )
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest request body, counted while reading; larger answers 413."
    )
    max_large_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest request body of a route that declares it takes large bodies (ai-chat, /mcp).",
    )
    max_header_bytes: int = Field(
        32_768, ge=1024, description="Largest request line plus headers; larger answers 431 and closes."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A client must send a request's complete headers within this time, or is cut off."
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="A client must send a request's whole body within this time after its headers."
    )
    keep_alive_timeout_s: int = Field(5, ge=1, description="Idle keep-alive connections are closed after this.")
    max_unfunded_sessions_per_ip: int = Field(
        20,
        ge=0,
        description="Unfunded, unexpired sessions (each with an open invoice) one client IP may hold (0: no limit).",
    )
    max_open_invoices_per_session: int = Field(
        5, ge=0, description="Unpaid, unexpired top-up invoices one session may hold (0: no limit)."
    )
    prune_interval_s: float = Field(3600.0, gt=0, description="How often the retention job prunes old rows.")
    unfunded_retention_s: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="Never-funded sessions, and expired or canceled invoices, are deleted this long after they lapse.",
    )
    call_receipt_retention_s: int = Field(
        90 * 24 * 3600,
        ge=0,
        description="Call receipts older than this are folded into one aggregate ledger row per session "
        "(balances unchanged; 0: keep every receipt).",
    )
    webhook_delivery_retention_s: int = Field(
        30 * 24 * 3600,
        ge=0,
        description="Delivered and finally failed webhook deliveries are deleted this long after they ended "
        "(pending ones never; 0: keep them all).",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token for /metrics. /metrics requires this or the admin token when either is set; "
        "public only when neither is.",
    )

    # --- customer and operator webhooks, Standard Webhooks (issue 17) --------------------
    webhook_allow_networks: CommaList[str] = Field(
        default_factory=list,
        description="Comma-separated CIDRs a session's callback_url may reach although private or loopback "
        "(default: public addresses only).",
    )
    webhook_expiring_before_s: int = Field(
        3600, ge=0, description="session.expiring fires this long before a session with a webhook expires."
    )
    webhook_scan_interval_s: float = Field(
        30.0, gt=0, description="How often the leader looks for sessions about to expire (session.expiring)."
    )

    @field_validator("webhook_allow_networks")
    @classmethod
    def _valid_webhook_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, *_toml_sources(settings_cls))

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _valid_forwarded(cls, value: list[str]) -> list[str]:
        for item in value:
            if item != "*":
                ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("unsafe_allow_private_targets")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @field_validator("event_bus")
    @classmethod
    def _known_event_bus(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("auto", "memory", "database") or value.startswith(("redis://", "rediss://", "unix://")):
            return value
        raise ValueError("event_bus must be auto, memory, database or a redis:// URL")

    @model_validator(mode="after")
    def _refuse_unsafe_mainnet(self) -> Settings:
        if self.is_mainnet and self.payment_mode == "free":
            raise ValueError("payment_mode 'free' is refused on mainnet: it would hand out real service for free")
        if self.is_mainnet and self.unsafe_allow_private_targets:
            raise ValueError("unsafe_allow_private_targets is refused on mainnet")
        return self

    # --- start-up validation of addresses, URLs, lists and ports (issue 12) ------------------
    # A bad value stops start-up with a message naming the setting, instead of failing every request
    # that later uses it.
    @field_validator("host")
    @classmethod
    def _valid_bind_host(cls, value: str) -> str:
        if not _is_ip(value) and not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r} is neither an IP address nor a host name")
        return value

    @field_validator("whois_server")
    @classmethod
    def _valid_whois_host(cls, value: str) -> str:
        if value and not _is_ip(value) and not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r} is neither an IP address nor a host name")
        return value

    @field_validator("dns_nameservers")
    @classmethod
    def _valid_nameservers(cls, value: list[str]) -> list[str]:
        for entry in value:
            _check_nameserver(entry)
        return value

    @field_validator(*_HTTP_URL_SETTINGS)
    @classmethod
    def _valid_http_url(cls, value: str) -> str:
        if value:
            _check_http_url(value)
        return value

    @field_validator("news_feeds")
    @classmethod
    def _valid_feed_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            _check_http_url(url)
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        scheme = value.partition("://")[0].split("+", 1)[0].lower() if "://" in value else ""
        if value and scheme not in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
            raise ValueError("expected sqlite:///path, postgresql://... or mysql://...")
        return value

    @field_validator("rate_limit_sessions", "rate_limit_calls", "rate_limit_calls_ip")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a rate such as '20/minute' or '5 per second'") from None
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _valid_rate_limit_storage(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"{value!r} is not a storage URL such as memory:// or redis://127.0.0.1:6379/0")
        return value

    @field_validator("outbound_allowed_ports", "ssl_check_ports")
    @classmethod
    def _valid_ports(cls, value: list[int]) -> list[int]:
        bad = [port for port in value if not 0 < port < 65536]
        if bad:
            raise ValueError(f"{bad} are not TCP ports (1-65535)")
        return value

    @field_validator("log_level")
    @classmethod
    def _valid_log_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error", "critical"):
            raise ValueError(f"{value!r} is not one of debug, info, warning, error, critical")
        return value.lower()

    # --- derived values -------------------------------------------------------------------
    @property
    def is_mainnet(self) -> bool:
        return self.network in ("bitcoin", "mainnet")

    @property
    def rate_limits_enabled(self) -> bool:
        return self.rate_limits.strip().lower() not in ("off", "0", "false", "no")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'arkgate.sqlite3'}"

    def barkd_token_value(self) -> str | None:
        """The barkd token from the setting or the token file, whitespace trimmed as barkd does."""
        if self.barkd_token is not None:
            return self.barkd_token.get_secret_value().strip()
        if self.barkd_token_file is not None and self.barkd_token_file.exists():
            return self.barkd_token_file.read_text().strip()
        return None


def describe_invalid(exc: ValidationError) -> str:
    """One line per bad setting, named as the operator sets it: ``ARKGATE_PORT: ... (got 'x')``."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["msg"]).removeprefix("Value error, ")
        field = Settings.model_fields.get(name)
        if field is None:
            lines.append(message)
            continue
        secret = "Secret" in str(field.annotation)
        value = error.get("input")
        plain = isinstance(value, str | int) and not secret and repr(value) not in message
        shown = f" (got {value!r})" if plain else ""
        lines.append(f"ARKGATE_{name.upper()}: {message}{shown}")
    return "; ".join(lines)


def _toml_sources(settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
    """The TOML file named by ARKGATE_CONFIG (keys are field names, at the top or under ``[arkgate]``)."""
    path = os.environ.get("ARKGATE_CONFIG")
    if not path:
        return ()
    if not Path(path).is_file():  # pydantic-settings skips a missing file; a named one must exist
        raise FileNotFoundError(f"no such settings file: {path}")
    source = TomlConfigSettingsSource(settings_cls, toml_file=Path(path))
    if "arkgate" in source.toml_data:
        source = TomlConfigSettingsSource(settings_cls, toml_file=Path(path), toml_table_header=("arkgate",))
    return (source,)
