"""SQLite persistence: JSON documents per table, so a restart keeps the wallet.

Every entity (VTXO, movement, receive, exit, round, ...) is one JSON document keyed by its id.
The domain layer in ``wallet.py`` owns their shape; this module only stores them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

# Tables keyed by text ids keep an insertion counter ``seq`` for stable "oldest first" order.
_TEXT_TABLES = ("vtxos", "receives", "exits", "sends", "utxos", "onchain_txs", "boards", "payees")
# Tables whose ids are SQLite AUTOINCREMENT: strictly increasing, never reused (like barkd).
_INT_TABLES = ("movements", "rounds", "mailbox")

_SCHEMA_STATEMENTS = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    "CREATE TABLE IF NOT EXISTS keys (idx INTEGER PRIMARY KEY, address TEXT UNIQUE NOT NULL,"
    " pubkey TEXT UNIQUE NOT NULL, purpose TEXT NOT NULL);",
    "CREATE TABLE IF NOT EXISTS onchain_addresses (idx INTEGER PRIMARY KEY, address TEXT UNIQUE NOT NULL);",
    *(
        f"CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);"
        for t in _TEXT_TABLES
    ),
    *(
        f"CREATE TABLE IF NOT EXISTS {t} (id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);"
        for t in _INT_TABLES
    ),
)
_SCHEMA = "\n".join(_SCHEMA_STATEMENTS)

# Tables wiped when the wallet is deleted; ``meta`` keeps world state such as the chain tip.
WALLET_TABLES = ("keys", "onchain_addresses", *_TEXT_TABLES, *_INT_TABLES)


class Store:
    """A thin document store over one SQLite file (WAL mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; nested uses join the outer transaction."""
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._conn.execute("COMMIT")

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    # -- documents ---------------------------------------------------------------------------
    def get(self, table: str, doc_id: str | int) -> Doc | None:
        row = self._conn.execute(f"SELECT data FROM {table} WHERE id = ?", (doc_id,)).fetchone()  # noqa: S608
        return None if row is None else json.loads(row[0])

    def put(self, table: str, doc_id: str, doc: Doc) -> None:
        """Insert or replace a text-keyed document, keeping its original insertion order."""
        self._conn.execute(
            f"INSERT INTO {table} (id, seq, data) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), ?)"  # noqa: S608
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            (doc_id, json.dumps(doc)),
        )

    def insert(self, table: str, doc: Doc) -> int:
        """Insert into an AUTOINCREMENT table; the new id is also written into ``doc['id']``."""
        cursor = self._conn.execute(f"INSERT INTO {table} (data) VALUES ('{{}}')")  # noqa: S608
        new_id = int(cursor.lastrowid or 0)
        doc["id"] = new_id
        self.update(table, new_id, doc)
        return new_id

    def update(self, table: str, doc_id: int, doc: Doc) -> None:
        self._conn.execute(f"UPDATE {table} SET data = ? WHERE id = ?", (json.dumps(doc), doc_id))  # noqa: S608

    def delete(self, table: str, doc_id: str | int) -> None:
        self._conn.execute(f"DELETE FROM {table} WHERE id = ?", (doc_id,))  # noqa: S608

    def all(self, table: str, *, newest_first: bool = False) -> list[Doc]:
        order_col = "id" if table in _INT_TABLES else "seq"
        direction = "DESC" if newest_first else "ASC"
        rows = self._conn.execute(f"SELECT data FROM {table} ORDER BY {order_col} {direction}")  # noqa: S608
        return [json.loads(r[0]) for r in rows]

    def count(self, table: str) -> int:
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    # -- keys ----------------------------------------------------------------------------------
    def add_key(self, idx: int, address: str, pubkey: str, purpose: str) -> None:
        self._conn.execute(
            "INSERT INTO keys (idx, address, pubkey, purpose) VALUES (?, ?, ?, ?)",
            (idx, address, pubkey, purpose),
        )

    def key_by_index(self, idx: int) -> tuple[str, str] | None:
        row = self._conn.execute("SELECT address, pubkey FROM keys WHERE idx = ?", (idx,)).fetchone()
        return None if row is None else (row[0], row[1])

    def key_by_pubkey(self, pubkey: str) -> tuple[int, str] | None:
        row = self._conn.execute("SELECT idx, address FROM keys WHERE pubkey = ?", (pubkey,)).fetchone()
        return None if row is None else (int(row[0]), row[1])

    def add_onchain_address(self, idx: int, address: str) -> None:
        self._conn.execute("INSERT INTO onchain_addresses (idx, address) VALUES (?, ?)", (idx, address))

    def is_own_onchain_address(self, address: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM onchain_addresses WHERE address = ?", (address,)).fetchone()
        return row is not None

    def wipe_wallet(self) -> None:
        """Drop every wallet table (AUTOINCREMENT counters restart, as with a recreated barkd wallet)."""
        for table in WALLET_TABLES:
            self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        # Not executescript(): it would COMMIT the surrounding transaction.
        for statement in _SCHEMA_STATEMENTS:
            self._conn.execute(statement)
