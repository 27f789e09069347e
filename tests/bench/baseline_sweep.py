"""Baseline for bench_sweep.py: the raw SQL DELETE a retention sweep of `access_log` amounts to.

On a copy of the register (same schema, indexes and rows), a sqlite3
connection with the register's pragmas (journal WAL, synchronous FULL,
secure_delete ON, foreign_keys ON, cache_size -262144, temp_store MEMORY:
`baseline_access_import.connect`) runs

    BEGIN IMMEDIATE; DELETE FROM access_log WHERE at < CUTOFF; COMMIT;
    PRAGMA wal_checkpoint(TRUNCATE);

(one transaction; the checkpoint because the sweep checkpoints too) and prints
{"deleted": N, "checkpoint": [busy, log, checkpointed]} as JSON.

`--vacuum` then also gives every free page back at once (`PRAGMA
incremental_vacuum` under auto_vacuum=INCREMENTAL, else `VACUUM`), and
checkpoints again: context only (the sweep gives back at most 256 MB a run).

    python tests/bench/baseline_sweep.py RAW.db CUTOFF [--vacuum]
"""

from __future__ import annotations

import argparse
import json

from baseline_access_import import connect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db")
    parser.add_argument("cutoff", help="delete the access events with at < CUTOFF (UTC text, as stored)")
    parser.add_argument("--vacuum", action="store_true", help="then give every free page back (context)")
    args = parser.parse_args()

    conn = connect(args.db)
    conn.execute("BEGIN IMMEDIATE")
    deleted = conn.execute("DELETE FROM access_log WHERE at < ?", (args.cutoff,)).rowcount
    conn.execute("COMMIT")
    result = {"deleted": deleted, "checkpoint": list(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())}
    if args.vacuum:
        (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
        # incremental_vacuum frees one page per step and execute() takes one step: executescript() runs it out
        conn.executescript("PRAGMA incremental_vacuum;" if mode == 2 else "VACUUM;")
        result["vacuum"] = "incremental" if mode == 2 else "full"
        result["checkpoint"] = list(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    print(json.dumps(result))
    conn.close()


if __name__ == "__main__":
    main()
