"""`user import`: the whole file validated first, then written in atomic batches.

On top of `staging`: rows that repeat a user_id, phone, e-mail or ID number of
an earlier row are errors; a known user_id with the same values is unchanged
(so a re-import changes nothing), with other values an error unless
`--update`, which applies them as one audited correction per user; a phone,
e-mail or ID number of another user is an error. New users are copied in
batches, each with one audit event naming its key range.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipolicy_cli import settings, validate
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size
from pipolicy_cli.staging import IMPORT_CACHE_KIB, ImportResult, Staging, checked_records, jobs_for
from pipolicy_cli.users import UNIQUE, today

COLUMNS = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact",
           "status", "created_at", "cancelled_at")
CORRECTABLE = validate.USER_FIELDS[1:]


def import_users(
    register: Register,
    path: Path,
    fmt: str,
    actor: str,
    *,
    skip_invalid: bool = False,
    apply_updates: bool = False,
    batch_size: int = 10_000,
    max_problems: int = 1000,
    jobs: int | None = None,
) -> ImportResult:
    """`jobs`: validating processes; None picks one for small files, the free cores for large ones."""
    result = ImportResult()
    conn = register.conn
    context = (today(register), settings.local_zone(register))
    with cache_size(conn, IMPORT_CACHE_KIB), Staging(COLUMNS) as staging:
        staging.load(checked_records(path, fmt, check_user, context, jobs_for(path, jobs),
                                     fields=validate.IMPORT_FIELDS), result)
        staging.flag_repeats(*UNIQUE)
        with staging.attached(conn):
            _compare(conn, result, apply_updates, max_problems)
            if result.invalid and not skip_invalid:
                return result
            _insert(register, actor, result, batch_size)
            _correct(register, actor, result, batch_size)
    return result


def check_user(record: dict, context: tuple) -> tuple[tuple | None, list[tuple[str, str]]]:
    """Validate one record with (today, zone); runs in worker processes too."""
    on, zone = context
    try:
        values = validate.user(record, on, zone)
    except validate.UserErrors as exc:
        return None, [(error.field, error.reason) for error in exc.errors]
    return tuple(values.get(column) for column in COLUMNS), []


# A staged row s with the values of the stored user u (a value not given is not a change).
SAME_VALUES = " AND ".join(f"(s.{c} IS NULL OR s.{c} = u.{c})" for c in CORRECTABLE)


def _compare(conn: sqlite3.Connection, result: ImportResult, apply_updates: bool, max_problems: int) -> None:
    """Mark each staged row insert, same, update or invalid, against the register."""
    conn.execute("BEGIN")
    for column in UNIQUE[1:]:
        conn.execute(
            f"""INSERT INTO spool.problems
                SELECT s.row_no, '{column}', 'already used by another user'
                FROM spool.staged s JOIN main.users u ON u.{column} = s.{column}
                WHERE u.user_id != s.user_id"""
        )
    conn.execute(
        f"""UPDATE spool.staged AS s SET target = u.id,
                outcome = CASE WHEN {SAME_VALUES} THEN 'same' ELSE 'update' END
            FROM main.users u WHERE u.user_id = s.user_id"""
    )
    conn.execute("UPDATE spool.staged SET outcome = 'insert' WHERE outcome IS NULL")
    if not apply_updates:
        conn.execute(
            """INSERT INTO spool.problems
               SELECT row_no, 'user_id', 'exists with other values (--update corrects it)'
               FROM spool.staged WHERE outcome = 'update'"""
        )
    Staging.finish_checks(conn, result, max_problems)
    conn.execute("COMMIT")
    result.unchanged = conn.execute("SELECT count(*) FROM spool.staged WHERE outcome = 'same'").fetchone()[0]


def _insert(register: Register, actor: str, result: ImportResult, batch_size: int) -> None:
    conn = register.conn
    columns = ", ".join(COLUMNS)
    for first, final, _ in Staging.batches(conn, "insert", batch_size):
        with register.transaction(actor, "user import") as tx:
            # Another process may have stored some of these people since the checks (a retried job running
            # alongside): with the same values they are unchanged, as the checks would have found them.
            same = conn.execute(
                f"""UPDATE spool.staged AS s SET outcome = 'same', target = u.id FROM main.users u
                    WHERE s.outcome = 'insert' AND s.row_no BETWEEN ? AND ? AND u.user_id = s.user_id
                    AND {SAME_VALUES}""",
                (first, final),
            ).rowcount
            first_key = (conn.execute("SELECT max(id) FROM main.users").fetchone()[0] or 0) + 1
            inserted = conn.execute(
                f"""INSERT INTO main.users ({columns})
                    SELECT user_id, name, gender, birth_date, address, phone, email, id_number, contact,
                           coalesce(status, 'active'), coalesce(created_at, ?), cancelled_at
                    FROM spool.staged WHERE outcome = 'insert' AND row_no BETWEEN ? AND ? ORDER BY row_no""",
                (tx.at, first, final),
            ).rowcount
            if inserted:
                # One event per batch: the keys are consecutive, the fields those of an import.
                tx.record("import", "users", fields=COLUMNS,
                          detail={"inserted": inserted, "keys": [first_key, first_key + inserted - 1]})
        result.inserted += inserted
        result.unchanged += same
        result.written = result.written or bool(inserted)


def _correct(register: Register, actor: str, result: ImportResult, batch_size: int) -> None:
    """Corrections of known users: one audited update per user, naming the fields changed."""
    conn = register.conn
    width = len(CORRECTABLE)
    for first, final, _ in Staging.batches(conn, "update", min(batch_size, 1000)):
        with register.transaction(actor, "user import") as tx:
            rows = conn.execute(
                f"""SELECT s.target, {', '.join('s.' + c for c in CORRECTABLE)}, {', '.join('u.' + c for c in CORRECTABLE)}
                    FROM spool.staged s JOIN main.users u ON u.id = s.target
                    WHERE s.outcome = 'update' AND s.row_no BETWEEN ? AND ?""",
                (first, final),
            ).fetchall()
            for target, *pair in rows:
                new, old = pair[:width], pair[width:]
                changes = {c: n for c, n, o in zip(CORRECTABLE, new, old) if n is not None and n != o}
                if changes:
                    tx.update("users", target, {**changes, "updated_at": tx.at})
                    result.updated += 1
        result.written = True
