"""``arkgate doctor``: a deployment checked against the mainnet checklist (docs/mainnet.md).

Each check reads the settings and, where it must, asks barkd; it answers ok or what to fix.
The command exits 1 when any check fails. Block-time numbers assume mainnet's 10-minute blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from arkgate.admin.health import expected_network
from arkgate.errors import ArkgateError
from arkgate.payments.barkd import BarkdClient, ExitFee
from arkgate.settings import Settings

# barkd's own maintenance threshold on mainnet (BEHAVIOUR.md 5): arkgate should act before it.
MAINNET_MIN_REFRESH_BEFORE_BLOCKS = 144  # one day of blocks
# A delegated refresh needs a round and its confirmations before expiry: at least six hours.
MAINNET_MIN_SCHEDULE_MARGIN_BLOCKS = 36
TEST_MIN_REFRESH_BEFORE_BLOCKS = 12
MAX_CHECK_INTERVAL_S = 3600.0
MIN_ADMIN_TOKEN_LENGTH = 32
SUPPORTED_BARKD = ("0.6", "0.8")


@dataclass(frozen=True, kw_only=True)
class Check:
    id: str
    title: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.title}: {self.detail}"


@dataclass(kw_only=True)
class BarkdFacts:
    """What barkd says, gathered once; ``error`` when it could not be asked."""

    error: str | None = None
    version: str | None = None
    network: str | None = None
    vtxo_lifetime: int | None = None
    exit_fee: ExitFee | None = None
    exit_fee_error: str | None = None
    onchain_wallet: bool = False


async def gather(barkd: BarkdClient) -> BarkdFacts:
    facts = BarkdFacts()
    try:
        facts.version = await barkd.api_version()
        info = await barkd.ark_info()
        facts.network = info.network
        facts.vtxo_lifetime = info.vtxo_lifetime
    except ArkgateError as exc:
        facts.error = exc.message
        return facts
    try:
        await barkd.onchain_balance()
        facts.onchain_wallet = True
        facts.exit_fee = await barkd.exit_fee(None)
    except ArkgateError as exc:
        facts.exit_fee_error = exc.message
    return facts


Rule = Callable[[Settings, BarkdFacts], Check]


def _network(settings: Settings, facts: BarkdFacts) -> Check:
    title = "network matches barkd"
    if facts.error:
        return Check(id="network", title=title, ok=False, detail=f"cannot ask barkd: {facts.error}")
    want = expected_network(settings.network)
    if facts.network != want:
        return Check(
            id="network",
            title=title,
            ok=False,
            detail=f"barkd's Ark server is on {facts.network}, ARKGATE_NETWORK is {settings.network}",
        )
    return Check(id="network", title=title, ok=True, detail=f"both on {want}")


def _barkd_version(settings: Settings, facts: BarkdFacts) -> Check:
    title = "barkd version"
    if facts.error:
        return Check(id="barkd_version", title=title, ok=False, detail=f"cannot ask barkd: {facts.error}")
    if facts.version not in SUPPORTED_BARKD:
        return Check(
            id="barkd_version",
            title=title,
            ok=False,
            detail=f"barkd speaks the {facts.version} API; upgrade to 0.6 or 0.8 (servers refuse clients before 0.5)",
        )
    return Check(id="barkd_version", title=title, ok=True, detail=f"barkd speaks the {facts.version} API")


def _public_url(settings: Settings, facts: BarkdFacts) -> Check:
    title = "TLS public URL"
    url = settings.public_url.strip()
    if not url.startswith("https://"):
        return Check(
            id="public_url",
            title=title,
            ok=False,
            detail="set ARKGATE_PUBLIC_URL to the https:// address a TLS proxy serves (tokens travel in headers)",
        )
    return Check(id="public_url", title=title, ok=True, detail=url)


def _admin_token(settings: Settings, facts: BarkdFacts) -> Check:
    title = "admin token strength"
    if settings.admin_token is None:
        return Check(id="admin_token", title=title, ok=True, detail="unset: the admin API is off")
    token = settings.admin_token.get_secret_value()
    if len(token) < MIN_ADMIN_TOKEN_LENGTH or len(set(token)) < 10:
        return Check(
            id="admin_token",
            title=title,
            ok=False,
            detail=f"use at least {MIN_ADMIN_TOKEN_LENGTH} random characters (python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')",
        )
    return Check(id="admin_token", title=title, ok=True, detail=f"{len(token)} characters")


def _l402_key(settings: Settings, facts: BarkdFacts) -> Check:
    title = "L402 signing key backed up"
    if not settings.l402_enabled:
        return Check(id="l402_key", title=title, ok=True, detail="L402 is off")
    if settings.l402_root_key is not None:
        return Check(
            id="l402_key", title=title, ok=True, detail="given by ARKGATE_L402_ROOT_KEY (keep it in your vault)"
        )
    if not settings.backups_configured:
        return Check(
            id="l402_key",
            title=title,
            ok=False,
            detail=f"the key lives in {settings.data_dir / 'l402_root_key'}: back it up (then set "
            "ARKGATE_BACKUPS_CONFIGURED=true) or set ARKGATE_L402_ROOT_KEY; losing it voids every paid macaroon",
        )
    return Check(id="l402_key", title=title, ok=True, detail="data_dir is in the backups")


def _backups(settings: Settings, facts: BarkdFacts) -> Check:
    title = "database backups"
    if not settings.backups_configured:
        return Check(
            id="backups",
            title=title,
            ok=False,
            detail="the ledger is what customers are owed: back up the database (and data_dir), then set "
            "ARKGATE_BACKUPS_CONFIGURED=true",
        )
    return Check(id="backups", title=title, ok=True, detail="declared configured")


def _refresh_margins(settings: Settings, facts: BarkdFacts) -> Check:
    title = "refresh policy margins"
    before = settings.effective_refresh_before_blocks
    margin = settings.effective_refresh_schedule_margin_blocks
    problems = []
    if settings.is_mainnet:
        if before < MAINNET_MIN_REFRESH_BEFORE_BLOCKS:
            problems.append(
                f"refresh_before_blocks {before} is under {MAINNET_MIN_REFRESH_BEFORE_BLOCKS} (a day of blocks, "
                "barkd's own threshold)"
            )
        if margin < MAINNET_MIN_SCHEDULE_MARGIN_BLOCKS:
            problems.append(
                f"refresh_schedule_margin_blocks {margin} is under {MAINNET_MIN_SCHEDULE_MARGIN_BLOCKS} (six hours)"
            )
    elif before < TEST_MIN_REFRESH_BEFORE_BLOCKS:
        problems.append(f"refresh_before_blocks {before} is under {TEST_MIN_REFRESH_BEFORE_BLOCKS}")
    if margin >= before:
        problems.append(f"the schedule margin ({margin}) must be smaller than refresh_before_blocks ({before})")
    if facts.vtxo_lifetime is not None and before >= facts.vtxo_lifetime:
        problems.append(f"refresh_before_blocks {before} is not below the VTXO lifetime ({facts.vtxo_lifetime})")
    if settings.refresh_check_interval_s > MAX_CHECK_INTERVAL_S:
        problems.append(f"refresh_check_interval_s {settings.refresh_check_interval_s:g} is over an hour")
    if problems:
        return Check(id="refresh_margins", title=title, ok=False, detail="; ".join(problems))
    return Check(
        id="refresh_margins",
        title=title,
        ok=True,
        detail=f"refresh {before} blocks before expiry, delegated {margin} blocks before it",
    )


def _exits_fundable(settings: Settings, facts: BarkdFacts) -> Check:
    title = "exits fundable on-chain"
    if facts.error:
        return Check(id="exits_fundable", title=title, ok=False, detail=f"cannot ask barkd: {facts.error}")
    if not facts.onchain_wallet:
        return Check(
            id="exits_fundable",
            title=title,
            ok=False,
            detail="barkd has no on-chain wallet: an emergency exit could not pay its fees",
        )
    if facts.exit_fee is None:
        why = facts.exit_fee_error or "this barkd has no exit fee estimate (GET /exits/fee)"
        return Check(id="exits_fundable", title=title, ok=False, detail=why)
    if not facts.exit_fee.fundable:
        return Check(
            id="exits_fundable",
            title=title,
            ok=False,
            detail=f"exiting every VTXO costs {facts.exit_fee.total_fee_sats} sats on-chain, more than the "
            "on-chain wallet's confirmed balance: fund it",
        )
    return Check(
        id="exits_fundable",
        title=title,
        ok=True,
        detail=f"exiting every VTXO costs {facts.exit_fee.total_fee_sats} sats, covered",
    )


def _free_mode(settings: Settings, facts: BarkdFacts) -> Check:
    title = "free mode off"
    if settings.payment_mode == "free":
        return Check(id="free_mode", title=title, ok=False, detail="ARKGATE_PAYMENT_MODE=free gives calls away")
    return Check(id="free_mode", title=title, ok=True, detail="payments are taken through barkd")


CHECKLIST: tuple[Rule, ...] = (
    _network,
    _barkd_version,
    _public_url,
    _admin_token,
    _l402_key,
    _backups,
    _refresh_margins,
    _exits_fundable,
    _free_mode,
)


async def diagnose(settings: Settings, *, barkd_factory: Callable[[], BarkdClient] | None = None) -> list[Check]:
    """Run the whole checklist; barkd is asked once (nothing is asked in free mode)."""
    facts = BarkdFacts(error="free payment mode: no barkd configured")
    if settings.payment_mode == "barkd":
        barkd = (barkd_factory or (lambda: _client(settings)))()
        try:
            facts = await gather(barkd)
        finally:
            await barkd.aclose()
    return [rule(settings, facts) for rule in CHECKLIST]


def _client(settings: Settings) -> BarkdClient:
    return BarkdClient(settings.barkd_url, settings.barkd_token_value(), timeout_s=settings.barkd_timeout_s)
