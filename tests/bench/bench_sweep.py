"""`pipolicy retention sweep` deleting half of the access log against a raw SQL DELETE of the same rows.

Set-up, untimed: a register (`pipolicy init`, which loads the default rules:
`access_log` keep "1 year", action delete; the other rules find nothing, the
register has no inventory, requests or tasks), N synthetic users imported
from NDJSON (`pipolicy user import`), and E synthetic access events imported
from NDJSON (`pipolicy access import`, the fields of bench_access.py) whose
times span the two years before AS_OF: event k of E lies in the k-th E-th
of that span (so ids follow time, as in a log appended night after night;
`--shuffled` draws every time at random instead, so the old rows are
scattered over the whole table), and exactly the first half are older than
the rule's cutoff, AS_OF - 1 year. The count is checked against
`retention sweep --dry-run`. The register, checkpointed, is the template:
each round copies it for every run, one REG per --batch-size for pipolicy and
RAW for the baseline. `pipolicy init` leaves a register auto_vacuum=NONE (it
switches to WAL before it asks for INCREMENTAL, which then has no effect);
`--incremental` converts the template first (untimed), as a register that
was created right, or already swept once since the sweep's first VACUUM
converts it, would be.

`--template PATH` skips the building (about 16 minutes at 10,000,000 events):
PATH, a register built by an earlier run (`--keep`), maybe at an older
migration, is copied, `pipolicy init --db COPY` brings it to the current
schema, and, unless it already is, it is converted to auto_vacuum=INCREMENTAL
(`PRAGMA auto_vacuum=INCREMENTAL; VACUUM`, untimed), as `pipolicy init` now
creates registers; N and E are then counted in it (--users and --events are
ignored). Its key file must still be where its settings say.

Timed, each a fresh process, wall clock and peak memory (the larger of
`os.wait4`'s ru_maxrss and the summed RSS of the process tree, sampled):

- project: `pipolicy retention sweep --yes --as-of AS_OF --db REG --format
  json [--batch-size N]`: its batches, each a transaction with its audit
  event, then the carrying out of requests, the WAL checkpoint and, as over
  a quarter of the file is now free, the giving back of free pages
  (`incremental_vacuum` in 64 MB steps, at most 256 MB a run, sweep.py's
  GIVE_BACK_*; or on an auto_vacuum=NONE register a full VACUUM, whose copy
  is built in memory under temp_store=MEMORY). The summary's count for `table access_log:
  delete` must equal the old rows, and REG must hold exactly the others
  afterwards. Each run's line shows the file's size and auto_vacuum after it.
- baseline: baseline_sweep.py on RAW: the register's pragmas, `DELETE FROM
  access_log WHERE at < CUTOFF` in one transaction, `PRAGMA
  wal_checkpoint(TRUNCATE)`. No vacuum.
- with `--vacuum-baseline`, for context: the same followed by giving every
  free page back at once (`incremental_vacuum` to the end, or a full VACUUM
  under auto_vacuum=NONE) and a second checkpoint: what a sweep giving it all
  back in one run would cost.

Runs alternate order over --repeat rounds; the median is reported.

Targets:
- rate: project rows deleted per second >= 0.8x the baseline's, for each
  --batch-size asked (default: the sweep's own, sized from each batch's rate);
- memory flat: the project's peak memory must not grow with E. Every
  register connection caps SQLite's page cache at 256 MiB (cache_size
  -262144, register/connection.py), which a sweep over millions of rows fills,
  and so does the baseline; "flat" is therefore a bound independent of E:
  peak < 256 MiB + 64 MB for the interpreter and pipolicy's imports = 332 MB
  (the largest over the --batch-size runs). Anything held per row, or a copy
  of the register in memory, exceeds it at 10,000,000 events. The baseline's
  peak (same cache cap) is printed beside it.

`--batch-size 0` stands for the sweep's own (no --batch-size passed), so one
invocation may time it beside fixed sizes.

    python tests/bench/bench_sweep.py [--users 1000000] [--events 10000000] [--repeat 1] [--batch-size N ...] [--shuffled] [--incremental] [--template PATH] [--vacuum-baseline] [--keep]
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, at_least, environment, leave, measure, memory_below, rate, report, workspace
from bench_access import ACTORS, BASES, BASIS_WEIGHTS, CATEGORY_SETS, CATEGORY_WEIGHTS, PURPOSE_WEIGHTS, PURPOSES, count_events
from bench_startup import launcher
from bench_user_import import count_users, write_users

RATE_TARGET = 0.8  # project rows/s over baseline rows/s
CACHE_MB = 262144 * 1024 / 1e6  # the page cache every register connection may fill (register/connection.py)
MEMORY_TARGET_MB = round(CACHE_MB + 64)  # ... plus the interpreter and pipolicy's imports
BASELINE = Path(__file__).with_name("baseline_sweep.py")
AS_OF = "2026-07-01T00:00:00Z"
CUTOFF = "2025-07-01T00:00:00Z"  # AS_OF - 1 year, the access_log rule's keep
LABEL = "table access_log: delete"  # the rule's count in the sweep's summary
START = calendar.timegm(time.strptime("2024-07-01T00:00:00Z", "%Y-%m-%dT%H:%M:%SZ"))
SPAN = 2 * 365 * 86400  # 2024-07-01 .. 2026-07-01: no 29 February, each year 365 days


def write_events(path: Path, n_events: int, n_users: int, shuffled: bool, seed: int = 11) -> None:
    """E events over the two years before AS_OF, one JSON object a line, streamed.

    In order (the default), event k gets a time in [START + SPAN*k/E, START + SPAN*(k+1)/E): the first
    half lie before CUTOFF. Shuffled, every time is uniform over the span (about half before CUTOFF)."""
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
                k = first + i
                offset = randrange(SPAN) if shuffled else (SPAN * k + randrange(SPAN)) // n_events
                at = strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(START + offset))
                lines.append(
                    f'{{"at": "{at}", "actor": "{actors[i]}", "user_id": "U{randrange(1, n_users + 1):08d}", '
                    f'"categories": "{cats[i]}", "purpose": "{purposes[i]}", '
                    f'"action": "{"view" if randrange(2) else "use"}", "basis": "{bases[i]}", '
                    f'"source": "bench", "event_id": "e{k + 1}"}}\n'
                )
            out.write("".join(lines))


def old_events(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT count(*) FROM access_log WHERE at < ?", (CUTOFF,)).fetchone()[0]
    finally:
        conn.close()


def checkpoint(db: Path) -> None:
    """Fold the WAL into the file, so a plain copy of it is the whole register."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            sys.exit(f"could not checkpoint {db}")
    finally:
        conn.close()


def describe(db: Path) -> str:
    wal = Path(f"{db}-wal")
    conn = sqlite3.connect(str(db))
    try:
        (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    finally:
        conn.close()
    return (f"file {db.stat().st_size / 1e6:,.0f} MB, WAL {wal.stat().st_size / 1e6 if wal.exists() else 0:,.1f} MB, "
            f"auto_vacuum {('none', 'full', 'incremental')[mode]}")


def make_incremental(db: Path) -> None:
    """auto_vacuum=INCREMENTAL, as register/store.py means a new register to be (and a first VACUUM leaves it)."""
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def auto_vacuum(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        conn.close()


def run(cmd: list[str], env: dict, what: str) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the register (default 1,000,000)")
    parser.add_argument("--events", type=int, default=10_000_000, help="access events, half of them old (default 10,000,000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each (default 1)")
    parser.add_argument("--batch-size", type=int, action="append",
                        help="passed to the sweep (default: the sweep's own, also asked for with 0); repeat it to time several, each its own row")
    parser.add_argument("--shuffled", action="store_true", help="times at random, not following the ids")
    parser.add_argument("--vacuum-baseline", action="store_true",
                        help="also time the baseline followed by giving every free page back (baseline_sweep.py --vacuum), for context")
    parser.add_argument("--incremental", action="store_true",
                        help="make the register auto_vacuum=INCREMENTAL first (untimed; `pipolicy init` leaves it NONE)")
    parser.add_argument("--template", type=Path, metavar="PATH",
                        help="copy this register (built by an earlier run) instead of building one; migrated and made "
                             "auto_vacuum=INCREMENTAL, untimed; --users and --events are then counted in it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n_users, n = args.users, args.events

    pipolicy, how = launcher()
    workdir, env = workspace("sweep")
    try:
        if args.template:
            template = workdir / "register.db"
            start = time.perf_counter()
            shutil.copy2(args.template, template)
            run([*pipolicy, "init", "--db", str(template), "--format", "json"], env, "pipolicy init (migrating the template)")
            checkpoint(template)
            converted = auto_vacuum(template) != 2
            if converted:
                make_incremental(template)
            n_users, n = count_users(template), count_events(template)
            prepared = (f"  copied {args.template}, migrated it with pipolicy init{' and made it auto_vacuum=INCREMENTAL' if converted else ''} "
                        f"in {time.perf_counter() - start:.1f} s (untimed)")
        batch = (f"--batch-size {', '.join(f'{b:,}' if b else 'default' for b in args.batch_size)}" if args.batch_size
                 else "default batch size")
        print(f"pipolicy retention sweep vs raw DELETE: {n:,} access events ({'shuffled' if args.shuffled else 'in time order'}), "
              f"{n_users:,} users, {batch}, {args.repeat} run(s) each, median")
        print(environment())
        print(f"launcher: {how}")

        # Set-up, untimed.
        if args.template:
            old = old_events(template)
            print(f"{prepared}; {old:,} before {CUTOFF}; {describe(template)}")
        else:
            template, key = workdir / "register.db", workdir / "register.key"
            run([*pipolicy, "init", "--db", str(template), "--key-file", str(key), "--format", "json"], env, "pipolicy init")
            users_file = workdir / "users.ndjson"
            start = time.perf_counter()
            write_users(users_file, n_users)
            run([*pipolicy, "user", "import", str(users_file), "--db", str(template), "--format", "json"], env, "user import")
            if count_users(template) != n_users:
                sys.exit(f"user import stored {count_users(template):,} users, expected {n_users:,}")
            users_file.unlink()
            print(f"  imported {n_users:,} users with pipolicy user import in {time.perf_counter() - start:.1f} s (untimed)")
            events_file = workdir / "events.ndjson"
            start = time.perf_counter()
            write_events(events_file, n, n_users, args.shuffled)
            written = time.perf_counter() - start
            start = time.perf_counter()
            run([*pipolicy, "access", "import", str(events_file), "--db", str(template), "--format", "json"], env, "access import")
            if count_events(template) != n:
                sys.exit(f"access import stored {count_events(template):,} events, expected {n:,}")
            events_file.unlink()
            checkpoint(template)
            if args.incremental:
                make_incremental(template)
            old = old_events(template)
            print(f"  wrote {n:,} events in {written:.1f} s, imported them with pipolicy access import in "
                  f"{time.perf_counter() - start:.1f} s (untimed); {old:,} before {CUTOFF}; {describe(template)}")
        plan = json.loads(run([*pipolicy, "retention", "sweep", "--dry-run", "--as-of", AS_OF, "--db", str(template),
                               "--format", "json"], env, "retention sweep --dry-run"))
        if plan["counts"].get(LABEL) != old or any(v for k, v in plan["counts"].items() if k != LABEL):
            sys.exit(f"the dry run does not reach exactly the {old:,} old events: {plan['counts']}")

        sizes_asked = [b or None for b in args.batch_size or [0]]  # None (asked as 0): the sweep's own default
        names = [f"project {b}" if b else "project" for b in sizes_asked]
        baselines = ["baseline", "baseline+vacuum"] if args.vacuum_baseline else ["baseline"]
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in [*names, *baselines]}
        for i in range(args.repeat):
            copies = {name: workdir / f"{name.replace(' ', '-')}-{i}.db" for name in samples}
            for copy in copies.values():
                shutil.copy2(template, copy)  # checkpointed and closed: the file is the whole register
            runs = {
                name: [*pipolicy, "retention", "sweep", "--yes", "--as-of", AS_OF, "--db", str(copies[name]),
                       "--format", "json", *(["--batch-size", str(b)] if b else [])]
                for name, b in zip(names, sizes_asked)
            }
            runs["baseline"] = [sys.executable, str(BASELINE), str(copies["baseline"]), CUTOFF]
            if args.vacuum_baseline:
                runs["baseline+vacuum"] = [sys.executable, str(BASELINE), str(copies["baseline+vacuum"]), CUTOFF, "--vacuum"]
            order = list(runs) if i % 2 == 0 else list(reversed(runs))
            for name in order:
                seconds, mb, stdout = measure(f"sweep-{name.replace(' ', '-')}-{i}", runs[name], env, workdir)
                samples[name].append((seconds, mb))
                result = json.loads(stdout)
                db = copies[name]
                left = count_events(db)
                project = name not in baselines
                deleted = result["counts"][LABEL] if project else result["deleted"]
                if deleted != old or left != n - old or (project and result["state"] != "done"):
                    sys.exit(f"{name} is wrong: deleted {deleted:,}, {left:,} events left, expected {old:,} and "
                             f"{n - old:,}: {stdout[-2000:]}")
                note = f"; attention: {result['attention']}" if project and result["attention"] and i == 0 else ""
                print(f"  run {i + 1} {name:<15} {seconds:8.2f} s  {rate(old / seconds, ' rows/s'):>16}  "
                      f"peak memory {mb:7.1f} MB  {describe(db)}{note}")
                if not args.keep:
                    for path in workdir.glob(f"{db.name}*"):
                        path.unlink()  # free the disk as soon as it is checked

        def median(name: str, index: int) -> float:
            return statistics.median(s[index] for s in samples[name])

        baseline_rate, baseline_mb = old / median("baseline", 0), median("baseline", 1)
        rows = [
            at_least(f"sweep deleting {old:,} of {n:,} events" + (f", --batch-size {b:,}" if b else ""),
                     old / median(name, 0), baseline_rate, RATE_TARGET, " rows/s", peak_mb=median(name, 1))
            for name, b in zip(names, sizes_asked)
        ]
        if args.vacuum_baseline:
            vacuum_rate = old / median("baseline+vacuum", 0)
            rows += [Row("  the same against raw DELETE + vacuum (context)" + (f", --batch-size {b:,}" if b else ""),
                         rate(old / median(name, 0), " rows/s"), rate(vacuum_rate, " rows/s"),
                         old / median(name, 0) / vacuum_rate, "-", None, old / median(name, 0), vacuum_rate, "rows/s",
                         median(name, 1)) for name, b in zip(names, sizes_asked)]
        project_mb = max(median(name, 1) for name in names)
        rows.append(memory_below("peak memory of the sweep" + (" (largest)" if len(names) > 1 else ""), project_mb,
                                 baseline_mb, MEMORY_TARGET_MB))
        report(rows)
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
