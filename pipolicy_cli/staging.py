"""Validate-first imports through a private scratch SQLite file.

Every import (users, inventory items, access events, consents) works the same way:

1. Each record is parsed and validated (in worker processes for large files)
   and its normalised row, or its problems, go into the spool: memory stays
   flat however large the input, and the spool lives in a 0700 temp folder
   removed afterwards.
2. The spool is ATTACHed to the register and checked with SQL: repeats
   within the file, unknown users, rows already stored.
3. Any problem and no `--skip-invalid`: nothing is written. Otherwise rows are
   copied into the register in batches, each one transaction with its audit
   event, so other writers wait only briefly and a killed import is finished
   by running it again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from pipolicy_cli import parallel, paths, readers

# (row number, normalised values or None, [(field, reason), ...])
Checked = tuple[int, "tuple | None", "list[tuple[str, str]]"]
PARALLEL_FROM_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves
IMPORT_CACHE_KIB = 32 * 1024  # a bulk insert reads little back: keep memory flat
_LOAD_CHUNK = 5000


@dataclass
class ImportResult:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    written: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings about rows written, never naming a value

    def summary(self, *keys: str) -> dict:
        keys = keys or ("rows", "inserted", "updated", "unchanged", "invalid", "written")
        return {key: getattr(self, key) for key in keys}


def jobs_for(path: Path, jobs: int | None) -> int:
    if jobs is not None:
        return jobs
    return 1 if path.stat().st_size < PARALLEL_FROM_BYTES else parallel.default_jobs()


def checked_records(path: Path, fmt: str, check, context, jobs: int, *, fields: tuple[str, ...]) -> Iterator[Checked]:
    """`check(record, context) -> (values, problems)` over every record of `path`, in order; `fields` are the
    names a record may have.

    `check` must be a module-level function: chunks of records go to worker
    processes. NDJSON lines travel unparsed (bytes pickle for next to nothing),
    so the workers do the parsing too.
    """
    if fmt == "ndjson":
        items = ((number, raw, context) for number, raw in readers.ndjson_lines(path))
    else:
        items = ((number, record, context) for number, record in readers.records(path, fmt, fields))
    return parallel.map_chunks(partial(_check_chunk, check), items, jobs=jobs)


def _check_chunk(check, chunk: list) -> list[Checked]:
    checked = []
    for number, record, context in chunk:
        if isinstance(record, bytes):
            record = readers.parse_line(record)
        if isinstance(record, readers.RowProblem):
            checked.append((number, None, [(record.field, record.reason)]))
            continue
        values, problems = check(record, context)
        checked.append((number, None if problems else values, problems))
    return checked


class Staging:
    def __init__(self, columns: Sequence[str]):
        self.columns = tuple(columns)
        self.folder = paths.scratch_folder("spool")
        self.path = self.folder / "spool.db"
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self.conn = sqlite3.connect(str(self.path), isolation_level=None)
        # Sorting for an index over millions of staged rows spills to temporary files: a
        # scratch file like the spool itself, not memory that grows with the input.
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE", "cache_size = -16384"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute(
            f"CREATE TABLE staged (row_no INTEGER PRIMARY KEY, {', '.join(self.columns)}, outcome TEXT, target INTEGER)"
        )
        self.conn.execute("CREATE TABLE problems (row_no INTEGER, field TEXT, reason TEXT)")

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc_info) -> None:
        self.conn.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def load(self, checked: Iterable[Checked], result: ImportResult) -> None:
        insert = f"INSERT INTO staged (row_no, {', '.join(self.columns)}) VALUES ({', '.join('?' * (len(self.columns) + 1))})"
        iterator = iter(checked)
        self.conn.execute("BEGIN")
        while chunk := list(islice(iterator, _LOAD_CHUNK)):
            result.rows += len(chunk)
            self.conn.executemany(insert, [(number, *row) for number, row, problems in chunk if not problems])
            self.conn.executemany(
                "INSERT INTO problems VALUES (?, ?, ?)",
                [(number, name, reason) for number, _, problems in chunk for name, reason in problems],
            )
        self.conn.execute("COMMIT")

    def flag_repeats(self, *columns: str, reason: str = "repeats row") -> None:
        """Later rows repeating an earlier row's value are problems; indexes are built after the load."""
        for column in columns:
            self.conn.execute(f"CREATE INDEX staged_{column} ON staged({column})")
            self.conn.execute(
                f"""INSERT INTO problems
                    SELECT row_no, '{column}', '{reason} ' || first FROM (
                        SELECT row_no, min(row_no) OVER (PARTITION BY {column}) AS first
                        FROM staged WHERE {column} IS NOT NULL)
                    WHERE row_no != first"""
            )

    @contextmanager
    def attached(self, conn: sqlite3.Connection) -> Iterator[None]:
        """The register's connection reads and marks the spool as `spool.*`."""
        self.conn.close()
        conn.execute("ATTACH DATABASE ? AS spool", (str(self.path),))
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("DETACH DATABASE spool")

    @staticmethod
    def flag_unknown_users(conn: sqlite3.Connection) -> None:
        """Rows naming a user_id the register does not hold are problems (attached)."""
        conn.execute(
            """INSERT INTO spool.problems SELECT row_no, 'user_id', 'no such user' FROM spool.staged s
               WHERE NOT EXISTS (SELECT 1 FROM main.users u WHERE u.user_id = s.user_id)"""
        )

    def index_events(self) -> None:
        """Before attaching: on the spool's own connection, whose sorts spill to files, not memory."""
        self.conn.execute("CREATE INDEX staged_event ON staged(source, event_id) WHERE event_id IS NOT NULL")

    @staticmethod
    def check_events(conn: sqlite3.Connection, result: ImportResult, max_problems: int, table: str) -> None:
        """Events of people (attached, in one transaction): an unknown user_id is a problem, and a valid row
        whose (source, event_id) `table` holds already, or an earlier row has, is skipped (`index_events` first)."""
        conn.execute("BEGIN")
        Staging.flag_unknown_users(conn)
        Staging.finish_checks(conn, result, max_problems)
        result.skipped = Staging.skip_resent(conn, table)
        conn.execute("COMMIT")

    @staticmethod
    def skip_resent(conn: sqlite3.Connection, table: str) -> int:
        """Valid rows whose (source, event_id) is stored in `table` or on an earlier row are resent events:
        skipped, not errors (attached, after `finish_checks`). Returns how many."""
        conn.execute(
            f"""UPDATE spool.staged SET outcome = 'skip' WHERE outcome IS NULL AND event_id IS NOT NULL AND (
                    EXISTS (SELECT 1 FROM main.{table} t WHERE t.source = staged.source AND t.event_id = staged.event_id)
                    OR EXISTS (SELECT 1 FROM spool.staged e WHERE e.source = staged.source AND e.event_id = staged.event_id
                               AND e.row_no < staged.row_no))"""
        )
        return conn.execute("SELECT count(*) FROM spool.staged WHERE outcome = 'skip'").fetchone()[0]

    @staticmethod
    def finish_checks(conn: sqlite3.Connection, result: ImportResult, max_problems: int) -> None:
        """Mark problem rows invalid and collect the report (attached)."""
        conn.execute("UPDATE spool.staged SET outcome = 'invalid' WHERE row_no IN (SELECT row_no FROM spool.problems)")
        result.invalid = conn.execute("SELECT count(DISTINCT row_no) FROM spool.problems").fetchone()[0]
        result.problems = [
            f"row {number}: {name}: {reason}"
            for number, name, reason in conn.execute(
                "SELECT row_no, field, reason FROM spool.problems ORDER BY row_no, rowid LIMIT ?", (max_problems,)
            )
        ]

    @staticmethod
    def batches(conn: sqlite3.Connection, outcome: str | None, size: int) -> Iterator[tuple[int, int, int]]:
        """(first row, last row, count) of successive batches of staged rows with this outcome (None: not yet set)."""
        last = 0
        where = "outcome IS NULL" if outcome is None else "outcome = ?"
        while True:
            first, final, count = conn.execute(
                f"""SELECT min(row_no), max(row_no), count(*) FROM (
                        SELECT row_no FROM spool.staged WHERE {where} AND row_no > ? ORDER BY row_no LIMIT ?)""",
                (*([] if outcome is None else [outcome]), last, size),
            ).fetchone()
            if not count:
                return
            yield first, final, count
            last = final
