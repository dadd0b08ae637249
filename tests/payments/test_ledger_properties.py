"""Property test: any interleaving of credits, replays, charges and refunds keeps the ledger exact."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from arkgate.db import migrate
from arkgate.db.engine import Database
from arkgate.errors import PaymentRequiredError
from arkgate.payments.ledger import ArkEntry, Credit, Ledger, hash_token


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = tempfile.TemporaryDirectory()
        self.database = Database(f"sqlite:///{Path(self.directory.name) / 'ledger.sqlite3'}")
        self.loop.run_until_complete(migrate.upgrade(self.database))
        self.ledger = Ledger(self.database, session_ttl_s=3600)
        self.session_id = self.run(
            self.ledger.open_session(token_hash=hash_token("ak_x"), requested_sats=0, ark_address="tark1me")
        )
        self.expected = 0
        self.credited: set[str] = set()
        self.charges: list = []

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coroutine)

    @rule(key=st.integers(0, 5), amount=st.integers(1, 1000))
    def credit_invoice(self, key: int, amount: int) -> None:
        payment_key = f"ln:{key}"
        result = self.run(
            self.ledger.credit_lightning(
                Credit(rail="lightning", payment_key=payment_key, amount_sats=amount), session_id=self.session_id
            )
        )
        assert result.credited == (payment_key not in self.credited)
        if result.credited:
            self.credited.add(payment_key)
            self.expected += amount

    @rule(movement=st.integers(0, 5), amount=st.integers(1, 1000), vtxo=st.integers(0, 8))
    def credit_ark(self, movement: int, amount: int, vtxo: int) -> None:
        results = self.run(
            self.ledger.credit_ark_movement(
                wallet_id="w",
                movement_id=movement,
                entries=[ArkEntry(address="tark1me", amount_sats=amount)],
                vtxo_ids=[f"{vtxo:064x}:0"],
            )
        )
        self.expected += sum(r.amount_sats for r in results if r.credited)

    @rule(price=st.integers(0, 400))
    def charge(self, price: int) -> None:
        try:
            charge = self.run(self.ledger.charge(hash_token("ak_x"), "e", price))
        except PaymentRequiredError:
            assert price > self.expected
            return
        assert price <= self.expected
        self.expected -= price
        self.charges.append(charge)

    @precondition(lambda self: self.charges)
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        charge = self.charges.pop(data.draw(st.integers(0, len(self.charges) - 1)))
        amount = data.draw(st.integers(0, charge.amount_sats))
        self.run(self.ledger.refund(charge, amount, reason="test"))
        self.expected += amount

    @invariant()
    def balance_is_the_ledger_sum_and_never_negative(self) -> None:
        sums = self.run(self.ledger.ledger_sums())
        balance, total = sums[self.session_id]
        assert balance == total == self.expected >= 0

    def teardown(self) -> None:
        self.run(self.database.dispose())
        self.loop.close()
        self.directory.cleanup()


LedgerMachine.TestCase.settings = hypothesis_settings(max_examples=40, stateful_step_count=25, deadline=None)
TestLedger = LedgerMachine.TestCase
