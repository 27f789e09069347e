"""The people whose data the company holds (policy 1.1.a, 5.1, 5.3; PIPL Art. 46).

Plain functions over the register: they validate, write through the one write
path and return rows. Personal values never reach a message or an audit event.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any, Iterator

from pipolicy_cli import dates, masking, settings, validate
from pipolicy_cli.errors import InvalidInput, NotFound, UsageError
from pipolicy_cli.register import Register

STORED = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact",
          "status", "created_at", "updated_at", "cancelled_at")
SELECT = f"SELECT id, {', '.join(STORED)}, born, sex FROM users"
LOOKUPS = {"user-id": "user_id", "phone": "phone", "email": "email", "id-number": "id_number"}
UNIQUE = ("user_id", "phone", "email", "id_number")


def today(register: Register) -> date:
    return dates.now().astimezone(settings.local_zone(register)).date()


def _row(cursor: sqlite3.Cursor, values: tuple) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, values)}


def _rows(register: Register, sql: str, params: tuple = ()) -> Iterator[dict[str, Any]]:
    cursor = register.conn.execute(sql, params)
    for values in cursor:
        yield _row(cursor, values)


def get(register: Register, key: int) -> dict[str, Any]:
    for row in _rows(register, f"{SELECT} WHERE id = ?", (key,)):
        return row
    raise NotFound("user: no such user")


def find(register: Register, value: str, by: str = "user-id") -> dict[str, Any]:
    """The user with this user_id, phone, e-mail or ID number (normalised first)."""
    if by not in LOOKUPS:
        raise UsageError(f"--by: must be one of {', '.join(LOOKUPS)}")
    column = LOOKUPS[by]
    try:
        if column == "phone":
            value = validate.phone(value)
        elif column == "email":
            value = validate.email(value)
        elif column == "id_number":
            value = validate.id_number(value, today(register)).number
        else:
            value = value.strip()
    except validate.FieldError as exc:
        raise InvalidInput(str(exc)) from None
    for row in _rows(register, f"{SELECT} WHERE {column} = ?", (value,)):
        return row
    raise NotFound(f"user: no user with that {column}")


def _check(raw: dict[str, Any], register: Register) -> dict[str, Any]:
    try:
        return validate.user(raw, today(register), settings.local_zone(register))
    except validate.UserErrors as exc:
        raise InvalidInput(str(exc), [str(error) for error in exc.errors]) from None


def _conflicts(register: Register, values: dict[str, Any], own_key: int | None) -> list[str]:
    problems = []
    for column in UNIQUE:
        if values.get(column) is None:
            continue
        hit = register.conn.execute(f"SELECT id FROM users WHERE {column} = ?", (values[column],)).fetchone()
        if hit and hit[0] != own_key:
            problems.append(f"{column}: already used by another user")
    return problems


def add(register: Register, raw: dict[str, Any], actor: str) -> dict[str, Any]:
    values = _check({key: value for key, value in raw.items() if value is not None}, register)
    values.setdefault("status", "active")
    values.setdefault("created_at", dates.now_text())
    with register.transaction(actor, "user add") as tx:
        problems = _conflicts(register, values, None)
        if problems:
            raise InvalidInput(problems[0], problems)
        key = tx.insert("users", {key: value for key, value in values.items() if value is not None})
    return get(register, key)


def update(register: Register, row: dict[str, Any], changes: dict[str, Any], clear: list[str], actor: str) -> tuple[dict, list[str]]:
    """A correction (policy 5.1, PIPL Art. 46): the audit event names the fields changed."""
    for field in clear:
        if field not in validate.USER_FIELDS or field == "user_id":
            clearable = ", ".join(name for name in validate.USER_FIELDS if name != "user_id")
            raise InvalidInput(f"--clear: not a field that can be cleared ({clearable})")
        if changes.get(field) is not None:
            raise InvalidInput(f"--clear: {field}: also given a new value")
    merged = {field: row[field] for field in validate.USER_FIELDS}
    merged.update({key: value for key, value in changes.items() if value is not None})
    merged.update({field: None for field in clear})
    values = _check(merged, register)
    changed = {field: values.get(field) for field in validate.USER_FIELDS if values.get(field) != row[field]}
    if not changed:
        return row, []
    with register.transaction(actor, "user update") as tx:
        problems = _conflicts(register, values, row["id"])
        if problems:
            raise InvalidInput(problems[0], problems)
        tx.update("users", row["id"], {**changed, "updated_at": tx.at})
    return get(register, row["id"]), sorted(changed)


def cancel(register: Register, row: dict[str, Any], actor: str, at: str | None = None) -> dict[str, Any]:
    """Account cancellation (policy 1.1.a, 5.3): later use of the data is a violation, and a
    deletion request with ground `user-left` is opened (policy 5.2 (4), 5.3)."""
    from pipolicy_cli import requests

    if row["status"] == "cancelled":
        return {**row, "request": None}
    when = dates.to_text(dates.parse_time(at, settings.local_zone(register), "--at")) if at else None
    with register.transaction(actor, "user cancel") as tx:
        tx.update("users", row["id"], {"status": "cancelled", "cancelled_at": when or tx.at, "updated_at": tx.at})
        request = requests.open_request(register, row, "deletion", actor, ground="user-left", received=when, tx=tx)
    return {**get(register, row["id"]), "request": request["id"]}


def age(row: dict[str, Any], on: date) -> int | None:
    if not row.get("born"):
        return None
    born = date.fromisoformat(row["born"])
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def cutoff(on: date, years: int) -> str:
    """People born after this date are younger than `years` on `on`."""
    try:
        return on.replace(year=on.year - years).isoformat()
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28).isoformat()


def query(
    register: Register,
    *,
    status: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
    minors: bool = False,
    age_unknown: bool = False,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    clauses, params = [], []
    if status:
        if status not in validate.STATUSES:
            raise InvalidInput("--status: must be active or cancelled")
        clauses.append("status = ?")
        params.append(status)
    zone = settings.local_zone(register)
    if created_from:
        clauses.append("created_at >= ?")
        params.append(dates.to_text(dates.parse_time(created_from, zone, "--created-from")))
    if created_to:
        clauses.append("created_at < ?")
        params.append(dates.to_text(dates.parse_time(created_to, zone, "--created-to")))
    if minors:
        clauses.append("born > ?")
        params.append(cutoff(today(register), settings.guardian_age(register)[0]))
    if age_unknown:
        clauses.append("born IS NULL")
    sql = SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return _rows(register, sql, tuple(params))


def view(row: dict[str, Any], on: date, *, reveal: bool, full: bool) -> dict[str, Any]:
    """What list and show print: masked unless revealed."""
    shown = {
        "user_id": row["user_id"],
        "name": row["name"],
        "gender": row["sex"],
        "age": age(row, on),
        "phone": row["phone"],
        "email": row["email"],
        "id_number": row["id_number"],
        "status": row["status"],
        "created_at": row["created_at"],
    }
    if full:
        shown.update(
            birth_date=row["born"],
            address=row["address"],
            contact=row["contact"],
            updated_at=row["updated_at"],
            cancelled_at=row["cancelled_at"],
        )
    return shown if reveal else masking.mask_row(shown)


def record_reveal(register: Register, keys: list[int], actor: str, command: str, table: str = "users") -> None:
    """Each unmasked view of a person (or of a `table` row naming someone) is an audit event."""
    if not keys:
        return
    with register.transaction(actor, command) as tx:
        for key in keys:
            tx.record("reveal", table, key)


def stage_list(register: Register, path, table: str) -> None:
    """A file of users (`--users FILE|-`) checked in full into the temporary table `temp.TABLE(row_no, user_id)`;
    a bad row or an unknown id refuses them all. A temporary table keeps a list of a million people out of Python."""
    from pipolicy_cli import readers

    conn = register.conn
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (row_no INTEGER, user_id TEXT)")
    conn.execute(f"DELETE FROM temp.{table}")
    problems = []
    batch = []
    for number, value in readers.user_ids(path):
        if isinstance(value, readers.RowProblem):
            problems.append(f"row {number}: {value.field}: {value.reason}")
        else:
            batch.append((number, value))
        if len(batch) >= 10_000:
            conn.executemany(f"INSERT INTO temp.{table} VALUES (?, ?)", batch)
            batch.clear()
    conn.executemany(f"INSERT INTO temp.{table} VALUES (?, ?)", batch)
    problems += [f"row {number}: user_id: no such user" for (number,) in conn.execute(
        f"SELECT row_no FROM temp.{table} w WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = w.user_id) "
        "ORDER BY row_no LIMIT 1000")]
    if problems:
        raise InvalidInput(problems[0] if len(problems) == 1 else f"{len(problems)} rows are invalid; nothing was changed",
                           problems=problems)
    if not conn.execute(f"SELECT 1 FROM temp.{table} LIMIT 1").fetchone():
        raise InvalidInput("--users: no user ids")
