"""Erasure that leaves nothing in the register's files (policy 5.2-5.3; PIPL Art. 47).

One transaction removes the person's row, inventory items and consents, and
cuts the person's link from the records a legal floor still keeps (access
events, requests), which stay de-identified and restricted to storage. A
tombstone keeps HMAC-SHA256 of the person's identifiers under the key held
outside the register; it is also appended to a journal beside the key file,
so a register restored by any means can be cleaned again (`replay`).

`secure_delete` overwrites what the transaction frees; the old pages still sit
in the WAL until a checkpoint, so after the commit the WAL is checkpointed
with TRUNCATE. A reader that blocks it leaves the erasure "scrub pending":
later commands retry, and `status --check` reports it. The tombstone reaches
the journal after the commit, so an erasure killed in between is pending too,
and the retry writes the missing line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from pipolicy_cli import dates, keyfile, paths, requests
from pipolicy_cli.errors import InvalidInput, StorageError
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import busy_timeout

IDENTIFIERS = ("user_id", "phone", "email", "id_number")
SCRUB_WAIT_MS = 2_000


def _key(register: Register) -> bytes:
    stored = register.setting("key-file")
    return keyfile.load(Path(stored) if stored else None)


def journal_path(register: Register) -> Path | None:
    stored = register.setting("key-file")
    return Path(stored + ".tombstones") if stored else None


def fingerprints(key: bytes, user: dict[str, Any]) -> dict[str, str]:
    """HMACs of the person's identifiers: enough to recognise them again, not to recover them."""
    return {
        field: hmac.new(key, f"{field}:{user[field]}".encode("utf-8"), hashlib.sha256).hexdigest()
        for field in IDENTIFIERS if user.get(field)
    }


def plan(register: Register, user: dict[str, Any]) -> list[dict[str, Any]]:
    """What an erasure removes and what it keeps de-identified, per table, with the reason."""
    def count(sql: str) -> int:
        return register.conn.execute(sql, (user["id"],)).fetchone()[0]

    return [
        {"table": "users", "rows": 1, "effect": "deleted", "why": "the person's record"},
        {"table": "data_items", "rows": count("SELECT count(*) FROM data_items WHERE user_key = ?"), "effect": "deleted",
         "why": "inventory items and any values the register keeps"},
        {"table": "consents", "rows": count("SELECT count(*) FROM consents WHERE user_key = ?"), "effect": "deleted",
         "why": "consent events"},
        {"table": "breach_users", "rows": count("SELECT count(*) FROM breach_users WHERE user_key = ?"),
         "effect": "kept de-identified", "why": "an incident's count of people affected stays; the link to the person goes"},
        {"table": "notifications", "rows": count("SELECT count(*) FROM notifications WHERE user_key = ?"),
         "effect": "deleted", "why": "the incident notices sent to the person"},
        *({"table": table, "rows": count(f"SELECT count(*) FROM {table} WHERE user_key = ?"),
           "effect": "kept de-identified, restricted", "why": _kept_because(register, table)}
          for table in ("access_log", "shares", "transfers", "disclosures", "requests")),
    ]


def _kept_because(register: Register, table: str) -> str:
    """Why a record outlives the person: the profile's floor for its table, with its source, if there is one."""
    from pipolicy_cli import retention

    floor = retention.floor_for(register, "table", table)
    kept = f"kept at least {floor['keep']} ({floor['source']})" if floor else "kept as the record of what was done"
    return f"{kept}; the link to the person" + (", and any requester's name, go" if table == "requests" else " goes")


def erase(register: Register, user: dict[str, Any], actor: str, *, request_id: int | None = None,
          command: str = "erase", override: str | None = None) -> dict[str, Any]:
    """Erase the person. Systems still working on the person's requests must finish first (or `override`, a reason)."""
    from pipolicy_cli import tasks

    key = _key(register)
    request = requests.show(register, request_id) if request_id is not None else None
    if request is not None:
        if request["user_id"] != user["user_id"]:
            raise InvalidInput(f"--request: request {request_id} is not this person's")
        if request["kind"] not in requests.NEEDS_ERASURE or request["status"] != "verified":
            raise InvalidInput(f"--request: request {request_id} must be a verified deletion or cancellation request")
    their_requests = [number for (number,) in register.conn.execute("SELECT id FROM requests WHERE user_key = ?", (user["id"],))]
    tasks.ensure_closed(register, their_requests, override)
    counts = {row["table"]: row["rows"] for row in plan(register, user)}
    prints = fingerprints(key, user)
    with register.transaction(actor, command) as tx:
        erasure_id = tx.insert("erasures", {"erased_at": tx.at, "request_id": request_id, "identifiers": json.dumps(prints),
                                            "scrub_pending": 1})
        tx.execute("UPDATE access_log SET restricted_at = ? WHERE user_key = ?", (tx.at, user["id"]))
        for table in ("shares", "transfers", "disclosures"):  # records of providing data: a 3-year floor
            tx.execute(f"UPDATE {table} SET restricted_at = ? WHERE user_key = ?", (tx.at, user["id"]))
        tx.execute("UPDATE requests SET restricted_at = ?, requester = NULL, relation = NULL WHERE user_key = ?",
                   (tx.at, user["id"]))
        if request is not None:
            tx.update("requests", request_id, {"status": "completed", "closed_at": tx.at, "closed_by": actor,
                                               "reason": "the person was erased"})
        for their_request in their_requests:
            tasks.close(tx, their_request, override)
        # Deleting the row cascades to inventory items and consents and clears the link elsewhere.
        tx.delete("users", user["id"])
        tx.record("erase", "users", user["id"], detail={"erasure": erasure_id, **{f"{t}_rows": n for t, n in counts.items()}})
    _journal(register, erasure_id, prints)
    scrubbed = scrub(register)
    return {"erasure": erasure_id, "erased_at": dates.now_text(), "rows": counts, "scrub": "done" if scrubbed else "pending",
            "backups_holding": backups_holding(register, erasure_id), "request": request_id}


def _journal(register: Register, erasure_id: int, prints: dict[str, str]) -> None:
    path = journal_path(register)
    if path is None:
        return
    fd = paths.open_private(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"erasure": erasure_id, "identifiers": prints}) + "\n")


def finish_pending(register: Register) -> bool:
    """Finish erasures a reader or a kill interrupted after their commit: journal and scrub. True when done."""
    _journal_missing(register)
    return scrub(register)


def _journal_missing(register: Register) -> None:
    """A command killed between the erasure's commit and its journal line left the erasure pending:
    write the tombstones the journal lacks (a reader-blocked scrub has its line already)."""
    path = journal_path(register)
    pending = register.conn.execute("SELECT id, identifiers FROM erasures WHERE scrub_pending = 1").fetchall()
    if path is None or not pending:
        return
    written = set()
    if path.exists():
        written = {frozenset(json.loads(line)["identifiers"].items())
                   for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    for erasure_id, identifiers in pending:
        prints = json.loads(identifiers)
        if frozenset(prints.items()) not in written:
            _journal(register, erasure_id, prints)


def scrub(register: Register) -> bool:
    """Checkpoint the WAL into the file and truncate it; clear the pending marks when it worked."""
    conn = register.conn
    # Only the erasures committed before the checkpoint are scrubbed by it: another process may commit one after.
    pending = [key for (key,) in conn.execute("SELECT id FROM erasures WHERE scrub_pending = 1")]
    if not _checkpoint(conn):
        return False
    if pending:
        with register.transaction("pipolicy", "scrub") as tx:
            tx.execute(f"UPDATE erasures SET scrub_pending = 0, scrubbed_at = ? WHERE id IN ({', '.join('?' * len(pending))})",
                       (tx.at, *pending))
            tx.record("scrub", "erasures", detail={"erasures": pending})
        return _checkpoint(conn)
    return True


def _checkpoint(conn) -> bool:
    """A TRUNCATE checkpoint waits until every reader has left. With the register's 60 s busy timeout a lingering
    reader (a report, a BI tool) held the erase, and then every later command's retry, a full minute each before
    leaving the scrub pending all the same: wait briefly, and let the next command try again."""
    with busy_timeout(conn, SCRUB_WAIT_MS):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def pending(register: Register) -> int:
    return register.conn.execute("SELECT count(*) FROM erasures WHERE scrub_pending = 1").fetchone()[0]


def backups_holding(register: Register, erasure_id: int | None = None) -> int:
    """Live backups made before the erasure (or, with no id, erasures some live backup still holds)."""
    if erasure_id is not None:
        return register.conn.execute(
            """SELECT count(*) FROM backups b, erasures e
               WHERE e.id = ? AND b.deleted_at IS NULL AND b.created_at < e.erased_at""", (erasure_id,)
        ).fetchone()[0]
    return register.conn.execute(
        """SELECT count(*) FROM erasures e WHERE EXISTS (
               SELECT 1 FROM backups b WHERE b.deleted_at IS NULL AND b.created_at < e.erased_at)"""
    ).fetchone()[0]


def tombstones(register: Register) -> list[dict[str, str]]:
    """Every tombstone the register and the journal beside the key know of."""
    found = [json.loads(row[0]) for row in register.conn.execute("SELECT identifiers FROM erasures")]
    path = journal_path(register)
    if path is not None and path.exists():
        with path.open("rb") as journal:
            for number, line in enumerate(journal, 1):
                if not line.strip():
                    continue
                try:
                    prints = json.loads(line)["identifiers"]
                    if not isinstance(prints, dict):
                        raise TypeError
                except (ValueError, KeyError, TypeError):
                    raise StorageError(f"tombstone journal {path}: line {number} is damaged (a write cut short by a full "
                                       "disk?); repair or remove that line") from None
                found.append(prints)
    return found


def replay(register: Register, actor: str, *, dry_run: bool = False, extra: list[dict[str, str]] = ()) -> list[int]:
    """Erase again everyone a tombstone names (a register restored from a backup). Returns their keys.

    `extra`: tombstones from elsewhere, such as the register a restore replaced.
    """
    key = _key(register)
    known = {(field, digest) for prints in [*tombstones(register), *extra] for field, digest in prints.items()}
    if not known:
        return []
    from pipolicy_cli import users

    hits = []
    for row in users.query(register):
        if any((field, digest) in known for field, digest in fingerprints(key, row).items()):
            hits.append(row)
    if not dry_run:
        for row in hits:
            erase(register, row, actor, command="backup replay")
    return [row["id"] for row in hits]
