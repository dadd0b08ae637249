"""Money: the barkd adapter, the payment watcher, and the ledger (the only writer of balances)."""
