"""The audited write path and chain verification, against raw sqlite3 in the same run.

1. Chained audit writes: N events through `Transaction.record` (canonical JSON,
   hash chained to the previous event, one write transaction) against raw
   `executemany` of the very same (seq, event, hash) rows into a fresh register
   of the same schema with the same pragmas.
   Target: project events/s >= 0.5x raw events/s.
2. For context (no target): N rows through `Transaction.insert` (one INSERT plus
   one audit event per row) against raw per-row INSERTs of the rows alone. Bulk
   imports record one event per batch instead, so they do not pay this.
3. Audit verify: `audit.verify()` over a chain of --events events.
   Target: >= 300,000 events/s (absolute). For context, the ratio is against a raw
   full scan of `SELECT seq, event, hash FROM audit_events` on the same connection.

Each repetition uses fresh files; runs are interleaved and the median is reported.
PIPOLICY_AUDIT_KEY is cleared (plain SHA-256 chain) unless --keyed is given.

    python tests/bench/bench_audit.py [--n 20000] [--events 200000] [--repeat 5] [--keyed]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, at_least, environment, rate, report, spread, timed

from pipolicy_cli.register import audit
from pipolicy_cli.register.store import Register

WRITE_TARGET = 0.5  # project rows/s over raw rows/s
VERIFY_TARGET = 300_000  # events/s
EVENTS_PER_TRANSACTION = 50_000
TABLE = "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER)"
RAW_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
    "PRAGMA cache_size = -262144",
    "PRAGMA temp_store = MEMORY",
)


def make_rows(n: int) -> list[dict]:
    return [{"a": f"person {i}", "b": f"person{i}@example.org", "c": i} for i in range(n)]


def project_insert(path: Path, rows: list[dict]) -> float:
    reg, _ = Register.create_or_migrate(path, "bench")
    try:
        reg.conn.execute(TABLE)  # outside a transaction: scratch table, not audited

        def go() -> None:
            with reg.transaction("bench", "bench insert") as tx:
                for row in rows:
                    tx.insert("bench_rows", row)

        seconds = timed(go)
        assert reg.conn.execute("SELECT count(*) FROM bench_rows").fetchone()[0] == len(rows)
        return seconds
    finally:
        reg.close()


def raw_insert(path: Path, rows: list[tuple]) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        for pragma in RAW_PRAGMAS:
            conn.execute(pragma)
        conn.execute(TABLE)
        sql = "INSERT INTO bench_rows (a, b, c) VALUES (?, ?, ?)"

        def go() -> None:
            conn.execute("BEGIN IMMEDIATE")
            for row in rows:
                conn.execute(sql, row)
            conn.execute("COMMIT")

        seconds = timed(go)
        assert conn.execute("SELECT count(*) FROM bench_rows").fetchone()[0] == len(rows)
        return seconds
    finally:
        conn.close()


def bench_writes(workdir: Path, n: int, repeat: int) -> Row:
    dict_rows = make_rows(n)
    tuple_rows = [(r["a"], r["b"], r["c"]) for r in dict_rows]
    # one untimed warm-up of each on a small batch
    project_insert(workdir / "warm-project.db", dict_rows[:2000])
    raw_insert(workdir / "warm-raw.db", tuple_rows[:2000])
    project, raw = [], []
    for i in range(repeat):  # alternate which goes first
        order = [("p", project), ("r", raw)] if i % 2 == 0 else [("r", raw), ("p", project)]
        for kind, samples in order:
            if kind == "p":
                samples.append(project_insert(workdir / f"project-{i}.db", dict_rows))
            else:
                samples.append(raw_insert(workdir / f"raw-{i}.db", tuple_rows))
    print(f"  tx.insert  {n:,} rows: median {statistics.median(project) * 1e3:8.1f} ms  spread {spread(project)}")
    print(f"  raw insert {n:,} rows: median {statistics.median(raw) * 1e3:8.1f} ms  spread {spread(raw)}")
    project_rate, raw_rate = n / statistics.median(project), n / statistics.median(raw)
    return Row(
        f"rows + one audit event each ({n:,} rows, 1 tx)",
        rate(project_rate, " rows/s"),
        rate(raw_rate, " rows/s"),
        project_rate / raw_rate,
        "- (context)",
        None,
        project_rate,
        raw_rate,
        "rows/s",
    )


def project_events(path: Path, n: int) -> tuple[float, list[tuple]]:
    reg, _ = Register.create_or_migrate(path, "bench")
    try:
        start = audit.head(reg.conn).count

        def go() -> None:
            with reg.transaction("bench", "bench record") as tx:
                for key in range(n):
                    tx.record("insert", "bench_rows", key=key, fields=("a", "b", "c"))

        seconds = timed(go)
        rows = reg.conn.execute("SELECT seq, event, hash FROM audit_events WHERE seq > ? ORDER BY seq", (start,)).fetchall()
        assert len(rows) == n and audit.verify(reg.conn).ok
        return seconds, rows
    finally:
        reg.close()


def raw_events(path: Path, rows: list[tuple]) -> float:
    Register.create_or_migrate(path, "bench")[0].close()  # the same schema and indexes
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        for pragma in RAW_PRAGMAS:
            conn.execute(pragma)

        def go() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO audit_events (seq, event, hash) VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")

        return timed(go)
    finally:
        conn.close()


def bench_events(workdir: Path, n: int, repeat: int) -> Row:
    _, rows = project_events(workdir / "warm-events.db", n)
    project, raw = [], []
    for i in range(repeat):
        order = ["p", "r"] if i % 2 == 0 else ["r", "p"]
        for kind in order:
            if kind == "p":
                project.append(project_events(workdir / f"events-{i}.db", n)[0])
            else:
                raw.append(raw_events(workdir / f"raw-events-{i}.db", rows))
    print(f"  tx.record  {n:,} events: median {statistics.median(project) * 1e3:8.1f} ms  spread {spread(project)}")
    print(f"  raw insert {n:,} events: median {statistics.median(raw) * 1e3:8.1f} ms  spread {spread(raw)}")
    return at_least(
        f"chained audit writes ({n:,} events, 1 tx)",
        n / statistics.median(project),
        n / statistics.median(raw),
        WRITE_TARGET,
        " events/s",
    )


def bench_verify(workdir: Path, events: int, repeat: int) -> Row:
    reg, _ = Register.create_or_migrate(workdir / "verify.db", "bench")
    try:
        start = time.perf_counter()
        made = 0
        while made < events:
            batch = min(EVENTS_PER_TRANSACTION, events - made)
            with reg.transaction("bench", "bench record") as tx:
                for key in range(made, made + batch):
                    tx.record("bench", "bench_rows", key=key, fields=["a"])
            made += batch
        build = time.perf_counter() - start
        print(f"  built {events:,} events with tx.record in {build:.2f} s ({rate(events / build, ' events/s')}, untimed)")

        conn = reg.conn
        result = audit.verify(conn)  # warm-up, and check the chain is whole
        if not result.ok:
            sys.exit(f"audit.verify failed on the benchmark chain: {result.reason} at {result.first_bad}")
        count = result.count

        def scan() -> None:
            for _ in conn.execute("SELECT seq, event, hash FROM audit_events"):
                pass

        scan()
        verify_s, scan_s = [], []
        for _ in range(repeat):
            verify_s.append(timed(lambda: audit.verify(conn)))
            scan_s.append(timed(scan))
    finally:
        reg.close()
    print(f"  audit.verify {count:,} events: median {statistics.median(verify_s) * 1e3:8.1f} ms  spread {spread(verify_s)}")
    print(f"  raw scan     {count:,} events: median {statistics.median(scan_s) * 1e3:8.1f} ms  spread {spread(scan_s)}")
    verify_rate = count / statistics.median(verify_s)
    scan_rate = count / statistics.median(scan_s)
    return Row(
        f"audit verify ({count:,} events)",
        rate(verify_rate, " events/s"),
        rate(scan_rate, " events/s") + " (scan)",
        verify_rate / scan_rate,
        f">= {VERIFY_TARGET:,}/s",
        verify_rate >= VERIFY_TARGET,
        verify_rate,
        scan_rate,
        "events/s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="rows inserted per write run (default 20,000)")
    parser.add_argument("--events", type=int, default=200_000, help="audit events to verify (default 200,000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each measurement (default 5)")
    parser.add_argument("--keyed", action="store_true", help="set PIPOLICY_AUDIT_KEY (HMAC chain) instead of clearing it")
    args = parser.parse_args()

    if args.keyed:
        os.environ["PIPOLICY_AUDIT_KEY"] = "bench-key-not-secret"
    else:
        os.environ.pop("PIPOLICY_AUDIT_KEY", None)

    print(f"audited write path and chain verification vs raw sqlite3: {args.repeat} runs each, median")
    print(environment())
    print(f"chain: {'HMAC-SHA-256 (--keyed)' if args.keyed else 'SHA-256 (PIPOLICY_AUDIT_KEY cleared)'}")
    with tempfile.TemporaryDirectory(prefix="pipolicy-bench-") as tmp:
        workdir = Path(tmp)
        rows = [
            bench_events(workdir, args.n, args.repeat),
            bench_writes(workdir, args.n, args.repeat),
            bench_verify(workdir, args.events, args.repeat),
        ]
    report(rows)


if __name__ == "__main__":
    main()
