"""The register object and its one write path.

Every change goes through `Register.transaction()`: it opens `BEGIN IMMEDIATE`
(a deferred BEGIN would fail with SQLITE_BUSY instead of waiting when the
chain's last hash is read and then written), makes the change, appends the
audit events and commits, or rolls everything back.
"""

from __future__ import annotations

import re
from functools import lru_cache
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipolicy_cli import dates
from pipolicy_cli.errors import NewerRegister, StorageError
from pipolicy_cli.register import audit, migrations
from pipolicy_cli.register.connection import connect, storage_problem

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not an SQL identifier: {name!r}")
    return name


@lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(_identifier(column) for column in columns)
    return f"INSERT INTO {_identifier(table)} ({names}) VALUES ({', '.join('?' * len(columns))})"


class Transaction:
    """One atomic change and its audit events."""

    def __init__(self, conn: sqlite3.Connection, actor: str, command: str):
        self.conn = conn
        self.actor = actor
        self.command = command
        self._events: list[tuple[int, str, str]] = []
        self._key = audit.audit_key()
        self._alg = audit.KEYED if self._key else audit.PLAIN

    def __enter__(self) -> "Transaction":
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot start a write: {storage_problem(exc)}") from None
        try:
            current = audit.head(self.conn)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):  # anything but a register the first migration has yet to make
                self.conn.execute("ROLLBACK")
                raise
            current = audit.Head(0, audit.GENESIS)
        except BaseException:  # a damaged file: __exit__ will not run, so the write lock goes here
            self.conn.execute("ROLLBACK")
            raise
        self._seq, self._hash = current.count, current.hash
        self.at = dates.now_text()  # one atomic change happens at one time
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.conn.execute("ROLLBACK")
            return
        try:
            self.conn.executemany("INSERT INTO audit_events (seq, event, hash) VALUES (?, ?, ?)", self._events)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def execute(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params if isinstance(params, Mapping) else tuple(params))

    def record(
        self,
        action: str,
        object_kind: str,
        key: int | None = None,
        fields: Iterable[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit event. `detail` holds counts and codes, never personal values."""
        text = audit.event_text(action, self.actor, self._alg, self.at, self.command, fields, key, object_kind, detail)
        self._seq += 1
        self._hash = audit.chain_hash(self._hash, self._seq, text, self._key)
        self._events.append((self._seq, text, self._hash))

    def insert(self, table: str, row: dict[str, Any], *, detail: dict[str, Any] | None = None) -> int:
        key = self.conn.execute(_insert_sql(table, tuple(row)), tuple(row.values())).lastrowid
        self.record("insert", table, key, row.keys(), detail)
        return key

    def update(self, table: str, key: int, changes: dict[str, Any], *, key_column: str = "id") -> None:
        if not changes:
            return
        assignments = ", ".join(f"{_identifier(column)} = ?" for column in changes)
        sql = f"UPDATE {_identifier(table)} SET {assignments} WHERE {_identifier(key_column)} = ?"
        self.conn.execute(sql, (*changes.values(), key))
        self.record("update", table, key, changes.keys())

    def delete(self, table: str, key: int, *, key_column: str = "id") -> None:
        self.conn.execute(f"DELETE FROM {_identifier(table)} WHERE {_identifier(key_column)} = ?", (key,))
        self.record("delete", table, key)


class Register:
    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: Path) -> "Register":
        """Open an existing register at the current schema version."""
        register = cls(path, connect(path))
        try:
            done = migrations.applied(register.conn)
            if not done:
                raise StorageError(f"{path} is not a pipolicy register: run `pipolicy init --db {path}`")
            register._refuse_newer(done)
            if migrations.pending(done):
                raise StorageError(f"register at {path} is from an older pipolicy: run `pipolicy init` to migrate it")
        except BaseException:  # a damaged file fails here too
            register.close()
            raise
        return register

    @classmethod
    def create_or_migrate(cls, path: Path, actor: str) -> tuple["Register", list[str]]:
        """Create the register, or bring an older one up to date. Returns the migrations applied."""
        register = cls(path, connect(path, create=True))
        try:
            done = migrations.applied(register.conn)
            register._refuse_newer(done)
            if not done and register.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1"
            ).fetchone():
                raise StorageError(f"{path} is an SQLite database but not a pipolicy register; choose another path")
            applied = []
            for name, step in migrations.pending(done):
                with register.transaction(actor, "init") as tx:
                    step(register.conn)
                    tx.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, dates.now_text()))
                    tx.record("migrate", "migrations", fields=["name"], detail={"migration": name})
                applied.append(name)
        except BaseException:
            register.close()
            raise
        return register, applied

    def _refuse_newer(self, done: list[str]) -> None:
        newer = migrations.unknown(done)
        if newer:
            raise NewerRegister(
                f"register at {self.path} was written by a newer pipolicy (schema {newer[-1]}); upgrade pipolicy"
            )

    def transaction(self, actor: str, command: str) -> Transaction:
        return Transaction(self.conn, actor, command)

    def schema_version(self) -> str:
        done = migrations.applied(self.conn)
        return done[-1] if done else ""

    def settings(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM config"))

    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def tables(self) -> list[str]:
        """User tables, without SQLite's own and full-text shadow tables."""
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        names = [row[0] for row in rows]
        shadow_suffixes = ("_data", "_idx", "_content", "_docsize", "_config")
        fts = {name for name in names if self._is_virtual(name)}
        return [
            name
            for name in names
            if not any(name == f"{base}{suffix}" for base in fts for suffix in shadow_suffixes)
        ]

    def _is_virtual(self, name: str) -> bool:
        row = self.conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()
        return bool(row and row[0] and row[0].upper().startswith("CREATE VIRTUAL TABLE"))

    def counts(self) -> dict[str, int]:
        return {name: self.conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in self.tables()}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Register":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
