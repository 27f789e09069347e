"""The tamper-evident audit chain.

Each event is stored as its canonical JSON bytes, and its hash covers the
previous hash, its sequence number and those bytes exactly as stored:

    hash(n) = SHA-256(hash(n-1) "\\n" n "\\n" event(n))

(HMAC-SHA-256 under `PIPOLICY_AUDIT_KEY` when that is set). Editing, deleting,
inserting or reordering any event breaks the chain at that event; cutting off
the tail is caught by checking a head recorded elsewhere (`audit head`).
Events name actor, command, object kind, integer key and field names, never a
personal value and never a `user_id`, so erasing a person leaves the chain whole.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from json.encoder import encode_basestring  # the C version where available
import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

GENESIS = "0" * 64
PLAIN = "sha256"
KEYED = "hmac-sha256"
_KEYED_MARK = f'"alg":"{KEYED}"'


def audit_key() -> bytes | None:
    key = os.environ.get("PIPOLICY_AUDIT_KEY")
    return key.encode("utf-8") if key else None


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(event: dict[str, Any]) -> str:
    """Sorted keys, no spaces, UTF-8 as written: the bytes the hash covers."""
    return _ENCODER.encode(event)


def event_text(
    action: str,
    actor: str,
    alg: str,
    at: str,
    command: str,
    fields: Iterable[str],
    key: int | None,
    object_kind: str,
    detail: dict[str, Any] | None = None,
) -> str:
    """`canonical()` of one event, built directly: the write path's hot spot."""
    quote = encode_basestring
    parts = [
        '{"action":', quote(action), ',"actor":', quote(actor), ',"alg":', quote(alg),
        ',"at":', quote(at), ',"command":', quote(command),
    ]
    if detail:
        parts += [',"detail":', _ENCODER.encode(detail)]
    parts += [
        ',"fields":[', ",".join(map(quote, sorted(fields))), '],"key":', "null" if key is None else str(int(key)),
        ',"object":', quote(object_kind), "}",
    ]
    return "".join(parts)


def chain_hash(previous: str, seq: int, event_text: str, key: bytes | None) -> str:
    message = f"{previous}\n{seq}\n{event_text}".encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.digest(key, message, "sha256").hex()


@dataclass
class Head:
    count: int
    hash: str


def head(conn: sqlite3.Connection) -> Head:
    row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else Head(0, GENESIS)


@dataclass
class Verification:
    ok: bool
    count: int
    hash: str
    first_bad: int | None = None
    reason: str | None = None
    anchor_found: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "hash": self.hash,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "anchor_found": self.anchor_found,
        }


def verify(conn: sqlite3.Connection, anchor: str | None = None, key: bytes | None = None) -> Verification:
    """Walk the whole chain in the register; report the first bad sequence number."""
    rows = conn.execute("SELECT seq, event, hash FROM audit_events ORDER BY seq")
    return verify_rows(rows, anchor=anchor, key=key if key is not None else audit_key())


def verify_rows(
    rows: Iterable[tuple[int, str, str]],
    *,
    anchor: str | None = None,
    key: bytes | None = None,
    previous: str = GENESIS,
    expected: int = 1,
) -> Verification:
    """Check (seq, event, hash) rows in order, starting after `previous` at `expected`."""
    keyed_seen = False
    anchor_found = anchor is None or anchor == previous
    sha256 = hashlib.sha256
    for seq, event_text, stored in rows:
        if seq != expected:
            why = f"event {expected} is missing" if seq > expected else f"event {seq} is out of order"
            return _broken(expected, why, previous, expected - 1, anchor_found)
        message = f"{previous}\n{seq}\n{event_text}".encode("utf-8")
        if _KEYED_MARK in event_text:
            if key is None:
                return _broken(seq, "keyed event: set PIPOLICY_AUDIT_KEY to verify", previous, seq - 1, anchor_found)
            keyed_seen = True
            computed = hmac.digest(key, message, "sha256").hex()
        else:
            if keyed_seen:
                return _broken(seq, "unkeyed event after keyed events (downgraded)", previous, seq - 1, anchor_found)
            computed = sha256(message).hexdigest()
        if computed != stored:
            return _broken(seq, "hash mismatch: the event was edited, inserted or moved", previous, seq - 1, anchor_found)
        previous = stored
        expected += 1
        if not anchor_found and stored == anchor:
            anchor_found = True
    count = expected - 1
    if not anchor_found:
        return Verification(False, count, previous, None, "the given head is not in the chain", False)
    return Verification(True, count, previous, anchor_found=None if anchor is None else True)


def _broken(seq: int, reason: str, previous: str, count: int, anchor_found: bool) -> Verification:
    return Verification(False, count, previous, seq, reason, anchor_found)


def events(
    conn: sqlite3.Connection,
    *,
    actor: str | None = None,
    command: str | None = None,
    object_kind: str | None = None,
    object_key: int | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> Iterator[dict[str, Any]]:
    clauses, params = [], []
    for column, value in (("actor", actor), ("command", command), ("object", object_kind), ("object_key", object_key)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since:
        clauses.append("at >= ?")
        params.append(since)
    if until:
        clauses.append("at < ?")
        params.append(until)
    sql = "SELECT seq, event, hash FROM audit_events"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY seq" + (" DESC" if newest_first else "")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    for seq, event_text, digest in conn.execute(sql, params):
        event = json.loads(event_text)
        yield {
            "seq": seq,
            "at": event["at"],
            "actor": event["actor"],
            "command": event["command"],
            "action": event["action"],
            "object": event["object"],
            "key": event.get("key"),
            "fields": event.get("fields", []),
            "detail": event.get("detail"),
            "hash": digest,
        }
