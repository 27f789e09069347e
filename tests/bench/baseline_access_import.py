"""Baselines for bench_access.py: raw sqlite3 on a copy of the register.

`import` (the default): reads NDJSON access events, `json.loads` each line,
maps `user_id` to the users' row id through a dict loaded up front, and inserts
the rows as read (nothing else normalised or checked) into `access_log` by one
`executemany` fed from a generator, in one transaction. The file is a copy of
the register, so the schema and the indexes are the register's own; the
connection gets the register's pragmas.

`--violations SQL_FILE`: runs the SQL in SQL_FILE (bench_access.py writes the
project's `VIOLATIONS_SQL` + its ORDER BY there) on the same kind of
connection and iterates every row with `fetchmany`, judging nothing.

    python tests/bench/baseline_access_import.py RAW.db EVENTS.ndjson
    python tests/bench/baseline_access_import.py RAW.db --violations QUERY.sql
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import datetime, timezone

COLUMNS = ("at", "actor", "user_key", "categories", "purpose", "action", "basis", "source", "event_id", "recorded_at")
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA cache_size = -262144",
    "PRAGMA temp_store = MEMORY",
)


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def rows(path: str, keys: dict[str, int], recorded_at: str):
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            yield (r["at"], r["actor"], keys[r["user_id"]], r["categories"], r["purpose"], r["action"], r["basis"],
                   r.get("source"), r.get("event_id"), recorded_at)


def import_events(conn: sqlite3.Connection, ndjson: str) -> dict:
    keys = dict(conn.execute("SELECT user_id, id FROM users"))
    recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    sql = f"INSERT INTO access_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    before = conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, rows(ndjson, keys, recorded_at))
    conn.execute("COMMIT")
    return {"inserted": conn.execute("SELECT count(*) FROM access_log").fetchone()[0] - before}


def scan(conn: sqlite3.Connection, sql: str) -> dict:
    cursor = conn.execute(sql)
    count = 0
    while batch := cursor.fetchmany(10_000):
        count += len(batch)
    return {"rows": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db")
    parser.add_argument("ndjson", nargs="?")
    parser.add_argument("--violations", metavar="SQL_FILE", help="run this query and iterate its rows instead")
    args = parser.parse_args()
    if bool(args.ndjson) == bool(args.violations):
        parser.error("give either EVENTS.ndjson or --violations SQL_FILE")

    conn = connect(args.db)
    if args.violations:
        with open(args.violations, encoding="utf-8") as handle:
            result = scan(conn, handle.read())
    else:
        result = import_events(conn, args.ndjson)
    print(json.dumps(result))
    conn.close()


if __name__ == "__main__":
    main()
