"""What is held about whom and where: systems, processors and inventory items (policy 1.1, 1.3; PIPL Art. 21).

An item records that a system holds a field of a category about a person,
where it came from (`provided`, `automatic`, or `third-party:NAME` for data from
affiliates and partners, policy 1.3) and when it was collected. `value` is
kept only where the register itself is the place the data is held.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from pipolicy_cli import dates, fields, masking, settings
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size
from pipolicy_cli.staging import IMPORT_CACHE_KIB, ImportResult, Staging, checked_records, jobs_for

KINDS = ("internal", "processor")
ITEM_FIELDS = ("user_id", "category", "field", "system", "source", "collected_at", "value")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def add_system(register: Register, name: str, kind: str, owner: str | None, country: str | None,
               contract: str | None, actor: str) -> dict[str, Any]:
    name = fields.option_text("name", name, required=True)
    if kind not in KINDS:
        raise InvalidInput(f"--kind: must be {' or '.join(KINDS)}")
    if country is not None and not _COUNTRY.match(country.strip().upper()):
        raise InvalidInput("--country: a two-letter ISO 3166 code, e.g. CN")
    if kind == "processor" and not contract:
        raise InvalidInput("--contract: a processor is entrusted under a contract; name it")
    values = {"name": name, "kind": kind, "owner": fields.option_text("owner", owner), "country": country.strip().upper() if country else None,
              "contract": fields.option_text("contract", contract), "created_at": dates.now_text()}
    with register.transaction(actor, "system add") as tx:
        if tx.execute("SELECT 1 FROM systems WHERE name = ?", (name,)).fetchone():
            raise InvalidInput(f"name: a system named {name!r} is already registered")
        key = tx.insert("systems", {k: v for k, v in values.items() if v is not None})
    return {"id": key, **values}


def systems(register: Register) -> list[dict[str, Any]]:
    cursor = register.conn.execute(
        """SELECT s.id, s.name, s.kind, s.owner, s.country, s.contract, s.created_at,
                  (SELECT count(DISTINCT user_key) FROM data_items d WHERE d.system_key = s.id) AS people
           FROM systems s ORDER BY s.name"""
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def _codes(register: Register) -> frozenset[str]:
    return frozenset(c["code"] for c in settings.policy_catalog(register)["categories"])


def check_item(raw: dict[str, Any], categories: frozenset[str], zone) -> tuple[tuple, list[tuple[str, str]]]:
    """Normalise one inventory item; returns (values in ITEM_FIELDS order, problems).

    A missing `collected_at` stays None: an import keeps the time already
    recorded, and a new item gets the time it is recorded.
    """
    problems: list[tuple[str, str]] = fields.unknown_fields(raw, ITEM_FIELDS)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in ITEM_FIELDS:
            continue
        if value is not None and not isinstance(value, str):
            problems.append((name, "must be text"))
        else:
            out[name] = value.strip() if isinstance(value, str) and value.strip() else None
    for name in ("user_id", "category", "field", "system"):
        if not out.get(name) and not any(p[0] == name for p in problems):
            problems.append((name, "required"))
    if out.get("category") and out["category"] not in categories:
        problems.append(("category", "not a category of the policy (see `pipolicy policy categories`)"))
    if out.get("field") and not _FIELD_NAME.match(out["field"]):
        problems.append(("field", "a name of letters, digits, _ . - (at most 64)"))
    source = out.get("source") or "provided"
    if source not in ("provided", "automatic") and not (source.startswith("third-party:") and len(source) > 12):
        problems.append(("source", "must be provided, automatic or third-party:NAME"))
    out["source"] = source
    if out.get("collected_at"):
        try:
            out["collected_at"] = dates.to_text(dates.parse_time(out["collected_at"], zone, "collected_at"))
        except InvalidInput:
            problems.append(("collected_at", "not a date or time"))
    for name, limit in (("value", 8000), ("system", 100), ("source", 120), ("user_id", 64)):
        if out.get(name) and len(out[name]) > limit:
            problems.append((name, f"longer than {limit} characters"))
    return tuple(out.get(name) for name in ITEM_FIELDS), problems


def add_item(register: Register, raw: dict[str, Any], actor: str) -> dict[str, Any]:
    values, problems = check_item(raw, _codes(register), settings.local_zone(register))
    if problems:
        lines = [f"{name}: {reason}" for name, reason in problems]
        raise InvalidInput(lines[0], lines)
    item = dict(zip(ITEM_FIELDS, values))
    user = register.conn.execute("SELECT id FROM users WHERE user_id = ?", (item["user_id"],)).fetchone()
    if not user:
        raise NotFound("user: no such user")
    system = register.conn.execute("SELECT id FROM systems WHERE name = ?", (item["system"],)).fetchone()
    if not system:
        raise InvalidInput("system: not registered (add it with `pipolicy system add`)")
    item["collected_at"] = item["collected_at"] or dates.now_text()
    row = {"user_key": user[0], "system_key": system[0], "category": item["category"], "field": item["field"],
           "source": item["source"], "collected_at": item["collected_at"], "value": item["value"]}
    with register.transaction(actor, "data add") as tx:
        existing = tx.execute(
            "SELECT id FROM data_items WHERE user_key = ? AND system_key = ? AND category = ? AND field = ?",
            (user[0], system[0], item["category"], item["field"]),
        ).fetchone()
        changes = {"source": row["source"], "collected_at": row["collected_at"], "value": row["value"], "recorded_at": tx.at}
        if existing:
            tx.update("data_items", existing[0], changes)
            key = existing[0]
        else:
            key = tx.insert("data_items", {**row, "recorded_at": tx.at})
    return {"id": key, **{k: v for k, v in item.items() if k != "value"}, "value": masking.text(item["value"])}


def items(register: Register, *, user_key: int | None = None, system: str | None = None, category: str | None = None,
          limit: int | None = None) -> Iterator[dict[str, Any]]:
    clauses, params = [], []
    for clause, value in (("d.user_key = ?", user_key), ("s.name = ?", system), ("d.category = ?", category)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = ("SELECT d.id, u.user_id, d.category, d.field, s.name, s.kind, d.source, d.collected_at, d.value "
           "FROM data_items d JOIN users u ON u.id = d.user_key JOIN systems s ON s.id = d.system_key")
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY d.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for key, user_id, category_, field, name, kind, source, collected_at, value in register.conn.execute(sql, params):
        yield {"id": key, "user_id": user_id, "category": category_, "field": field, "system": name, "system_kind": kind,
               "source": source, "collected_at": collected_at, "value": value}


def _check_imported_item(record: dict[str, Any], context: tuple) -> tuple[tuple, list[tuple[str, str]]]:
    categories, zone = context
    return check_item(record, categories, zone)


def import_items(register: Register, path: Path, fmt: str, actor: str, *, skip_invalid: bool = False,
                 batch_size: int = 10_000, max_problems: int = 1000, jobs: int | None = None) -> ImportResult:
    """Inventory items, validated in full first; a known (person, system, category, field) is updated."""
    result = ImportResult()
    conn = register.conn
    context = (_codes(register), settings.local_zone(register))
    with cache_size(conn, IMPORT_CACHE_KIB), Staging(ITEM_FIELDS) as staging:
        staging.load(checked_records(path, fmt, _check_imported_item, context, jobs_for(path, jobs),
                                     fields=ITEM_FIELDS), result)
        staging.conn.execute("CREATE INDEX staged_item ON staged(user_id, system, category, field)")
        staging.conn.execute(
            """INSERT INTO problems SELECT row_no, 'row', 'repeats row ' || first FROM (
                   SELECT row_no, min(row_no) OVER (PARTITION BY user_id, system, category, field) AS first FROM staged)
               WHERE row_no != first"""
        )
        with staging.attached(conn):
            _compare_items(conn, result, max_problems)
            if result.invalid and not skip_invalid:
                return result
            _write_items(register, actor, result, batch_size)
    return result


def _compare_items(conn: sqlite3.Connection, result: ImportResult, max_problems: int) -> None:
    conn.execute("BEGIN")
    Staging.flag_unknown_users(conn)
    conn.execute(
        """INSERT INTO spool.problems SELECT row_no, 'system', 'not registered (pipolicy system add)' FROM spool.staged s
           WHERE NOT EXISTS (SELECT 1 FROM main.systems y WHERE y.name = s.system)"""
    )
    conn.execute(
        """UPDATE spool.staged AS s SET target = d.id,
               outcome = CASE WHEN d.source = s.source AND (s.collected_at IS NULL OR d.collected_at = s.collected_at)
                                  AND d.value IS s.value
                             THEN 'same' ELSE 'update' END
           FROM main.users u, main.systems y, main.data_items d
           WHERE u.user_id = s.user_id AND y.name = s.system AND d.user_key = u.id AND d.system_key = y.id
             AND d.category = s.category AND d.field = s.field"""
    )
    conn.execute("UPDATE spool.staged SET outcome = 'insert' WHERE outcome IS NULL")
    Staging.finish_checks(conn, result, max_problems)
    conn.execute("COMMIT")
    result.unchanged = conn.execute("SELECT count(*) FROM spool.staged WHERE outcome = 'same'").fetchone()[0]


def _write_items(register: Register, actor: str, result: ImportResult, batch_size: int) -> None:
    conn = register.conn
    for first, final, count in Staging.batches(conn, "insert", batch_size):
        with register.transaction(actor, "data import") as tx:
            first_key = (conn.execute("SELECT max(id) FROM main.data_items").fetchone()[0] or 0) + 1
            conn.execute(
                """INSERT INTO main.data_items (user_key, system_key, category, field, source, collected_at, value, recorded_at)
                   SELECT u.id, y.id, s.category, s.field, s.source, coalesce(s.collected_at, ?), s.value, ?
                   FROM spool.staged s JOIN main.users u ON u.user_id = s.user_id JOIN main.systems y ON y.name = s.system
                   WHERE s.outcome = 'insert' AND s.row_no BETWEEN ? AND ? ORDER BY s.row_no""",
                (tx.at, tx.at, first, final),
            )
            tx.record("import", "data_items", fields=("category", "field", "source", "collected_at", "value"),
                      detail={"inserted": count, "keys": [first_key, first_key + count - 1]})
        result.inserted += count
        result.written = True
    for first, final, count in Staging.batches(conn, "update", batch_size):
        with register.transaction(actor, "data import") as tx:
            rows = conn.execute(
                "SELECT target, source, collected_at, value FROM spool.staged WHERE outcome = 'update' AND row_no BETWEEN ? AND ?",
                (first, final),
            ).fetchall()
            for target, source, collected_at, value in rows:
                changes = {"source": source, "value": value, "recorded_at": tx.at}
                if collected_at:
                    changes["collected_at"] = collected_at
                tx.update("data_items", target, changes)
        result.updated += count
        result.written = True
