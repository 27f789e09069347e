"""Rights requests (policy 5; PIPL Art. 44-50): open -> verified -> completed or rejected.

Each step is timestamped, attributable and audited. A rejection needs its
reason (PIPL Art. 50). The due date comes from the profile (`deadlines`); one
extension, with a reason, where the profile allows it, before the first due
date passes.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Iterator

from pipolicy_cli import dates, deadlines, fields, settings
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register, Transaction

KINDS = ("access", "copy", "portability", "correction", "deletion", "withdrawal", "cancellation", "explanation")
OPEN = ("open", "verified")
COLUMNS = ("id", "user_id", "kind", "ground", "status", "received_at", "via", "for_deceased", "requester", "relation",
           "due_on", "acknowledge_by", "extended_due_on", "extension_reason", "verified_at", "verified_by",
           "verify_method", "closed_at", "closed_by", "reason", "created_at")
# Completing these erases the person (`pipolicy_cli.erasure`).
NEEDS_ERASURE = ("deletion", "cancellation")


def grounds(register: Register) -> dict[str, str]:
    """Deletion grounds: the policy's (5.2) and the profile's law's (PIPL Art. 47), code -> source."""
    found = {g["code"]: f"policy {g['clause']}" for g in settings.policy_catalog(register)["deletion_grounds"]}
    from pipolicy_cli import catalog

    for ground in catalog.load_profile(settings.jurisdiction(register)).get("deletion_grounds", []):
        found.setdefault(ground["code"], ground["source"])
    return found


def open_request(register: Register, user: dict[str, Any], kind: str, actor: str, *, ground: str | None = None,
                 received: str | None = None, via: str | None = None, for_deceased: bool = False,
                 requester: str | None = None, relation: str | None = None, tx: Transaction | None = None) -> dict[str, Any]:
    if kind not in KINDS:
        raise InvalidInput(f"--kind: must be one of {', '.join(KINDS)}")
    known = grounds(register)
    if kind == "deletion" and not ground:
        raise InvalidInput(f"--ground: a deletion request needs its ground ({', '.join(known)})")
    if ground is not None and ground not in known:
        raise InvalidInput(f"--ground: must be one of {', '.join(known)}")
    if for_deceased and not (requester and relation):
        raise InvalidInput("--for-deceased: needs --requester and --relation (PIPL Art. 49: a close relative)")
    zone = settings.local_zone(register)
    moment = dates.parse_time(received, zone, "--received") if received else dates.now()
    if moment > dates.now():
        raise InvalidInput("--received: in the future")
    plan = deadlines.due(settings.jurisdiction(register), moment.astimezone(zone).date())
    row = {
        "user_key": user["id"], "kind": kind, "ground": ground, "status": "open", "received_at": dates.to_text(moment),
        "via": fields.option_text("via", via), "for_deceased": int(for_deceased), "requester": fields.option_text("requester", requester),
        "relation": fields.option_text("relation", relation), "due_on": plan.due_on.isoformat(),
        "acknowledge_by": plan.acknowledge_by.isoformat() if plan.acknowledge_by else None,
    }
    row = {key: value for key, value in row.items() if value is not None}

    def insert(tx: Transaction) -> int:
        return tx.insert("requests", {**row, "created_at": tx.at})

    if tx is not None:
        key = insert(tx)
    else:
        with register.transaction(actor, "request open") as own:
            key = insert(own)
    return {**show(register, key), "calendar_note": plan.note, "deadline_rule": plan.rule}


def show(register: Register, key: int) -> dict[str, Any]:
    for row in query(register, key=key):
        return row
    raise NotFound(f"request: no request {key}")


def query(register: Register, *, key: int | None = None, user_key: int | None = None, status: str | None = None,
          kind: str | None = None, overdue: bool = False, due_within: int | None = None,
          limit: int | None = None) -> Iterator[dict[str, Any]]:
    clauses, params = [], []
    for clause, value in (("r.id = ?", key), ("r.user_key = ?", user_key), ("r.status = ?", status), ("r.kind = ?", kind)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    today = _today(register)
    if overdue or due_within is not None:
        clauses.append("r.status IN ('open', 'verified')")
        limit_day = today if overdue else date.fromordinal(today.toordinal() + due_within)
        clauses.append("coalesce(r.extended_due_on, r.due_on) " + ("< ?" if overdue else "<= ?"))
        params.append(limit_day.isoformat())
    sql = f"SELECT {', '.join('u.user_id' if c == 'user_id' else 'r.' + c for c in COLUMNS)} FROM requests r LEFT JOIN users u ON u.id = r.user_key"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY r.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for values in register.conn.execute(sql, params):
        row = dict(zip(COLUMNS, values))
        row["for_deceased"] = bool(row["for_deceased"])
        due_on = date.fromisoformat(row["extended_due_on"] or row["due_on"])
        row["days_left"] = (due_on - today).days if row["status"] in OPEN else None
        row["overdue"] = row["status"] in OPEN and due_on < today
        yield row


def _today(register: Register) -> date:
    return dates.now().astimezone(settings.local_zone(register)).date()


def _step(register: Register, key: int, actor: str, command: str, allowed_from: tuple[str, ...], changes: dict[str, Any],
          then=None) -> dict[str, Any]:
    """Move a request on; `then(tx, request)` does the rest of the step in the same transaction."""
    with register.transaction(actor, command) as tx:
        row = tx.execute("SELECT status FROM requests WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(f"request: no request {key}")
        if row[0] not in allowed_from:
            raise InvalidInput(f"request {key}: is {row[0]}; {command.split()[-1]} needs it {' or '.join(allowed_from)}")
        tx.update("requests", key, {k: (tx.at if v is _NOW else v) for k, v in changes.items()})
        if then is not None:
            then(tx, show(register, key))
    return show(register, key)


_NOW = object()


def verify(register: Register, key: int, method: str, actor: str) -> dict[str, Any]:
    """Who checked the requester's identity, and how."""
    method = fields.option_text("--method", method)
    if not method:
        raise InvalidInput("--method: say how the identity was checked")
    from pipolicy_cli import tasks, users

    def fan_out(tx: Transaction, request: dict[str, Any]) -> None:
        if request["user_id"] is not None:
            tasks.fan_out(tx, request, users.find(register, request["user_id"]))

    return _step(register, key, actor, "request verify", ("open",),
                 {"status": "verified", "verified_at": _NOW, "verified_by": actor, "verify_method": method}, then=fan_out)


def extend(register: Register, key: int, reason: str, actor: str) -> dict[str, Any]:
    reason = fields.option_text("--reason", reason)
    if not reason:
        raise InvalidInput("--reason: an extension needs its reason")
    current = show(register, key)
    if current["extended_due_on"]:
        raise InvalidInput(f"request {key}: already extended once")
    later = deadlines.extended(settings.jurisdiction(register), date.fromisoformat(current["due_on"]))
    if later is None:
        raise InvalidInput(f"request {key}: the {settings.jurisdiction(register)} profile allows no extension")
    if _today(register) > date.fromisoformat(current["due_on"]):
        raise InvalidInput(f"request {key}: the extension had to be made before {current['due_on']}")
    return _step(register, key, actor, "request extend", OPEN,
                 {"extended_due_on": later.isoformat(), "extension_reason": reason})


def complete(register: Register, key: int, actor: str, note: str | None = None, *, override: str | None = None,
             tx: Transaction | None = None) -> dict[str, Any]:
    """Close a verified request once every system has done its task (or an officer overrides, with the reason).

    A deletion or cancellation request erases the person.
    """
    from pipolicy_cli import tasks

    current = show(register, key)
    if current["status"] != "verified":
        raise InvalidInput(f"request {key}: is {current['status']}; complete needs it verified")
    tasks.ensure_closed(register, [key], override)
    if current["kind"] in NEEDS_ERASURE and tx is None:
        if current["user_id"] is None:
            raise InvalidInput(f"request {key}: the person is already erased")
        from pipolicy_cli import erasure, users

        erasure.erase(register, users.find(register, current["user_id"]), actor, request_id=key, command="request complete",
                      override=override)
        return show(register, key)
    changes = {"status": "completed", "closed_at": _NOW, "closed_by": actor, "reason": fields.option_text("--note", note)}
    changes = {k: v for k, v in changes.items() if v is not None}

    def close_tasks(tx: Transaction, request: dict[str, Any]) -> None:
        tasks.close(tx, key, override)

    if tx is not None:
        tx.update("requests", key, {k: (tx.at if v is _NOW else v) for k, v in changes.items()})
        close_tasks(tx, current)
        return {**current, "status": "completed"}
    return _step(register, key, actor, "request complete", ("verified",), changes, then=close_tasks)


def reject(register: Register, key: int, reason: str, actor: str) -> dict[str, Any]:
    """A refusal must give its reasons (PIPL Art. 50)."""
    reason = fields.option_text("--reason", reason)
    if not reason:
        raise InvalidInput("--reason: a rejection must give its reasons (PIPL Art. 50)")
    from pipolicy_cli import tasks

    return _step(register, key, actor, "request reject", OPEN,
                 {"status": "rejected", "closed_at": _NOW, "closed_by": actor, "reason": reason},
                 then=lambda tx, request: tasks.close(tx, key))


def overdue_attention(register: Register) -> list[str]:
    count = sum(1 for _ in query(register, overdue=True))
    return [f"{count} requests are overdue"] if count else []
