"""Carrying a request out to every system that holds the person's data (PIPL Art. 21, 47; policy 5; GDPR Art. 19).

Verifying a deletion, cancellation, correction, copy or portability request
creates one task per system the inventory says holds data of that person,
processors included; the retention sweep gives each system holding data a
category rule reached a task carrying the rule (no person). Each system's own cron job pulls its tasks (marked as
handed out; a pull that was lost is handed out again once its lease runs out)
and reports each one done or failed. The request cannot be completed while a
task is open, unless an officer overrides with a reason.

A task's payload (the identifiers the system needs to find the person and
what it holds of them) exists only while the request is open: closing the
request, or erasing the person, clears it.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from pipolicy_cli import dates, fields
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register, Transaction

ACTIONS = {"deletion": "delete", "cancellation": "delete", "correction": "correct", "copy": "copy", "portability": "port"}
STATES = ("open", "pulled", "done", "failed", "cancelled")
BLOCKING = ("open", "pulled", "failed")
# What a system may be sent to find the person: the register's own values of the fields it holds.
IDENTIFYING = ("name", "phone", "email", "id_number", "address", "birth_date", "gender", "contact")
DEFAULT_LEASE = "12h"  # shorter than a day, so tonight's pull hands out what last night's pull lost
COLUMNS = ("id", "request_id", "request_kind", "user_id", "system", "system_kind", "action", "state", "due_on", "overdue",
           "created_at", "pulled_at", "pulls", "closed_at", "note")

_SELECT = """SELECT t.id, t.request_id, coalesce(r.kind, 'retention'), u.user_id, s.name, s.kind, t.action, t.state,
                    coalesce(r.extended_due_on, r.due_on), t.created_at, t.pulled_at, t.pulls, t.closed_at, t.note, t.payload
             FROM tasks t LEFT JOIN requests r ON r.id = t.request_id JOIN systems s ON s.id = t.system_key
             LEFT JOIN users u ON u.id = r.user_key"""


def fan_out(tx: Transaction, request: dict[str, Any], user: dict[str, Any]) -> list[int]:
    """One task per system holding data of the person, created inside the verifying transaction."""
    action = ACTIONS.get(request["kind"])
    if action is None:
        return []
    held: dict[int, list[tuple[str, str]]] = {}
    for system_key, category, field in tx.execute(
        "SELECT system_key, category, field FROM data_items WHERE user_key = ? ORDER BY system_key, category, field",
        (user["id"],),
    ):
        held.setdefault(system_key, []).append((category, field))
    created = []
    for system_key, items in held.items():
        names = {field for _, field in items}
        payload = {
            "user_id": user["user_id"],
            "identifiers": {name: user[name] for name in IDENTIFYING if name in names and user.get(name)},
            "items": [{"category": category, "field": field} for category, field in items],
        }
        created.append(tx.insert("tasks", {"request_id": request["id"], "system_key": system_key, "action": action,
                                           "state": "open", "payload": json.dumps(payload, ensure_ascii=False),
                                           "created_at": tx.at}))
    return created


def query(register: Register, *, request_id: int | None = None, system: str | None = None, state: str | None = None,
          user_key: int | None = None, overdue: bool = False, limit: int | None = None) -> Iterator[dict[str, Any]]:
    if state is not None and state not in STATES:
        raise InvalidInput(f"--state: must be one of {', '.join(STATES)}")
    clauses, params = [], []
    for clause, value in (("t.request_id = ?", request_id), ("s.name = ?", system), ("t.state = ?", state),
                          ("r.user_key = ?", user_key)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    today = _today(register).isoformat()
    if overdue:
        clauses.append(f"t.state IN {BLOCKING} AND coalesce(r.extended_due_on, r.due_on) < ?")
        params.append(today)
    sql = _SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY t.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for values in register.conn.execute(sql, params):
        row = dict(zip(COLUMNS[:9] + COLUMNS[10:], values[:-1]))
        row["overdue"] = row["state"] in BLOCKING and row["due_on"] is not None and row["due_on"] < today
        yield {column: row[column] for column in COLUMNS}


def _today(register: Register):
    from pipolicy_cli import settings

    return dates.now().astimezone(settings.local_zone(register)).date()


def _system_key(register: Register, name: str) -> int:
    row = register.conn.execute("SELECT id FROM systems WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"--system: no system named {name!r} (see `pipolicy system list`)")
    return row[0]


def pull(register: Register, system: str, actor: str, *, limit: int | None = None, lease: str = DEFAULT_LEASE) -> list[dict[str, Any]]:
    """Hand out a system's open tasks, with their payloads; each hand-out is audited."""
    system_key = _system_key(register, system)
    span = dates.parse_duration(lease, "--lease")
    with register.transaction(actor, "task pull") as tx:
        expired = dates.to_text(dates.now() - span) if span else tx.at
        keys = [key for (key,) in tx.execute(
            """SELECT id FROM tasks WHERE system_key = ? AND (state = 'open' OR (state = 'pulled' AND pulled_at <= ?))
               ORDER BY id LIMIT ?""",
            (system_key, expired, limit or -1),
        )]
        for key in keys:
            tx.execute("UPDATE tasks SET state = 'pulled', pulled_at = ?, pulls = pulls + 1 WHERE id = ?", (tx.at, key))
            tx.record("pull", "tasks", key, fields=("state", "pulled_at", "pulls"), detail={"system": system})
    return [_handed_out(register, key) for key in keys]


def _handed_out(register: Register, key: int) -> dict[str, Any]:
    values = register.conn.execute(_SELECT + " WHERE t.id = ?", (key,)).fetchone()
    payload = json.loads(values[-1]) if values[-1] else {}
    return {"id": values[0], "request_id": values[1], "request_kind": values[2], "action": values[6], "due_on": values[8],
            "user_id": payload.get("user_id"), "identifiers": payload.get("identifiers", {}), "items": payload.get("items", []),
            "retention": payload.get("retention")}


def report(register: Register, outcomes: Iterable[tuple[int, str, str | None]], actor: str) -> list[dict[str, Any]]:
    """Record (task id, 'done' or 'failed', note) outcomes in one transaction; all are checked first.

    Reporting again what is already recorded changes nothing, so a system may resend its confirmations.
    """
    outcomes = list(outcomes)
    problems, results = [], []
    with register.transaction(actor, "task report") as tx:
        for number, (key, outcome, note) in enumerate(outcomes, 1):
            where = f"line {number}: " if len(outcomes) > 1 else ""
            row = tx.execute("SELECT state FROM tasks WHERE id = ?", (key,)).fetchone()
            if row is None:
                if len(outcomes) == 1:
                    raise NotFound(f"task: no task {key}")
                problems.append(f"{where}id: no task {key}")
                continue
            state = row[0]
            if state == outcome:
                results.append({"id": key, "state": state, "changed": False})
                continue
            if state == "cancelled" or (state == "done" and outcome == "failed"):
                problems.append(f"{where}task {key}: is {state}; it cannot become {outcome}")
                continue
            tx.execute("UPDATE tasks SET state = ?, closed_at = ?, note = ? WHERE id = ?",
                       (outcome, tx.at if outcome == "done" else None, note, key))
            tx.record(outcome, "tasks", key, fields=("state", "closed_at", "note"))
            results.append({"id": key, "state": outcome, "changed": True})
        if problems:
            raise InvalidInput(problems[0] if len(problems) == 1 else f"{len(problems)} task reports are invalid; nothing was recorded",
                               problems=problems)
    return results


def blocking(register: Register, request_id: int) -> list[dict[str, Any]]:
    return [row for row in query(register, request_id=request_id) if row["state"] in BLOCKING]


def ensure_closed(register: Register, request_ids: Iterable[int], override: str | None) -> None:
    """Refuse to close requests whose systems have not all confirmed, unless an officer overrides."""
    if override is not None:
        fields.option_text("--override", override, required=True)
        return
    waiting = [row for key in request_ids for row in blocking(register, key)]
    if waiting:
        requests = sorted({row["request_id"] for row in waiting})
        systems = ", ".join(sorted({f"{row['system']} ({row['state']})" for row in waiting}))
        count = f"{len(waiting)} task is" if len(waiting) == 1 else f"{len(waiting)} tasks are"
        raise InvalidInput(f"request {', '.join(map(str, requests))}: {count} not done: {systems}; "
                           "wait for the systems, or --override REASON")


def close(tx: Transaction, request_id: int, override: str | None = None) -> int:
    """Inside the closing transaction: cancel what is still open (override or rejection) and clear every payload."""
    cancelled = tx.execute(
        f"UPDATE tasks SET state = 'cancelled', closed_at = ?, note = ? WHERE request_id = ? AND state IN {BLOCKING}",
        (tx.at, f"cancelled: {override}" if override else "cancelled", request_id),
    ).rowcount
    if cancelled and override is not None:
        tx.execute("UPDATE requests SET tasks_override = ? WHERE id = ?", (override, request_id))
    cleared = tx.execute("UPDATE tasks SET payload = NULL WHERE request_id = ? AND payload IS NOT NULL", (request_id,)).rowcount
    if cancelled or cleared:
        tx.record("close", "tasks", detail={"request": request_id, "cancelled": cancelled, "payloads_cleared": cleared,
                                             **({"override": True} if override else {})})
    return cancelled


def for_person(register: Register, user_key: int) -> Iterator[dict[str, Any]]:
    """A person's tasks, payload included (export)."""
    for values in register.conn.execute(_SELECT + " WHERE r.user_key = ? ORDER BY t.id", (user_key,)):
        yield {"id": values[0], "request_id": values[1], "system": values[4], "action": values[6], "state": values[7],
               "created_at": values[9], "closed_at": values[12], "payload": json.loads(values[-1]) if values[-1] else None}


def overdue_attention(register: Register) -> list[str]:
    count = sum(1 for _ in query(register, overdue=True))
    return [f"{count} task{'s' if count != 1 else ''} at systems past their request's due date"] if count else []

