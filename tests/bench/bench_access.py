"""`pipolicy access import` and `access violations` against raw sqlite3 on the same schema.

Set-up, untimed: a register (`pipolicy init`), N synthetic users imported from
NDJSON (`pipolicy user import`), then consents inserted with raw SQL straight
into its `consents` table (`CONSENTS`: granted 2026-01-01 to most people for
each purpose and scope the events use, "messaging" withdrawn 2026-06-01 by
every 6th, a guardian's written consent for 3 minors in 4). That
bypasses the audit chain, which is fine here (the chain is not verified). The
register, checkpointed, is the template: each round copies it twice, REG for
pipolicy and RAW for the baseline, so both have the register's schema, indexes
and data. Then an NDJSON file of E access events (random users, times over
2026, seeded) is written, streamed.

Timed, each a fresh process, wall clock and peak memory (the larger of
`os.wait4`'s ru_maxrss and the summed RSS of the process tree, sampled):

1. `pipolicy access import EVENTS --db REG --format json` (inserted == E)
   against baseline_access_import.py: json.loads per line, a user_id -> id
   dict, one raw `executemany` in one transaction on RAW, register pragmas.
   Targets: project events/s >= 0.5x baseline; project peak memory < 256 MB.
2. `pipolicy access violations --db REG --format ndjson` (exit 5 when it finds
   any) against `baseline_access_import.py RAW --violations`: the project's own
   `VIOLATIONS_SQL` + `ORDER BY a.at, a.id` on RAW, every row fetched
   (`fetchmany`), nothing judged. Target: project time <= 3x baseline.

Runs alternate order over --repeat rounds and the median is reported.

    python tests/bench/bench_access.py [--users 1000000] [--events 10000000] [--repeat 1] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _common import at_least, at_most, environment, leave, measure, memory_below, rate, report, workspace
from bench_startup import launcher
from bench_user_import import count_users, write_users

RATE_TARGET = 0.5  # project events/s over baseline events/s
MEMORY_TARGET_MB = 256
VIOLATIONS_TARGET = 3.0  # project seconds over baseline seconds
BASELINE = Path(__file__).with_name("baseline_access_import.py")

CATEGORIES = ("registration", "device", "network", "browsing", "location", "order", "tracking")
# One or two categories, already as pipolicy stores them (sorted, comma-joined),
# so REG and RAW end up holding the same values.
CATEGORY_SETS = [c for c in CATEGORIES] + [",".join(sorted(pair)) for pair in itertools.combinations(CATEGORIES, 2)]
CATEGORY_WEIGHTS = [6] * len(CATEGORIES) + [2] * (len(CATEGORY_SETS) - len(CATEGORIES))
PURPOSES, PURPOSE_WEIGHTS = ("service", "messaging", "personalization", "ad-measurement"), (40, 30, 20, 10)
# The basis follows the purpose, as a real log's would: providing the service
# mostly rests on the contract, the rest on consent. Overall ~59% consent, ~38%
# contract, ~3% operations-security (a basis PIPL lacks: always a violation).
BASES = ("consent", "contract", "operations-security")
BASIS_WEIGHTS = {"service": (3, 90, 7), "messaging": (97, 3, 0), "personalization": (97, 3, 0), "ad-measurement": (97, 3, 0)}
ACTORS = [f"cs-agent-{i:02d}" for i in range(1, 21)] + ["campaign-bot", "maps-service", "recommender", "ad-reporting"]
# (code, action, at, which users by row id): every purpose and scope the events
# use is covered for most people, so violations are a mix, not the rule.
CONSENTS = (
    ("messaging", "grant", "2026-01-01T00:00:00Z", "id % 10 != 0"),
    ("messaging", "withdraw", "2026-06-01T00:00:00Z", "id % 6 = 0"),
    ("personalization", "grant", "2026-01-01T00:00:00Z", "id % 10 != 0"),
    ("ad-measurement", "grant", "2026-01-01T00:00:00Z", "id % 2 = 0"),
    ("location", "grant", "2026-01-01T00:00:00Z", "id % 3 != 0"),
    ("tracking", "grant", "2026-01-01T00:00:00Z", "id % 5 != 0"),
)
GUARDIAN_FORM = "born > '2008-01-01' AND id % 4 != 0"  # most minors' consents come with a guardian's written consent
YEAR_START = 1767225600  # 2026-01-01T00:00:00Z
YEAR_SECONDS = 365 * 86400


def write_events(path: Path, n_events: int, n_users: int, seed: int = 11) -> None:
    """E events, one JSON object a line, streamed (the parent stays small)."""
    rng = random.Random(seed)
    choices, randrange, gmtime, strftime = rng.choices, rng.randrange, time.gmtime, time.strftime
    block = 10_000
    with open(path, "w", encoding="utf-8") as out:
        for first in range(0, n_events, block):
            size = min(block, n_events - first)
            cats = choices(CATEGORY_SETS, CATEGORY_WEIGHTS, k=size)
            purposes = choices(PURPOSES, PURPOSE_WEIGHTS, k=size)
            bases = [choices(BASES, BASIS_WEIGHTS[purpose])[0] for purpose in purposes]
            actors = choices(ACTORS, k=size)
            lines = []
            for i in range(size):
                at = strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(YEAR_START + randrange(YEAR_SECONDS)))
                lines.append(
                    f'{{"at": "{at}", "actor": "{actors[i]}", "user_id": "U{randrange(1, n_users + 1):08d}", '
                    f'"categories": "{cats[i]}", "purpose": "{purposes[i]}", '
                    f'"action": "{"view" if randrange(2) else "use"}", "basis": "{bases[i]}", '
                    f'"source": "bench", "event_id": "e{first + i + 1}"}}\n'
                )
            out.write("".join(lines))


def add_consents(db: Path) -> dict[str, int]:
    """Consents by raw SQL (the core API is too slow for a million people).

    Bypasses the audit chain on purpose: fine for timing, but the register's
    `audit verify` would (rightly) not pass afterwards, so it is not run."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        recorded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conn.execute("BEGIN IMMEDIATE")
        for code, action, at, which in CONSENTS:
            conn.execute(
                "INSERT INTO consents (user_key, code, action, at, method, written_consent, recorded_at) "
                f"SELECT id, ?, ?, ?, 'bench', CASE WHEN {GUARDIAN_FORM} THEN 'guardian form' END, ? "
                f"FROM users WHERE {which} ORDER BY id",
                (code, action, at, recorded),
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return dict(conn.execute("SELECT code || ' ' || action, count(*) FROM consents GROUP BY 1 ORDER BY 1"))
    finally:
        conn.close()


def count_events(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
    finally:
        conn.close()


def lines_and_reasons(path: Path, sample: int = 200_000) -> tuple[int, Counter]:
    """Lines in an NDJSON file, and the reasons in its first `sample` lines."""
    reasons: Counter = Counter()
    count = 0
    with open(path, "rb") as handle:
        for count, line in enumerate(handle, 1):
            if count <= sample:
                reasons.update(json.loads(line)["reasons"])
    return count, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the register (default 1,000,000)")
    parser.add_argument("--events", type=int, default=10_000_000, help="access events imported (default 10,000,000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n_users, n = args.users, args.events

    pipolicy, how = launcher()
    workdir, env = workspace("access")
    try:
        print(f"pipolicy access import / violations vs raw sqlite3: {n:,} events, {n_users:,} users, "
              f"{args.repeat} run(s) each, median")
        print(environment())
        print(f"launcher: {how}")

        # Set-up, untimed.
        template, key = workdir / "register.db", workdir / "register.key"
        subprocess.run([*pipolicy, "init", "--db", str(template), "--key-file", str(key), "--format", "json"],
                       env=env, check=True, capture_output=True)
        users_file = workdir / "users.ndjson"
        start = time.perf_counter()
        write_users(users_file, n_users)
        print(f"  wrote {users_file.stat().st_size / 1e6:,.1f} MB users NDJSON in {time.perf_counter() - start:.1f} s (untimed)")
        start = time.perf_counter()
        made = subprocess.run([*pipolicy, "user", "import", str(users_file), "--db", str(template), "--format", "json"],
                              env=env, capture_output=True, text=True)
        if made.returncode != 0 or count_users(template) != n_users:
            sys.exit(f"user import failed (exit {made.returncode}):\n{made.stdout[-2000:]}\n{made.stderr[-4000:]}")
        print(f"  imported {n_users:,} users with pipolicy user import in {time.perf_counter() - start:.1f} s (untimed)")
        users_file.unlink()
        start = time.perf_counter()
        consents = add_consents(template)
        print(f"  inserted consents by raw SQL in {time.perf_counter() - start:.1f} s (untimed): "
              + ", ".join(f"{k} {v:,}" for k, v in consents.items()))
        events_file = workdir / "events.ndjson"
        start = time.perf_counter()
        write_events(events_file, n, n_users)
        print(f"  wrote {events_file.stat().st_size / 1e6:,.1f} MB events NDJSON in {time.perf_counter() - start:.1f} s (untimed)")
        query = workdir / "violations.sql"
        # The project's own query, fetched by a child so this process stays small
        # (a child's peak RSS can include what it inherits from here).
        sql = subprocess.run([sys.executable, "-c", "from pipolicy_cli.access import VIOLATIONS_SQL; print(VIOLATIONS_SQL)"],
                             env=env, check=True, capture_output=True, text=True).stdout
        query.write_text(sql + " ORDER BY a.at, a.id", encoding="utf-8")

        imports: dict[str, list[tuple[float, float]]] = {"project": [], "baseline": []}
        checks: dict[str, list[tuple[float, float]]] = {"project": [], "baseline": []}
        found = None
        for i in range(args.repeat):
            reg, raw = workdir / f"reg-{i}.db", workdir / f"raw-{i}.db"
            shutil.copy2(template, reg)  # the template is checkpointed and closed: the file is the whole register
            shutil.copy2(template, raw)
            runs = {
                "project": [*pipolicy, "access", "import", str(events_file), "--db", str(reg), "--format", "json"],
                "baseline": [sys.executable, str(BASELINE), str(raw), str(events_file)],
            }
            order = list(runs) if i % 2 == 0 else list(reversed(runs))
            for name in order:
                seconds, mb, stdout = measure(f"import-{name}-{i}", runs[name], env, workdir)
                imports[name].append((seconds, mb))
                print(f"  run {i + 1} import {name:<8} {seconds:8.2f} s  {rate(n / seconds, ' events/s'):>18}  peak memory {mb:7.1f} MB")
                stored = count_events(reg if name == "project" else raw)
                result = json.loads(stdout)
                if result.get("inserted") != n or stored != n or (name == "project" and result.get("invalid")):
                    sys.exit(f"{name} access import is wrong: {result}, {stored:,} rows in access_log, expected {n:,}")

            runs = {
                "project": [*pipolicy, "access", "violations", "--db", str(reg), "--format", "ndjson"],
                "baseline": [sys.executable, str(BASELINE), str(raw), "--violations", str(query)],
            }
            for name in order:
                # exit 5: violations found, the expected outcome here
                seconds, mb, stdout = measure(f"violations-{name}-{i}", runs[name], env, workdir,
                                              ok=(0, 5), read_stdout=name == "baseline")
                checks[name].append((seconds, mb))
                if name == "project":
                    lines, reasons = lines_and_reasons(workdir / f"violations-{name}-{i}.out")
                    if found is not None and lines != found:
                        sys.exit(f"violations differ between rounds: {lines:,} vs {found:,}")
                    found = lines
                    detail = f"{lines:,} violations ({lines / n:.0%} of events)"
                else:
                    scanned = json.loads(stdout)["rows"]
                    if scanned != n:
                        sys.exit(f"raw violations query returned {scanned:,} rows, expected {n:,}")
                    detail = f"{scanned:,} rows fetched"
                print(f"  run {i + 1} violations {name:<8} {seconds:8.2f} s  peak memory {mb:7.1f} MB  {detail}")
                if name == "project" and i == 0:
                    sampled = min(lines, 200_000)
                    print(f"    reasons in the first {sampled:,}: " + ", ".join(f"{k} {v:,}" for k, v in reasons.most_common()))
            if not args.keep:
                for path in itertools.chain(workdir.glob(f"*-{i}.db*"), workdir.glob(f"violations-*-{i}.out")):
                    path.unlink()  # free the disk before the next round

        def median_import(name: str, index: int) -> float:
            return statistics.median(s[index] for s in imports[name])

        def median_check(name: str, index: int) -> float:
            return statistics.median(s[index] for s in checks[name])

        project_rate, baseline_rate = n / median_import("project", 0), n / median_import("baseline", 0)
        project_mb, baseline_mb = median_import("project", 1), median_import("baseline", 1)
        project_s, baseline_s = median_check("project", 0), median_check("baseline", 0)
        for name in imports:
            print(f"  median {name:<8} import {median_import(name, 0):8.2f} s  peak memory {median_import(name, 1):7.1f} MB  "
                  f"violations {median_check(name, 0):8.2f} s")
        report([
            at_least(f"access import {n:,} events", project_rate, baseline_rate, RATE_TARGET, " events/s",
                     peak_mb=project_mb),
            memory_below("peak memory of access import", project_mb, baseline_mb, MEMORY_TARGET_MB),
            at_most(f"access violations over {n:,} events", project_s, baseline_s, VIOLATIONS_TARGET,
                    peak_mb=median_check("project", 1)),
        ])
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
