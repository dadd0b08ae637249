"""A minimal Python client for an arkgate (or ArkAPI-compatible) gateway.

from arkgate.client import ArkgateClient

with ArkgateClient("http://127.0.0.1:8080") as client:
    session = client.create_session(500)          # token + Lightning invoice + Ark address
    print(session["funding"]["lightning_invoice"])
    client.wait_for_funding()                     # polls /v1/balance with backoff
    print(client.call("qr-generate", {"data": "hello"})["data"]["data_uri"])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class ArkgateAPIError(Exception):
    """An error answer from the gateway, with its status and the error envelope."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("error") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status}: {message or body}")


class PaymentRequired(ArkgateAPIError):
    """HTTP 402: ``payment`` holds how to pay (token, invoice, Ark address, amount) when offered."""

    @property
    def payment(self) -> dict[str, Any] | None:
        value = self.body.get("payment") if isinstance(self.body, dict) else None
        return value if isinstance(value, dict) else None


class FundingTimeout(Exception):
    """The session was not funded before the deadline."""


class ArkgateClient:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout_s: float = 90.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = http or httpx.Client(timeout=timeout_s, headers={"User-Agent": "arkgate-client"})
        self._owns_http = http is None
        self._methods: dict[str, str] | None = None

    def __enter__(self) -> ArkgateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- plumbing -------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        all_headers = {**self._headers(), **(headers or {})}
        response = self._http.request(method, f"{self.base_url}{path}", headers=all_headers, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code == 402:
            raise PaymentRequired(response.status_code, body)
        if response.status_code >= 400:
            raise ArkgateAPIError(response.status_code, body)
        return body

    # --- discovery ------------------------------------------------------------------------
    def catalog(self) -> dict[str, Any]:
        return self._request("GET", "/v1/catalog")  # type: ignore[no-any-return]

    def manifest(self) -> dict[str, Any]:
        return self._request("GET", "/.well-known/arkgate.json")  # type: ignore[no-any-return]

    def quote(self, endpoint: str, calls: int = 1) -> dict[str, Any]:
        body = self._request("GET", "/v1/quote", params={"endpoint": endpoint, "calls": calls})
        return body["quotes"][0]  # type: ignore[no-any-return]

    def _method_of(self, endpoint: str) -> str:
        if self._methods is None:
            self._methods = {e["id"]: e.get("method", "POST") for e in self.catalog().get("endpoints", [])}
        return self._methods.get(endpoint, "POST")

    # --- sessions -------------------------------------------------------------------------
    def create_session(self, amount_sats: int) -> dict[str, Any]:
        """Open a session and keep its token for later calls; returns the full answer (with funding)."""
        body = self._request("POST", "/v1/sessions", json={"amount_sats": amount_sats})
        self.token = body["token"]
        return body  # type: ignore[no-any-return]

    def balance(self) -> dict[str, Any]:
        return self._request("GET", "/v1/balance")  # type: ignore[no-any-return]

    def top_up(self, amount_sats: int) -> dict[str, Any]:
        return self._request("POST", "/v1/sessions/topup", json={"amount_sats": amount_sats})  # type: ignore[no-any-return]

    # --- sub-keys ---------------------------------------------------------------------------
    def create_key(
        self,
        *,
        label: str = "",
        cap_sats: int | None = None,
        daily_cap_sats: int | None = None,
        allowed: list[str] | None = None,
        expires_in: int | None = None,
    ) -> dict[str, Any]:
        """A sub-key that spends from this session within the given caps; its ``token`` is shown once.

        Hand the token to another agent: ``ArkgateClient(url, key["token"])``. ``allowed`` names
        endpoint ids or categories; ``expires_in`` is in seconds.
        """
        body = {
            "label": label,
            "cap_sats": cap_sats,
            "daily_cap_sats": daily_cap_sats,
            "allowed": allowed,
            "expires_in": expires_in,
        }
        return self._request("POST", "/v1/sessions/me/keys", json=body)  # type: ignore[no-any-return]

    def list_keys(self) -> list[dict[str, Any]]:
        """The session's sub-keys with what each has spent (never their tokens)."""
        return self._request("GET", "/v1/sessions/me/keys")["keys"]  # type: ignore[no-any-return]

    def key(self, key_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/sessions/me/keys/{key_id}")  # type: ignore[no-any-return]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a sub-key at once: its next call is refused with 401."""
        return self._request("DELETE", f"/v1/sessions/me/keys/{key_id}")  # type: ignore[no-any-return]

    def calls(self, limit: int = 100) -> list[dict[str, Any]]:
        """Receipts of recent calls, newest first, each naming the sub-key that spent it (``key_id``)."""
        return self._request("GET", "/v1/sessions/me/calls", params={"limit": limit})["calls"]  # type: ignore[no-any-return]

    # --- payouts ----------------------------------------------------------------------------
    def withdraw(self, destination: str, amount_sats: int | None = None, *, quote_only: bool = False) -> dict[str, Any]:
        """Pay sats out of the balance (fee included in ``amount_sats``); ``quote_only`` shows the fee only."""
        body: dict[str, Any] = {"destination": destination, "quote_only": quote_only}
        if amount_sats is not None:
            body["amount_sats"] = amount_sats
        return self._request("POST", "/v1/sessions/withdraw", json=body)  # type: ignore[no-any-return]

    def close_session(self, destination: str | None = None) -> dict[str, Any]:
        """Withdraw the whole balance to ``destination`` and close the token."""
        body = {"destination": destination} if destination is not None else {}
        return self._request("POST", "/v1/sessions/close", json=body)  # type: ignore[no-any-return]

    def set_refund_to(self, ark_address: str | None) -> dict[str, Any]:
        """Where the remainder goes automatically when the session expires (None clears it)."""
        return self._request("POST", "/v1/sessions/me/refund-to", json={"refund_to": ark_address})  # type: ignore[no-any-return]

    def wait_for_funding(
        self,
        min_sats: int = 1,
        *,
        timeout_s: float = 900.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        first_delay_s: float = 0.5,
        max_delay_s: float = 5.0,
    ) -> int:
        """Poll the balance (with exponential backoff) until it reaches ``min_sats``; returns it."""
        deadline = time.monotonic() + timeout_s
        delay = first_delay_s
        while True:
            status = self.balance()
            if on_poll is not None:
                on_poll(status)
            if int(status["balance_sats"]) >= min_sats:
                return int(status["balance_sats"])
            if time.monotonic() + delay > deadline:
                raise FundingTimeout(f"the session was not funded within {timeout_s:g} s")
            time.sleep(delay)
            delay = min(max_delay_s, delay * 1.5)

    # --- calls ----------------------------------------------------------------------------
    def call(self, endpoint: str, payload: dict[str, Any] | None = None, *, idempotency_key: str | None = None) -> Any:
        """Call ``/api/<endpoint>``; returns the whole envelope (``data``, ``cost_sats``, ``balance_remaining``)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        if self._method_of(endpoint) == "GET":
            params = {k: _query_value(v) for k, v in (payload or {}).items() if v is not None}
            return self._request("GET", f"/api/{endpoint}", headers=headers, params=params)
        return self._request("POST", f"/api/{endpoint}", headers=headers, json=payload or {})


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
