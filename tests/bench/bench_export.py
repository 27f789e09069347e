"""`export` of one person as JSON against the raw SQL queries that read the same rows.

Set-up, untimed: a register (`pipolicy init`), then synthetic rows inserted
with raw sqlite3 straight into its tables (`executemany`, large transactions,
every index of the register kept): N users, two systems, one data item and one
consent for everyone, and E access events spread over the users (random
times in 2026, seeded). One target user in the middle of the table gets a full
profile, INVENTORY data items, CONSENT_HISTORY consents, two requests and
exactly --user-events of the E events, scattered through the log (no other
event is theirs). This bypasses the audit chain, which is fine for timing, but
the register's `audit verify` would (rightly) not pass afterwards, so it is
never run on it.

Timed in this process (no interpreter start-up), on connections opened once,
interleaved, --repeat rounds after one warm-up, median:

- project: `users.find(reg, USER_ID)` + `export.write_json(reg, row, out)` to
  os.devnull, on `Register.open(REG)`;
- baseline: on a separate raw sqlite3 connection with the register's pragmas,
  `fetchall` of the same rows: the config rows (the "about" section), the user
  by user_id, data_items JOIN systems, consents ORDER BY at, id, access_log
  WHERE user_key = ? ORDER BY at, id, and requests; no JSON.

Target: project time <= 2x baseline. The export's audit event
(`export.record`, a write transaction) is not part of the in-process timing;
for context, one full `pipolicy export USER --db REG --format json` child
process (start-up, the audit event and the JSON to a file) is timed once,
after one untimed run, and printed above the table (time only: its peak
memory would include this process's, see below).

    python tests/bench/bench_export.py [--users 1000000] [--events 10000000] [--user-events 1000] [--repeat 7] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from _common import at_most, environment, interleaved, leave, measure, report, spread, workspace
from bench_startup import launcher

TARGET = 2.0  # project seconds over baseline seconds
BLOCK = 100_000  # rows per executemany
TRANSACTION = 1_000_000  # rows per write transaction in the set-up
RECORDED = "2026-12-31T23:59:59Z"
# The pragmas pipolicy's connect() sets on every connection (register/connection.py).
RAW_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    "PRAGMA busy_timeout = 60000",
    "PRAGMA cache_size = -262144",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA synchronous = FULL",
)
CATEGORIES = ("registration", "device", "network", "browsing", "location", "order", "tracking")
CATEGORY_SETS = list(CATEGORIES) + ["browsing,device", "location,tracking", "network,order"]
PURPOSES = ("service", "messaging", "personalization", "ad-measurement")
BASES = ("consent", "contract", "operations-security")
ACTORS = [f"cs-agent-{i:02d}" for i in range(1, 21)] + ["campaign-bot", "maps-service", "recommender", "ad-reporting"]
SYSTEMS = (
    ("crm", "internal", "data team", "CN", None),
    ("sms-gateway", "processor", "vendor ops", "CN", "DPA-2025-014"),
)
# The target's inventory: (system key, category, field, source, collected_at, value)
INVENTORY = (
    (1, "registration", "name", "signup form", "2025-03-01T10:00:00Z", None),
    (1, "registration", "phone", "signup form", "2025-03-01T10:00:00Z", None),
    (1, "registration", "email", "signup form", "2025-03-01T10:00:00Z", None),
    (1, "order", "address", "checkout", "2025-04-12T08:30:00Z", None),
    (1, "device", "device_id", "app", "2025-03-01T10:05:00Z", "a1b2c3d4"),
    (2, "registration", "phone", "crm sync", "2025-03-02T00:00:00Z", None),
)
# The target's consent history: (code, action, at, method)
CONSENT_HISTORY = (
    ("service", "grant", "2025-03-01T10:00:00Z", "signup form"),
    ("messaging", "grant", "2025-03-01T10:00:00Z", "signup form"),
    ("personalization", "grant", "2025-03-01T10:01:00Z", "app prompt"),
    ("location", "grant", "2025-05-20T18:00:00Z", "app prompt"),
    ("ad-measurement", "grant", "2025-06-01T09:00:00Z", "banner"),
    ("messaging", "withdraw", "2025-09-15T12:00:00Z", "sms reply"),
    ("ad-measurement", "withdraw", "2025-11-02T20:00:00Z", "settings page"),
    ("messaging", "grant", "2026-02-01T08:00:00Z", "settings page"),
)


def user_id(key: int) -> str:
    return f"U{key:08d}"


def time_pool(rng: random.Random, size: int, start: int, seconds: int) -> list[str]:
    """`size` random UTC times in [start, start + seconds), formatted once (strftime per row is slow)."""
    return [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + rng.randrange(seconds))) for _ in range(size)]


def target_profile(key: int, first: bool) -> tuple:
    """(key, user_id, phone, email, contact) of a target; the first (export's only) one is the fixed 张伟 profile.
    phone and email are UNIQUE, so every further target gets its own."""
    if first:
        return key, user_id(key), "+8613912345678", "zhang.wei@example.org", "WeChat zhangwei90"
    return key, user_id(key), f"+86137{key:08d}", f"zhang.wei.{key}@example.org", f"WeChat zhangwei{key}"


def build(db: Path, n_users: int, n_events: int, target: int | Sequence[int], user_events: int,
          seed: int = 11) -> dict[str, int]:
    """Fill the register by raw SQL. Bypasses the audit chain on purpose (see the module docstring).

    `target`: one user key, or several distinct keys (bench_erase.py): each gets the full profile and exactly
    `user_events` events. With one key the rows (and the random draws) are those of a single-target build;
    "target events" counts the events of all targets."""
    targets = [target] if isinstance(target, int) else list(target)
    if len(set(targets)) != len(targets) or not all(1 <= t <= n_users for t in targets) or len(targets) >= n_users:
        raise ValueError(f"targets must be distinct user keys in 1..{n_users}, fewer than the users: {targets}")
    chosen = set(targets)
    skip = sorted(targets)
    marks = ", ".join("?" * len(targets))
    rng = random.Random(seed)
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # set-up only; the timed connections use the register's pragmas
        conn.execute("PRAGMA cache_size = -524288")
        created = time_pool(rng, 50_000, 1640995200, 4 * 365 * 86400)  # 2022..2025

        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for first in range(1, n_users + 1, BLOCK):
            keys = range(first, min(first + BLOCK, n_users + 1))
            conn.executemany(
                "INSERT INTO users (id, user_id, name, phone, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
                ((k, user_id(k), f"User {k}", f"+86138{k:08d}", created[k % len(created)]) for k in keys if k not in chosen),
            )
        conn.executemany(
            "INSERT INTO users (id, user_id, name, gender, birth_date, address, phone, email, contact, status, created_at, "
            "updated_at) VALUES (?, ?, '张伟', 'male', '1990-05-17', '北京市朝阳区建国路 88 号', ?, ?, ?, "
            "'active', '2025-03-01T10:00:00Z', '2025-04-12T08:30:00Z')",
            [target_profile(t, i == 0) for i, t in enumerate(targets)],
        )
        conn.executemany(
            "INSERT INTO systems (id, name, kind, owner, country, contract, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, *system, "2025-01-01T00:00:00Z") for i, system in enumerate(SYSTEMS, 1)],
        )
        # Everyone else: one data item and one consent, so the tables and their indexes have a register's size.
        conn.execute(
            "INSERT INTO data_items (user_key, system_key, category, field, source, collected_at, recorded_at) "
            f"SELECT id, 1, 'registration', 'phone', 'signup form', created_at, ? FROM users WHERE id NOT IN ({marks}) ORDER BY id",
            (RECORDED, *targets),
        )
        conn.execute(
            "INSERT INTO consents (user_key, code, action, at, method, recorded_at) "
            f"SELECT id, 'service', 'grant', created_at, 'signup form', ? FROM users WHERE id NOT IN ({marks}) ORDER BY id",
            (RECORDED, *targets),
        )
        conn.executemany(
            "INSERT INTO data_items (user_key, system_key, category, field, source, collected_at, value, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(t, *item, RECORDED) for t in targets for item in INVENTORY],
        )
        conn.executemany(
            "INSERT INTO consents (user_key, code, action, at, method, policy_version, recorded_at) VALUES (?, ?, ?, ?, ?, '1.0', ?)",
            [(t, *consent, RECORDED) for t in targets for consent in CONSENT_HISTORY],
        )
        conn.executemany(
            "INSERT INTO requests (user_key, kind, status, received_at, via, requester, due_on, verified_at, verified_by, "
            "verify_method, closed_at, closed_by, reason, created_at) VALUES (?, ?, ?, ?, 'email', 'self', ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row
                for t in targets
                for row in (
                    (t, "access", "completed", "2025-10-01T09:00:00Z", "2025-10-16", "2025-10-01T10:00:00Z", "cs-agent-01",
                     "phone callback", "2025-10-03T15:00:00Z", "cs-agent-01", "answered with a json export",
                     "2025-10-01T09:00:00Z"),
                    (t, "correction", "open", "2026-03-01T09:00:00Z", "2026-03-16", None, None, None, None, None, None,
                     "2026-03-01T09:00:00Z"),
                )
            ],
        )
        conn.execute("COMMIT")
        print(f"  inserted {n_users:,} users, {len(SYSTEMS)} systems, data items and consents in "
              f"{time.perf_counter() - start:.1f} s (untimed)")

        start = time.perf_counter()
        at = time_pool(rng, 200_000, 1767225600, 365 * 86400)  # 2026
        # The targets' events, scattered through the log: position -> target, user_events each.
        picked = rng.sample(range(n_events), user_events * len(targets))
        mine = {position: targets[i // user_events] for i, position in enumerate(picked)} if user_events else {}
        others = n_users - len(targets)
        choices, random_ = rng.choices, rng.random
        conn.execute("BEGIN IMMEDIATE")
        for first in range(0, n_events, BLOCK):
            size = min(BLOCK, n_events - first)
            keys = [int(random_() * others) + 1 for _ in range(size)]
            for t in skip:  # anyone but a target: ascending, so k lands on the k-th non-target key
                keys = [k + 1 if k >= t else k for k in keys]
            for i in range(first, first + size):
                owner = mine.get(i)
                if owner is not None:
                    keys[i - first] = owner
            rows = zip(
                choices(at, k=size), choices(ACTORS, k=size), keys, choices(CATEGORY_SETS, k=size),
                choices(PURPOSES, (40, 30, 20, 10), k=size), choices(("view", "use"), k=size),
                choices(BASES, (59, 38, 3), k=size), [f"e{i + 1}" for i in range(first, first + size)],
            )
            conn.executemany(
                "INSERT INTO access_log (at, actor, user_key, categories, purpose, action, basis, source, event_id, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'bench', ?, ?)",
                (row + (RECORDED,) for row in rows),
            )
            if (first + size) % TRANSACTION == 0 and first + size < n_events:
                conn.execute("COMMIT")
                conn.execute("BEGIN IMMEDIATE")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"  inserted {n_events:,} access events in {time.perf_counter() - start:.1f} s (untimed)")
        counts = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("users", "data_items", "consents", "access_log", "requests")}
        counts["target events"] = conn.execute(
            f"SELECT count(*) FROM access_log WHERE user_key IN ({marks})", targets).fetchone()[0]
        return counts
    finally:
        conn.close()


def raw_connection(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(db), isolation_level=None)
    for pragma in RAW_PRAGMAS:
        conn.execute(pragma)
    return conn


def raw_export(conn: sqlite3.Connection, uid: str) -> dict[str, list]:
    """The rows `export` reads, fetched with plain SQL: no dicts, no JSON."""
    config = conn.execute("SELECT key, value FROM config").fetchall()
    person = conn.execute(
        "SELECT id, user_id, name, gender, birth_date, address, phone, email, id_number, contact, status, created_at, "
        "updated_at, cancelled_at, born, sex FROM users WHERE user_id = ?", (uid,)).fetchall()
    key = person[0][0]
    return {
        "config": config,
        "person": person,
        "inventory": conn.execute(
            "SELECT d.category, d.field, s.name, s.kind, s.country, s.contract, d.source, d.collected_at, d.value "
            "FROM data_items d JOIN systems s ON s.id = d.system_key WHERE d.user_key = ? ORDER BY d.id", (key,)).fetchall(),
        "consents": conn.execute(
            "SELECT id, code, action, at, method, evidence, signal, guardian_name, guardian_relation, written_consent, "
            "policy_version, recorded_at FROM consents WHERE user_key = ? ORDER BY at, id", (key,)).fetchall(),
        "access": conn.execute(
            "SELECT at, actor, categories, purpose, action, basis, source FROM access_log WHERE user_key = ? ORDER BY at, id",
            (key,)).fetchall(),
        "requests": conn.execute("SELECT * FROM requests WHERE user_key = ? ORDER BY id", (key,)).fetchall(),
    }


def check_export(document: dict, raw: dict[str, list], uid: str, what: str) -> None:
    """The export holds exactly the rows the raw queries read, in the same order."""
    problems = []
    if document.get("about", {}).get("user_id") != uid or document.get("person", {}).get("user_id") != uid:
        problems.append("about/person name another user")
    for section in ("inventory", "consents", "access", "requests"):
        if len(document.get(section, [])) != len(raw[section]):
            problems.append(f"{section}: {len(document.get(section, []))} rows, raw {len(raw[section])}")
    exported = [(e["at"], e["actor"], ",".join(e["categories"]), e["purpose"]) for e in document.get("access", [])]
    if exported != [row[:4] for row in raw["access"]]:
        problems.append("access rows differ from the raw ones (values or order)")
    if [c["at"] for c in document.get("consents", [])] != [row[3] for row in raw["consents"]]:
        problems.append("consent rows differ from the raw ones (values or order)")
    if problems:
        sys.exit(f"{what} is wrong: " + "; ".join(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the register (default 1,000,000)")
    parser.add_argument("--events", type=int, default=10_000_000, help="access events in the register (default 10,000,000)")
    parser.add_argument("--user-events", type=int, default=1_000, help="of those, the exported user's (default 1,000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds of each, interleaved (default 7)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n_users, n_events, user_events = args.users, args.events, args.user_events
    if n_users < 2 or not 0 <= user_events <= n_events:
        parser.error("need --users >= 2 and 0 <= --user-events <= --events")
    target = n_users // 2 + 1
    uid = user_id(target)

    pipolicy, how = launcher()
    workdir, env = workspace("export")
    for name in [k for k in os.environ if k.startswith("PIPOLICY_")]:
        del os.environ[name]  # the in-process export sees the same environment as the child
    os.environ["PIPOLICY_HOME"] = env["PIPOLICY_HOME"]
    try:
        print(f"pipolicy export (JSON) of one user vs raw SQL reads: {user_events:,} of {n_events:,} events, "
              f"{n_users:,} users, {args.repeat} interleaved round(s), median")
        print(environment())
        print(f"launcher: {how}")

        # Set-up, untimed.
        reg_path, key = workdir / "register.db", workdir / "register.key"
        subprocess.run([*pipolicy, "init", "--db", str(reg_path), "--key-file", str(key), "--format", "json"],
                       env=env, check=True, capture_output=True)
        start = time.perf_counter()
        counts = build(reg_path, n_users, n_events, target, user_events)
        print(f"  set-up took {time.perf_counter() - start:.1f} s (untimed), register {reg_path.stat().st_size / 1e6:,.1f} MB: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        if counts["access_log"] != n_events or counts["target events"] != user_events:
            sys.exit(f"set-up is wrong: {counts}")

        from pipolicy_cli import export, users
        from pipolicy_cli.register import Register

        reg = Register.open(reg_path)
        raw = raw_connection(reg_path)
        try:
            expected = raw_export(raw, uid)
            buffer = io.StringIO()
            export.write_json(reg, users.find(reg, uid), buffer)
            check_export(json.loads(buffer.getvalue()), expected, uid, "in-process export")
            print(f"  export JSON of {uid}: {len(buffer.getvalue()) / 1e3:,.1f} kB; raw reads: "
                  + ", ".join(f"{k} {len(v):,}" for k, v in expected.items()))

            with open(os.devnull, "w", encoding="utf-8") as devnull:
                def project() -> None:
                    export.write_json(reg, users.find(reg, uid), devnull)

                def baseline() -> None:
                    raw_export(raw, uid)

                samples = interleaved({"project": project, "baseline": baseline}, repeat=args.repeat)
        finally:
            raw.close()
            reg.close()
        project_s, baseline_s = statistics.median(samples["project"]), statistics.median(samples["baseline"])
        print(f"  export.write_json: median {project_s * 1e3:8.1f} ms  spread {spread(samples['project'])}")
        print(f"  raw SQL reads:     median {baseline_s * 1e3:8.1f} ms  spread {spread(samples['baseline'])}")

        # Context only: the whole command, a fresh process (start-up, audit event, JSON to a file), timed once
        # after one untimed run (the first child after the set-up pays cold imports). Its peak memory is not
        # shown: Linux carries the parent's RSS at exec into the child's ru_maxrss, so it would be this process's.
        command = [*pipolicy, "export", uid, "--db", str(reg_path), "--format", "json"]
        for name in ("cli-export-warmup", "cli-export"):
            seconds, _, stdout = measure(name, command, env, workdir)
            check_export(json.loads(stdout), expected, uid, "`pipolicy export`")
        print(f"  context: `pipolicy export {uid} --db REG --format json`, a fresh process, once (after one untimed run): "
              f"{seconds * 1e3:.1f} ms, {len(stdout) / 1e3:,.1f} kB")

        report([at_most(f"export of one user ({user_events:,} events) as JSON", project_s, baseline_s, TARGET)])
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
