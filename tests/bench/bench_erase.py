"""`erase` of one person against the raw SQL deletes and updates of the same rows plus the checkpoint.

Set-up, untimed: a register (`pipolicy init --key-file KEY`, so the erasure's
HMAC key exists), then synthetic rows inserted with raw sqlite3 by
bench_export.py's `build()` (every index of the register kept): N users, two
systems, one data item and one consent for everyone, and E access events
spread over the users (random times in 2026, seeded). --targets distinct
users, spread through the table, each get a full profile (6 data items,
8 consents, 2 requests) and exactly --user-events of the E events, scattered
through the log. This bypasses the audit chain, which is fine for timing, but
the register's `audit verify` would (rightly) not pass afterwards, so it is
never run on it. After `PRAGMA wal_checkpoint(TRUNCATE)` the register file is
copied for the baseline (same schema, indexes, rows, WAL journal mode).

Then, target by target, interleaved (project, baseline; the first target is
an untimed warm-up, so --targets T gives T-1 timed rounds), median, in this
process on connections opened once:

- project: `erasure.erase(reg, users.find(reg, USER_ID), "bench")` on
  `Register.open(REG)`: the plan's row counts, one transaction (tombstone
  row in `erasures`, `UPDATE access_log SET restricted_at`, `UPDATE requests
  SET restricted_at, requester = NULL, relation = NULL`, `DELETE FROM users`
  whose foreign keys delete data items and consents and set
  access_log/requests.user_key to NULL, audit events), the tombstone journal
  line beside the key file, `PRAGMA wal_checkpoint(TRUNCATE)`, and the scrub
  marks (a second small transaction and checkpoint);
- baseline: on the copy, a raw sqlite3 connection with the register's pragmas
  (WAL, foreign_keys, secure_delete, cache_size = -262144, synchronous =
  FULL): the user's id by user_id, `BEGIN IMMEDIATE`, the same two UPDATEs,
  `DELETE FROM users WHERE id = ?` (the same cascades), `COMMIT`,
  `PRAGMA wal_checkpoint(TRUNCATE)`.

After every erasure, untimed, both files are checked: the user is gone, their
data items and consents too, each of their access events (ids noted before)
has user_key NULL and restricted_at set, their requests are unlinked with no
requester, and the WAL is empty. At the end the two files must agree on which
events and requests lost their link.

Target: project time <= 3x baseline.

    python tests/bench/bench_erase.py [--users 1000000] [--events 10000000] [--user-events 1000] [--targets 7] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import at_most, environment, leave, report, spread, timed, workspace
from bench_export import build, raw_connection, user_id
from bench_startup import launcher

TARGET = 3.0  # project seconds over baseline seconds


def spread_targets(n_users: int, count: int) -> list[int]:
    """`count` distinct user keys spread evenly through 1..n_users (none at either end)."""
    return [(i + 1) * n_users // (count + 1) + 1 for i in range(count)]


def noted(conn: sqlite3.Connection, key: int) -> dict[str, list[int]]:
    """Ids of the rows that are a user's before the erasure, to check afterwards."""
    return {
        "access_log": [r[0] for r in conn.execute("SELECT id FROM access_log WHERE user_key = ? ORDER BY id", (key,))],
        "requests": [r[0] for r in conn.execute("SELECT id FROM requests WHERE user_key = ? ORDER BY id", (key,))],
        "data_items": [r[0] for r in conn.execute("SELECT id FROM data_items WHERE user_key = ?", (key,))],
        "consents": [r[0] for r in conn.execute("SELECT id FROM consents WHERE user_key = ?", (key,))],
    }


def raw_erase(conn: sqlite3.Connection, uid: str) -> None:
    """The deletes and updates an erasure needs, in plain SQL, and the checkpoint that scrubs the WAL."""
    key = conn.execute("SELECT id FROM users WHERE user_id = ?", (uid,)).fetchone()[0]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE access_log SET restricted_at = ? WHERE user_key = ?", (at, key))
    conn.execute("UPDATE requests SET restricted_at = ?, requester = NULL, relation = NULL WHERE user_key = ?", (at, key))
    conn.execute("DELETE FROM users WHERE id = ?", (key,))  # cascades: data_items, consents; SET NULL: access_log, requests
    conn.execute("COMMIT")
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        sys.exit("baseline: the checkpoint was blocked")


def check_erased(conn: sqlite3.Connection, db: Path, uid: str, key: int, rows: dict[str, list[int]], what: str) -> None:
    """The user and everything of theirs is gone or unlinked, and the WAL is empty."""
    problems = []
    one = lambda sql, params=(): conn.execute(sql, params).fetchone()[0]  # noqa: E731
    if one("SELECT count(*) FROM users WHERE user_id = ? OR id = ?", (uid, key)):
        problems.append("the user is still there")
    for table in ("data_items", "consents", "access_log", "requests"):
        if one(f"SELECT count(*) FROM {table} WHERE user_key = ?", (key,)):
            problems.append(f"{table} still has rows linked to the user")
    for table in ("data_items", "consents"):
        marks = ",".join("?" * len(rows[table]))
        if rows[table] and one(f"SELECT count(*) FROM {table} WHERE id IN ({marks})", rows[table]):
            problems.append(f"{table}: rows not deleted")
    events = rows["access_log"]
    cleared = 0
    for first in range(0, len(events), 500):
        chunk = events[first:first + 500]
        cleared += one(f"SELECT count(*) FROM access_log WHERE id IN ({','.join('?' * len(chunk))}) "
                       "AND user_key IS NULL AND restricted_at IS NOT NULL", chunk)
    if cleared != len(events):
        problems.append(f"access_log: {cleared:,} of the user's {len(events):,} events unlinked and restricted")
    marks = ",".join("?" * len(rows["requests"]))
    if rows["requests"] and one(
            f"SELECT count(*) FROM requests WHERE id IN ({marks}) AND user_key IS NULL AND restricted_at IS NOT NULL "
            "AND requester IS NULL AND relation IS NULL", rows["requests"]) != len(rows["requests"]):
        problems.append("requests: not all unlinked, restricted and without requester")
    wal = Path(f"{db}-wal")
    if wal.exists() and wal.stat().st_size:
        problems.append(f"the WAL holds {wal.stat().st_size:,} bytes after the checkpoint")
    if problems:
        sys.exit(f"{what} of {uid}: " + "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the register (default 1,000,000)")
    parser.add_argument("--events", type=int, default=10_000_000, help="access events in the register (default 10,000,000)")
    parser.add_argument("--user-events", type=int, default=1_000, help="events of each erased user (default 1,000)")
    parser.add_argument("--targets", type=int, default=7,
                        help="users erased on each side: one untimed warm-up, then one per timed round (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n_users, n_events, user_events, n_targets = args.users, args.events, args.user_events, args.targets
    if n_targets < 2 or n_users < 2 * n_targets + 2 or not 0 <= user_events * n_targets <= n_events:
        parser.error("need --targets >= 2, --users >= 2 * targets + 2 and 0 <= --user-events * targets <= --events")
    targets = spread_targets(n_users, n_targets)

    pipolicy, how = launcher()
    workdir, env = workspace("erase")
    for name in [k for k in os.environ if k.startswith("PIPOLICY_")]:
        del os.environ[name]  # no PIPOLICY_KEY / PIPOLICY_AUDIT_KEY: the key file and a plain chain, as `init` set up
    os.environ["PIPOLICY_HOME"] = env["PIPOLICY_HOME"]
    try:
        print(f"pipolicy erase of one user vs raw SQL deletes/updates + checkpoint: {user_events:,} of {n_events:,} events, "
              f"{n_users:,} users, {n_targets} users erased on each side ({n_targets - 1} timed round(s) after one "
              f"warm-up), interleaved, median")
        print(environment())
        print(f"launcher: {how}")

        # Set-up, untimed.
        reg_path, key_path, copy_path = workdir / "register.db", workdir / "register.key", workdir / "baseline.db"
        subprocess.run([*pipolicy, "init", "--db", str(reg_path), "--key-file", str(key_path), "--format", "json"],
                       env=env, check=True, capture_output=True)
        start = time.perf_counter()
        counts = build(reg_path, n_users, n_events, targets, user_events)
        if counts["access_log"] != n_events or counts["target events"] != user_events * n_targets:
            sys.exit(f"set-up is wrong: {counts}")
        shutil.copyfile(reg_path, copy_path)  # build() ended with wal_checkpoint(TRUNCATE) and closed: the file is whole
        print(f"  set-up took {time.perf_counter() - start:.1f} s (untimed), register {reg_path.stat().st_size / 1e6:,.1f} MB "
              f"(and a copy for the baseline): " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))

        from pipolicy_cli import erasure, users
        from pipolicy_cli.errors import NotFound
        from pipolicy_cli.register import Register

        reg = Register.open(reg_path)
        raw = raw_connection(copy_path)
        try:
            mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal" or reg.setting("key-file") != str(key_path):
                sys.exit(f"set-up is wrong: baseline journal mode {mode}, register key-file {reg.setting('key-file')}")
            plans = []
            for key in targets:
                mine, theirs = noted(reg.conn, key), noted(raw, key)
                if mine != theirs or len(mine["access_log"]) != user_events or len(mine["requests"]) != 2:
                    sys.exit(f"set-up is wrong for user {user_id(key)}: "
                             + ", ".join(f"{t} {len(v)}" for t, v in mine.items()))
                plans.append((user_id(key), key, mine))
            print(f"  each target: {user_events:,} events, {len(plans[0][2]['data_items'])} data items, "
                  f"{len(plans[0][2]['consents'])} consents, 2 requests; targets {', '.join(p[0] for p in plans)}")

            samples: dict[str, list[float]] = {"project": [], "baseline": []}
            results = []
            for round_, (uid, key, rows) in enumerate(plans):
                result: dict = {}

                def project() -> None:
                    result.update(erasure.erase(reg, users.find(reg, uid), "bench"))

                seconds = timed(project)
                try:
                    users.find(reg, uid)
                    sys.exit(f"project erase of {uid}: users.find still finds the user")
                except NotFound:
                    pass
                check_erased(reg.conn, reg_path, uid, key, rows, "project erase")
                if result.get("scrub") != "done" or result.get("rows", {}).get("access_log") != user_events:
                    sys.exit(f"project erase of {uid}: unexpected result {result}")
                results.append(result)
                if round_:
                    samples["project"].append(seconds)

                seconds = timed(lambda: raw_erase(raw, uid))
                check_erased(raw, copy_path, uid, key, rows, "baseline erase")
                if round_:
                    samples["baseline"].append(seconds)

            # Both files unlinked the same events and requests.
            for table in ("access_log", "requests"):
                sql = f"SELECT id FROM {table} WHERE user_key IS NULL ORDER BY id"
                if [r[0] for r in reg.conn.execute(sql)] != [r[0] for r in raw.execute(sql)]:
                    sys.exit(f"{table}: the project and the baseline unlinked different rows")
            tombstones = reg.conn.execute("SELECT count(*), sum(scrub_pending) FROM erasures").fetchone()
            journal = erasure.journal_path(reg)
            lines = len(journal.read_text(encoding="utf-8").splitlines()) if journal and journal.exists() else 0
        finally:
            raw.close()
            reg.close()
        print(f"  checked after each erasure: user, data items and consents gone; events and requests unlinked and "
              f"restricted; WAL empty. Tombstones: {tombstones[0]} rows ({tombstones[1]} scrub pending), "
              f"{lines} journal lines; last result: rows {results[-1]['rows']}, scrub {results[-1]['scrub']}")
        project_s, baseline_s = statistics.median(samples["project"]), statistics.median(samples["baseline"])
        print(f"  erasure.erase: median {project_s * 1e3:8.1f} ms  spread {spread(samples['project'])}")
        print(f"  raw SQL:       median {baseline_s * 1e3:8.1f} ms  spread {spread(samples['baseline'])}")

        report([at_most(f"erase of one user ({user_events:,} events) on {n_events:,} events", project_s, baseline_s, TARGET)])
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
