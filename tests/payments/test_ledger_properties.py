"""Property test: any interleaving of credits, replays, charges, settlements and sweeps keeps the ledger exact.

A sub-key with a total and a daily cap charges too (issue 17): its counters never pass
either cap, and every refund (any settlement, any sweep) gives back exactly what it restores
to the balance, so the key's spend always equals its calls' debits less their refunds.

It runs the one charge implementation on every path it has: SQLite with group commit on and
off, and PostgreSQL / MariaDB when their URLs are set. Ark credits vary the wallet id
(including barkd reporting none, which once fell back to ``"wallet"``) and the movement id for
the same VTXOs: a VTXO is credited at most once whatever they say.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from arkgate.db import migrate
from arkgate.db.engine import Database, utcnow
from arkgate.errors import IdempotencyConflict, InvalidTokenError, KeyLimitError, PaymentRequiredError
from arkgate.payments import subkeys
from arkgate.payments.ledger import ArkEntry, Charge, Credit, Ledger, hash_token
from tests.databases import backends, scratch_database

WALLET_IDS = ("wallet", "fp-real-1", "fp-real-2")
KEY_CAP_SATS, KEY_DAILY_CAP_SATS = 700, 500  # "wallet": the old fallback when barkd had no fingerprint


class LedgerMachine(RuleBasedStateMachine):
    url: ClassVar[str] = ""
    group_commit: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.database = Database(self.url)
        self.ledger = Ledger(self.database, session_ttl_s=3600, instance_id="one", group_commit=self.group_commit)
        # A second gateway instance on the same database, sweeping too.
        self.other_database = Database(self.url)
        self.other = Ledger(self.other_database, session_ttl_s=3600, instance_id="two", group_commit=False)
        self.nonce = secrets.token_hex(6)  # examples share a server database: keep their keys apart
        self.token_hash = hash_token(f"ak_{self.nonce}")
        self.address = f"tark1{self.nonce}"
        self.session_id = self.run(
            self.ledger.open_session(token_hash=self.token_hash, requested_sats=0, ark_address=self.address)
        )
        self.expected = 0
        self.credited_keys: set[str] = set()
        self.credited_vtxos: set[int] = set()
        self.charges: list[Charge] = []
        self.open_calls: set[str] = set()
        self.refunded: dict[str, int] = {}
        self.idem_keys: set[str] = set()  # claimed and not released
        self.key_of: dict[str, str] = {}  # call id -> its Idempotency-Key
        # The session's sub-key: what it has spent (debits less refunds) by our own count.
        self.sub_token_hash = hash_token(f"ak_sub_{self.nonce}")
        limits = subkeys.NewKey(
            label="prop", cap_sats=KEY_CAP_SATS, daily_cap_sats=KEY_DAILY_CAP_SATS, allowed=None, expires_at=None
        )
        self.sub_key_id = self.run(
            subkeys.create_key(self.database, self.session_id, self.sub_token_hash, limits)
        ).key_id
        self.sub_spent = 0
        self.sub_revoked = False
        self.sub_calls: set[str] = set()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    # --- credits ---------------------------------------------------------------------------
    @rule(key=st.integers(0, 5), amount=st.integers(1, 1000))
    def credit_invoice(self, key: int, amount: int) -> None:
        payment_key = f"ln:{self.nonce}:{key}"
        result = self.run(
            self.ledger.credit_lightning(
                Credit(rail="lightning", payment_key=payment_key, amount_sats=amount), session_id=self.session_id
            )
        )
        assert result.credited == (payment_key not in self.credited_keys)
        if result.credited:
            self.credited_keys.add(payment_key)
            self.expected += amount

    @rule(
        wallet_id=st.sampled_from(WALLET_IDS),
        movement=st.integers(0, 5),
        amount=st.integers(1, 1000),
        vtxos=st.sets(st.integers(0, 8), max_size=3),
    )
    def credit_ark(self, wallet_id: str, movement: int, amount: int, vtxos: set[int]) -> None:
        results = self.run(
            self.ledger.credit_ark_movement(
                wallet_id=wallet_id,
                movement_id=movement,
                entries=[ArkEntry(address=self.address, amount_sats=amount)],
                vtxo_ids=[f"{self.nonce}{v:058x}:0" for v in sorted(vtxos)],
            )
        )
        key = f"ark:{wallet_id}:{movement}:{self.address}"
        should_credit = not (vtxos & self.credited_vtxos) and key not in self.credited_keys
        assert [r.credited for r in results] == ([True] if should_credit else [])
        if should_credit:
            self.credited_keys.add(key)
            self.credited_vtxos |= vtxos
            self.expected += amount

    # --- calls -------------------------------------------------------------------------------
    @rule(price=st.integers(0, 400), idem=st.one_of(st.none(), st.integers(0, 3)))
    def charge(self, price: int, idem: int | None) -> None:
        idempotency = None if idem is None else (f"key-{idem}", "hash")
        try:
            charge = self.run(self.ledger.charge(self.token_hash, "e", price, idempotency=idempotency))
        except IdempotencyConflict:
            assert idem is not None and f"key-{idem}" in self.idem_keys
            return
        except PaymentRequiredError:
            assert price > self.expected
            return
        assert price <= self.expected
        assert idem is None or f"key-{idem}" not in self.idem_keys
        if idem is not None:
            self.idem_keys.add(f"key-{idem}")
            self.key_of[charge.call_id] = f"key-{idem}"
        self.expected -= price
        self.charges.append(charge)
        self.open_calls.add(charge.call_id)

    @rule(price=st.integers(0, 400), idem=st.one_of(st.none(), st.integers(0, 3)))
    def charge_by_sub_key(self, price: int, idem: int | None) -> None:
        """The sub-key charges only within both caps and the session's balance; a refusal writes nothing."""
        idempotency = None if idem is None else (f"key-{idem}", "hash")
        scoped = f"sub:key-{idem}"
        try:
            charge = self.run(self.ledger.charge(self.sub_token_hash, "e", price, idempotency=idempotency))
        except IdempotencyConflict:
            assert scoped in self.idem_keys
            return
        except InvalidTokenError:
            assert self.sub_revoked
            return
        except KeyLimitError:
            assert self.sub_spent + price > min(KEY_CAP_SATS, KEY_DAILY_CAP_SATS) or price > self.expected
            return
        assert not self.sub_revoked and price <= self.expected
        assert self.sub_spent + price <= min(KEY_CAP_SATS, KEY_DAILY_CAP_SATS)
        assert charge.key_id == self.sub_key_id
        if idem is not None:
            assert scoped not in self.idem_keys
            self.idem_keys.add(scoped)
            self.key_of[charge.call_id] = scoped
        self.expected -= price
        self.sub_spent += price
        self.sub_calls.add(charge.call_id)
        self.charges.append(charge)
        self.open_calls.add(charge.call_id)

    @rule()
    def revoke_sub_key(self) -> None:
        self.run(subkeys.revoke_key(self.database, self.session_id, self.sub_key_id))
        self.sub_revoked = True

    def _refunded(self, call_id: str, amount: int) -> None:
        self.expected += amount
        self.refunded[call_id] = amount
        if call_id in self.sub_calls:
            self.sub_spent -= amount

    @precondition(lambda self: self.charges)
    @rule(data=st.data(), release=st.booleans())
    def settle(self, data: st.DataObject, release: bool) -> None:
        """Any caller may try to refund any call (even a settled one) any amount: only the first counts."""
        charge = data.draw(st.sampled_from(self.charges))
        amount = data.draw(st.integers(0, 2 * charge.amount_sats + 1))
        self.run(self.ledger.refund(charge, amount, reason="test", release_idempotency=release))
        if charge.call_id in self.open_calls:
            self.open_calls.discard(charge.call_id)
            self._refunded(charge.call_id, min(amount, charge.amount_sats))
            if release and charge.call_id in self.key_of:
                self.idem_keys.discard(self.key_of[charge.call_id])

    @rule(which=st.sampled_from(["one", "two"]), past_deadline=st.booleans())
    def sweep(self, which: str, past_deadline: bool) -> None:
        """A restart of instance one refunds its calls; any instance refunds calls past their deadline."""
        ledger = self.ledger if which == "one" else self.other
        now = utcnow().replace(year=utcnow().year + 1) if past_deadline else None
        settled = self.run(ledger.sweep_interrupted(include_own=True, now=now))
        mine = {s.call_id for s in settled if s.session_id == self.session_id}
        if which == "one" or past_deadline:
            assert mine == self.open_calls
            for charge in self.charges:
                if charge.call_id in mine:
                    self._refunded(charge.call_id, charge.amount_sats)
                    if charge.call_id in self.key_of:  # a retry after a crash runs again
                        self.idem_keys.discard(self.key_of[charge.call_id])
            self.open_calls.clear()
        else:
            assert mine == set()

    @invariant()
    def balance_is_the_ledger_sum_and_never_negative(self) -> None:
        sums = self.run(self.ledger.ledger_sums())
        balance, total = sums[self.session_id]
        assert balance == total == self.expected >= 0
        assert all(bal == tot and bal >= 0 for bal, tot in sums.values())

    @invariant()
    def no_call_gets_back_more_than_its_debit(self) -> None:
        receipts = self.run(self.ledger.receipts_of(self.session_id, limit=1000))
        for receipt in receipts:
            assert 0 <= receipt.refunded_sats <= receipt.charged_sats
            assert receipt.refunded_sats == self.refunded.get(receipt.call_id, 0)
            assert receipt.is_in_flight == (receipt.call_id in self.open_calls)

    @invariant()
    def the_sub_key_never_passes_its_caps_and_refunds_restore_it(self) -> None:
        key = self.run(subkeys.key_of(self.database, self.session_id, self.sub_key_id))
        assert key is not None
        assert key.limits.spent_sats == self.sub_spent <= KEY_CAP_SATS
        assert key.spent_today_sats(utcnow()) == self.sub_spent <= KEY_DAILY_CAP_SATS
        receipts = self.run(self.ledger.receipts_of(self.session_id, limit=1000, key_id=self.sub_key_id))
        assert {r.call_id for r in receipts} == self.sub_calls
        assert sum(r.cost_sats for r in receipts) == self.sub_spent

    def teardown(self) -> None:
        self.ledger.close()
        self.run(self.database.dispose())
        self.run(self.other_database.dispose())
        self.loop.close()


@contextlib.contextmanager
def migrated_database(backend: str, sqlite_path: str) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    scratch = scratch_database(backend, sqlite_path)
    url = loop.run_until_complete(scratch.__aenter__())
    try:
        database = Database(url)
        loop.run_until_complete(migrate.upgrade(database))
        loop.run_until_complete(database.dispose())
        yield url
    finally:
        loop.run_until_complete(scratch.__aexit__(None, None, None))
        loop.close()


def charge_paths() -> list[Any]:
    """SQLite with and without group commit, then the servers (skipped when their URL is unset)."""
    params = []
    for param in backends():
        backend = param.values[0]
        if backend == "sqlite":
            params.append(pytest.param("sqlite", True, id="sqlite-group-commit"))
            params.append(pytest.param("sqlite", False, id="sqlite-one-by-one"))
        else:
            params.append(pytest.param(backend, False, id=backend, marks=param.marks))
    return params


@pytest.mark.parametrize(("backend", "group_commit"), charge_paths())
def test_the_ledger_stays_exact_under_any_sequence(backend: str, group_commit: bool, tmp_path: Any) -> None:
    with migrated_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        machine = type("Machine", (LedgerMachine,), {"url": url, "group_commit": group_commit})
        run_state_machine_as_test(
            machine, settings=hypothesis_settings(max_examples=25, stateful_step_count=20, deadline=None)
        )
