"""`user import`: validate the whole file first, then write it in atomic batches.

1. Every record is parsed and validated into a spool; rows that repeat a
   user_id, phone, e-mail or ID number of an earlier row are errors.
2. The spool is checked against the register with SQL: a known user_id with the
   same values is unchanged (so a re-import changes nothing), with other values
   an error unless `--update`; a phone, e-mail or ID number of another user is
   an error.
3. Any error and no `--skip-invalid`: nothing is written. Otherwise new users
   are copied in batches, each one transaction with one audit event naming its
   key range, and corrections are applied one audited update per user. A
   killed import resumes by running it again: what was written is unchanged.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from pipolicy_cli import parallel, readers, settings, validate
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size
from pipolicy_cli.spool import Spool
from pipolicy_cli.users import UNIQUE, today

COLUMNS = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact",
           "status", "created_at", "cancelled_at")
CORRECTABLE = validate.USER_FIELDS[1:]
IMPORT_CACHE_KIB = 32 * 1024
PARALLEL_FROM_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves


@dataclass
class ImportResult:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {key: getattr(self, key) for key in ("rows", "inserted", "updated", "unchanged", "invalid", "written")}


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
    if jobs is None:
        jobs = 1 if path.stat().st_size < PARALLEL_FROM_BYTES else parallel.default_jobs()
    result = ImportResult()
    conn = register.conn
    # A million inserted rows would fill the register's 256 MB delete cache;
    # an import reads little back, so a smaller cache keeps memory flat.
    with cache_size(conn, IMPORT_CACHE_KIB), Spool() as spool:
        _stage(spool, register, path, fmt, result, jobs)
        spool.conn.close()  # from here on the register's connection reads the spool
        spool.attach(conn)
        try:
            _compare(conn, result, apply_updates)
            result.problems = [
                f"row {number}: {field}: {reason}"
                for number, field, reason in conn.execute(
                    "SELECT row_no, field, reason FROM spool.problems ORDER BY row_no, rowid LIMIT ?", (max_problems,)
                )
            ]
            if result.invalid and not skip_invalid:
                return result
            _insert(register, actor, result, batch_size)
            _correct(register, actor, result, batch_size)
        finally:
            Spool.detach(conn)
    return result


def _stage(spool: Spool, register: Register, path: Path, fmt: str, result: ImportResult, jobs: int) -> None:
    conn = spool.conn
    columns = ", ".join(COLUMNS)
    conn.execute(f"CREATE TABLE staged (row_no INTEGER PRIMARY KEY, {columns}, action TEXT, target INTEGER)")
    conn.execute("CREATE TABLE problems (row_no INTEGER, field TEXT, reason TEXT)")
    context = (today(register), settings.local_zone(register))
    insert = f"INSERT INTO staged (row_no, {columns}) VALUES (?, {', '.join('?' * len(COLUMNS))})"
    problem = "INSERT INTO problems VALUES (?, ?, ?)"
    conn.execute("BEGIN")
    records = ((number, record, context) for number, record in readers.records(path, fmt))
    for number, row, problems in parallel.map_chunks(_check_rows, records, jobs=jobs):
        result.rows += 1
        if problems:
            conn.executemany(problem, [(number, field, reason) for field, reason in problems])
        else:
            conn.execute(insert, (number, *row))
    # Indexes built after the load cost a fraction of indexes kept up during it.
    for column in UNIQUE:
        conn.execute(f"CREATE INDEX staged_{column} ON staged({column})")
        conn.execute(
            f"""INSERT INTO problems
                SELECT row_no, '{column}', 'repeats row ' || first FROM (
                    SELECT row_no, min(row_no) OVER (PARTITION BY {column}) AS first
                    FROM staged WHERE {column} IS NOT NULL)
                WHERE row_no != first"""
        )
    conn.execute("COMMIT")


def _check_rows(chunk: list) -> list[tuple[int, tuple | None, list[tuple[str, str]]]]:
    """(row number, values in COLUMNS order, problems) for each record; runs in workers too."""
    checked = []
    for number, record, (on, zone) in chunk:
        if isinstance(record, readers.RowProblem):
            checked.append((number, None, [(record.field, record.reason)]))
            continue
        try:
            values = validate.user(record, on, zone)
        except validate.UserErrors as exc:
            checked.append((number, None, [(error.field, error.reason) for error in exc.errors]))
            continue
        checked.append((number, tuple(values.get(column) for column in COLUMNS), []))
    return checked


def _compare(conn: sqlite3.Connection, result: ImportResult, apply_updates: bool) -> None:
    """Mark each staged row insert, same, update or invalid, against the register."""
    with_values = " AND ".join(f"(s.{c} IS NULL OR s.{c} = u.{c})" for c in CORRECTABLE)
    conn.execute("BEGIN")
    try:
        for column in UNIQUE[1:]:
            conn.execute(
                f"""INSERT INTO spool.problems
                    SELECT s.row_no, '{column}', 'already used by another user'
                    FROM spool.staged s JOIN main.users u ON u.{column} = s.{column}
                    WHERE u.user_id != s.user_id"""
            )
        conn.execute(
            f"""UPDATE spool.staged AS s SET target = u.id,
                    action = CASE WHEN {with_values} THEN 'same' ELSE 'update' END
                FROM main.users u WHERE u.user_id = s.user_id"""
        )
        conn.execute("UPDATE spool.staged SET action = 'insert' WHERE action IS NULL")
        if not apply_updates:
            conn.execute(
                """INSERT INTO spool.problems
                   SELECT row_no, 'user_id', 'exists with other values (--update corrects it)'
                   FROM spool.staged WHERE action = 'update'"""
            )
        conn.execute("UPDATE spool.staged SET action = 'invalid' WHERE row_no IN (SELECT row_no FROM spool.problems)")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result.invalid = conn.execute("SELECT count(DISTINCT row_no) FROM spool.problems").fetchone()[0]
    result.unchanged = conn.execute("SELECT count(*) FROM spool.staged WHERE action = 'same'").fetchone()[0]


def _batches(conn: sqlite3.Connection, action: str, size: int):
    """(first row, last row, count) of successive batches of staged rows with this action."""
    last = 0
    while True:
        first, final, count = conn.execute(
            """SELECT min(row_no), max(row_no), count(*) FROM (
                   SELECT row_no FROM spool.staged WHERE action = ? AND row_no > ? ORDER BY row_no LIMIT ?)""",
            (action, last, size),
        ).fetchone()
        if not count:
            return
        yield first, final, count
        last = final


def _insert(register: Register, actor: str, result: ImportResult, batch_size: int) -> None:
    conn = register.conn
    columns = ", ".join(COLUMNS)
    for first, final, count in _batches(conn, "insert", batch_size):
        with register.transaction(actor, "user import") as tx:
            first_key = (conn.execute("SELECT max(id) FROM main.users").fetchone()[0] or 0) + 1
            conn.execute(
                f"""INSERT INTO main.users ({columns})
                    SELECT user_id, name, gender, birth_date, address, phone, email, id_number, contact,
                           coalesce(status, 'active'), coalesce(created_at, ?), cancelled_at
                    FROM spool.staged WHERE action = 'insert' AND row_no BETWEEN ? AND ? ORDER BY row_no""",
                (tx.at, first, final),
            )
            # One event per batch: the keys are consecutive, the fields those of an import.
            tx.record("import", "users", fields=COLUMNS, detail={"inserted": count, "keys": [first_key, first_key + count - 1]})
        result.inserted += count
        result.written = True


def _correct(register: Register, actor: str, result: ImportResult, batch_size: int) -> None:
    """Corrections of known users: one audited update per user, naming the fields changed."""
    conn = register.conn
    for first, final, _ in _batches(conn, "update", min(batch_size, 1000)):
        with register.transaction(actor, "user import") as tx:
            rows = conn.execute(
                f"""SELECT s.target, {', '.join('s.' + c for c in CORRECTABLE)}, {', '.join('u.' + c for c in CORRECTABLE)}
                    FROM spool.staged s JOIN main.users u ON u.id = s.target
                    WHERE s.action = 'update' AND s.row_no BETWEEN ? AND ?""",
                (first, final),
            ).fetchall()
            width = len(CORRECTABLE)
            for target, *pair in rows:
                new, old = pair[:width], pair[width:]
                changes = {c: n for c, n, o in zip(CORRECTABLE, new, old) if n is not None and n != o}
                if changes:
                    tx.update("users", target, {**changes, "updated_at": tx.at})
                    result.updated += 1
        result.written = True
