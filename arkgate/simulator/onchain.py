"""The on-chain wallet (BDK stand-in) and boards: UTXOs, transactions, addresses, fee rates."""

from __future__ import annotations

from typing import Any

from embit import script
from embit.ec import PrivateKey
from embit.networks import NETWORKS

from arkgate.simulator import keys
from arkgate.simulator.core import WalletCore, block_ref, random_txid
from arkgate.simulator.errors import BadRequestError, InternalError
from arkgate.simulator.state import Doc

FEE_RATES = {"fast_sat_per_vb": 5, "regular_sat_per_vb": 3, "slow_sat_per_vb": 1}
TX_VBYTES = 150


def _embit_network(network: str) -> dict[str, Any]:
    params: dict[str, Any] = NETWORKS[
        {"bitcoin": "main", "mainnet": "main", "regtest": "regtest", "testnet": "test"}.get(network, "signet")
    ]
    return params


class OnchainMixin(WalletCore):
    """On-chain funds: claimed exits and offboards to our own addresses land here."""

    def new_onchain_address_raw(self) -> str:
        idx = int(self.store.get_meta("next_onchain_index", 0))
        self.store.set_meta("next_onchain_index", idx + 1)
        key = PrivateKey(keys.onchain_secret(self.seed, idx))
        address = script.p2tr(key.get_public_key()).address(_embit_network(self.config.network))
        self.store.add_onchain_address(idx, address)
        return str(address)

    def new_onchain_address(self) -> str:
        with self.store.transaction():
            self.require_wallet()
            return self.new_onchain_address_raw()

    def validate_bitcoin_address(self, address: str) -> None:
        """400 unless ``address`` is a valid address of the configured network."""
        try:
            spk = script.address_to_scriptpubkey(address)
            expected = spk.address(_embit_network(self.config.network))
        except Exception as exc:
            raise BadRequestError(f"bad request: invalid destination address: {exc}") from exc
        if expected != address:
            raise BadRequestError(f"bad request: invalid destination address: address {address} is for another network")

    def credit_onchain(self, address: str, amount_sat: int, txid: str, *, own: bool) -> None:
        """Record a transaction paying ``amount_sat`` to ``address``; confirms at the next block."""
        if own and amount_sat > 0:
            self.store.put(
                "utxos",
                f"{txid}:0",
                {
                    "outpoint": f"{txid}:0",
                    "amount_sat": amount_sat,
                    "confirmation_height": None,
                    "address": address,
                },
            )
            self._record_tx(txid, amount_sat, fee=None)

    def _record_tx(self, txid: str, change: int, fee: int | None, is_cpfp: bool = False) -> None:
        self.store.put(
            "onchain_txs",
            txid,
            {
                "txid": txid,
                "tx": "02000000" + txid,
                "balance_change_sat": change,
                "is_cpfp": is_cpfp,
                "confirmation": None,
                "onchain_fee_sat": fee,
            },
        )

    def _confirm_onchain(self) -> None:
        """Per block: everything in the (simulated) mempool confirms."""
        height = self.tip
        for utxo in self.store.all("utxos"):
            if utxo["confirmation_height"] is None:
                utxo["confirmation_height"] = height
                self.store.put("utxos", utxo["outpoint"], utxo)
        for tx in self.store.all("onchain_txs"):
            if tx["confirmation"] is None:
                tx["confirmation"] = block_ref(height)
                self.store.put("onchain_txs", tx["txid"], tx)

    def onchain_confirmed_sat(self) -> int:
        return sum(u["amount_sat"] for u in self.store.all("utxos") if u["confirmation_height"] is not None)

    def onchain_balance(self) -> dict[str, int]:
        self.require_wallet()
        utxos = self.store.all("utxos")
        confirmed = sum(u["amount_sat"] for u in utxos if u["confirmation_height"] is not None)
        pending = sum(u["amount_sat"] for u in utxos if u["confirmation_height"] is None)
        return {
            "total_sat": confirmed + pending,
            "trusted_spendable_sat": confirmed,
            "immature_sat": 0,
            "trusted_pending_sat": pending,
            "untrusted_pending_sat": 0,
            "confirmed_sat": confirmed,
        }

    def onchain_utxos(self) -> list[Doc]:
        self.require_wallet()
        return [
            {
                "outpoint": u["outpoint"],
                "amount_sat": u["amount_sat"],
                "confirmation_height": u["confirmation_height"],
            }
            for u in self.store.all("utxos")
        ]

    def onchain_transactions(self) -> list[Doc]:
        self.require_wallet()
        return self.store.all("onchain_txs")

    def _spend_onchain(self, outputs: list[tuple[str, int]], *, drain: bool = False) -> str:
        """Spend confirmed UTXOs to ``outputs``; change returns unconfirmed."""
        utxos = [u for u in self.store.all("utxos") if u["confirmation_height"] is not None]
        available = sum(u["amount_sat"] for u in utxos)
        fee = TX_VBYTES * FEE_RATES["regular_sat_per_vb"]
        for address, _ in outputs:
            self.validate_bitcoin_address(address)
        if drain:
            outputs = [(outputs[0][0], available - fee)]
        needed = sum(a for _, a in outputs) + fee
        if not utxos or needed > available or any(a < 330 for _, a in outputs):
            raise InternalError(
                f"Failed to create transaction: Insufficient funds: {available} sat available of {needed} sat needed"
            )
        txid = random_txid()
        for utxo in utxos:
            self.store.delete("utxos", utxo["outpoint"])
        change = available - needed
        vout = 0
        for address, amount in outputs:
            if self.store.is_own_onchain_address(address):
                self.store.put(
                    "utxos",
                    f"{txid}:{vout}",
                    {
                        "outpoint": f"{txid}:{vout}",
                        "amount_sat": amount,
                        "confirmation_height": None,
                        "address": address,
                    },
                )
                change += amount
            vout += 1
        if change > 0:
            self.store.put(
                "utxos",
                f"{txid}:{vout}",
                {
                    "outpoint": f"{txid}:{vout}",
                    "amount_sat": change,
                    "confirmation_height": None,
                    "address": "change",
                },
            )
        self._record_tx(txid, change - available, fee)
        return txid

    def onchain_send(self, destination: str, amount_sat: int) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            return {"txid": self._spend_onchain([(destination, amount_sat)])}

    def onchain_drain(self, destination: str) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            return {"txid": self._spend_onchain([(destination, 0)], drain=True)}

    def onchain_send_many(self, destinations: list[str]) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            outputs = []
            for item in destinations:
                address, sep, amount = item.rpartition(":")
                if not sep or not amount.isdigit():
                    raise BadRequestError(f"bad request: invalid destination {item!r}, expected <address>:<amount>")
                outputs.append((address, int(amount)))
            if not outputs:
                raise BadRequestError("No destinations provided")
            return {"txid": self._spend_onchain(outputs)}

    def fund_onchain(self, amount_sat: int) -> dict[str, Any]:
        """Control: an outside wallet pays our next on-chain address (confirms on the next block)."""
        with self.store.transaction():
            self.require_wallet()
            address = self.new_onchain_address_raw()
            txid = random_txid()
            self.credit_onchain(address, amount_sat, txid, own=True)
            return {"txid": txid, "address": address, "amount_sat": amount_sat}

    # -- boards ----------------------------------------------------------------------------------
    def board(self, amount_sat: int | None) -> Doc:
        with self.store.transaction():
            self.require_wallet()
            self.require_online("Failed to board")
            available = self.onchain_confirmed_sat() - TX_VBYTES * FEE_RATES["regular_sat_per_vb"]
            amount = available if amount_sat is None else amount_sat
            if amount < 1000:
                raise InternalError(f"Failed to board: amount {amount} sat is below the minimum board amount")
            own = self.new_onchain_address_raw()
            txid = self._spend_onchain([(own, amount)])
            # The board output is not ours on-chain any more: remove the self-payment UTXO.
            for utxo in self.store.all("utxos"):
                if utxo["address"] == own:
                    self.store.delete("utxos", utxo["outpoint"])
            _, _, pubkey = self.derive_key("board")
            movement = self.create_movement(
                name="bark.board", kind="board", status="pending", intended_sat=amount, effective_sat=amount
            )
            vtxo = self.new_vtxo(
                amount_sat=amount,
                user_pubkey=pubkey,
                txid=txid,
                state={"type": "locked", "movement_id": movement["id"]},
            )
            vtxo["from_round"] = True
            self.save_vtxo(vtxo)
            movement["output_vtxos"] = [vtxo["id"]]
            self.store.update("movements", movement["id"], movement)
            board = {
                "funding_tx": {"txid": txid, "tx": "02000000" + txid},
                "vtxos": [vtxo["id"]],
                "amount_sat": amount,
                "movement_id": movement["id"],
                "height": self.tip,
                "done": False,
            }
            self.store.put("boards", txid, board)
            return board_json(board)

    def pending_boards(self) -> list[Doc]:
        self.require_wallet()
        return [board_json(b) for b in self.store.all("boards") if not b["done"]]

    def _advance_boards(self) -> None:
        for board in self.store.all("boards"):
            if board["done"] or self.tip - board["height"] < self.config.required_board_confirmations:
                continue
            board["done"] = True
            self.store.put("boards", board["funding_tx"]["txid"], board)
            for vtxo_id in board["vtxos"]:
                self.set_vtxo_state(vtxo_id, {"type": "spendable"})
            movement = self.get_movement(board["movement_id"])
            if movement is not None:
                self.update_movement(movement, status="successful")


def board_json(board: Doc) -> Doc:
    return {k: board[k] for k in ("funding_tx", "vtxos", "amount_sat", "movement_id")}
