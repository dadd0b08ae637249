"""Errors arkgate raises, each knowing its HTTP status and whether a charge is refunded.

    ArkgateError                      500 internal_error
    ├── InputError                    400 invalid_input
    │   └── TargetRefusedError        400 target_refused     (outbound guard)
    ├── InvalidTokenError             401 invalid_token
    ├── PaymentRequiredError          402 payment_required
    │   └── InsufficientBalanceError  402 insufficient_balance
    ├── KeyLimitError                 402 key_limit_reached  (a sub-key's cap, or its session's balance)
    ├── ForbiddenError                403 forbidden          (a sub-key asking for what only its session may do)
    ├── NotFoundError                 404 not_found
    │   └── DomainNotFoundError       404 domain_not_found   (DNS: NXDOMAIN)
    ├── ConflictError                 409 conflict
    │   └── IdempotencyConflict       409 idempotency_conflict (the key is claimed by another request)
    ├── RateLimitedError              429 rate_limited
    ├── UpstreamError                 502 upstream_error
    ├── WalletUnavailableError        503 wallet_unavailable (barkd unreachable)
    ├── EndpointUnavailableError      503 endpoint_unavailable (backend not configured; checked before any charge)
    └── UpstreamTimeoutError          504 upstream_timeout

One exception handler renders all of them in ArkAPI's envelope
(``success: false``, ``error``, ``code`` = status, ``error_code``, ``cost_sats: 0``).
Every error refunds a charged call: a caller only pays for a result.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ArkgateError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InputError(ArkgateError):
    status = 400
    code = "invalid_input"


class TargetRefusedError(InputError):
    code = "target_refused"


class InvalidTokenError(ArkgateError):
    status = 401
    code = "invalid_token"


class PaymentRequiredError(ArkgateError):
    status = 402
    code = "payment_required"


class InsufficientBalanceError(PaymentRequiredError):
    code = "insufficient_balance"


class KeyLimitError(ArkgateError):
    """A sub-key may not spend this much: not a payment challenge, since a sub-key cannot top up."""

    status = 402
    code = "key_limit_reached"


class ForbiddenError(ArkgateError):
    status = 403
    code = "forbidden"


class NotFoundError(ArkgateError):
    status = 404
    code = "not_found"


class ConflictError(ArkgateError):
    status = 409
    code = "conflict"


class IdempotencyConflict(ConflictError):
    """Another request with the same Idempotency-Key claimed it first (the ledger's unique key says so)."""

    code = "idempotency_conflict"


class RateLimitedError(ArkgateError):
    status = 429
    code = "rate_limited"


class UpstreamError(ArkgateError):
    status = 502
    code = "upstream_error"


class WalletUnavailableError(ArkgateError):
    status = 503
    code = "wallet_unavailable"


class UpstreamTimeoutError(ArkgateError):
    status = 504
    code = "upstream_timeout"


class EndpointUnavailableError(ArkgateError):
    """The endpoint cannot work on this gateway (its backend is not configured); nothing is charged."""

    status = 503
    code = "endpoint_unavailable"


class DomainNotFoundError(NotFoundError):
    """The DNS says the name does not exist (NXDOMAIN); the call costs nothing."""

    code = "domain_not_found"
