"""`pipolicy user import` of N NDJSON users against a raw validate-and-insert baseline.

An NDJSON file of N synthetic users (tests/synthetic.py, distinct ID numbers)
is written first, untimed. Then, each as a fresh process timed wall-clock with
its peak memory: the larger of `os.wait4`'s ru_maxrss and the summed RSS of the
process and its workers, sampled twice a second:

1. `pipolicy user import FILE --db REG --format json` into a fresh register
   (`pipolicy init`, untimed); the output must say inserted == N, invalid == 0.
2. baseline_user_import.py: the same three validation libraries and one raw
   sqlite3 `executemany` in one transaction, same pragmas.
   Targets: project rows/s >= 0.8x baseline; project peak RSS < 150 MB.
3. baseline_user_import.py --no-validate: the raw insert alone (context).

Runs are interleaved over --repeat rounds and the median is reported.

    python tests/bench/bench_user_import.py [--users 1000000] [--repeat 1] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, at_least, environment, leave, measure, memory_below, rate, report, workspace
from bench_startup import launcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic import people  # noqa: E402

RATE_TARGET = 0.8  # project rows/s over baseline rows/s
MEMORY_TARGET_MB = 150
BASELINE = Path(__file__).with_name("baseline_user_import.py")


def write_users(path: Path, n: int) -> None:
    """N users, one JSON object a line, streamed: the parent stays small, so a
    child's peak RSS (which on Linux includes what it inherited at fork) is its own."""
    with open(path, "w", encoding="utf-8") as out:
        for person in people(n):
            out.write(json.dumps(person, ensure_ascii=False) + "\n")


def count_users(db: Path) -> int:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="users in the file (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs of each (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n = args.users

    pipolicy, how = launcher()
    workdir, env = workspace("import")
    try:
        print(f"pipolicy user import vs raw validate + executemany: {n:,} users, {args.repeat} run(s) each, median")
        print(environment())
        print(f"launcher: {how}")
        data = workdir / "users.ndjson"
        start = time.perf_counter()
        write_users(data, n)
        print(f"  wrote {data.stat().st_size / 1e6:,.1f} MB NDJSON in {time.perf_counter() - start:.1f} s (untimed)")

        samples: dict[str, list[tuple[float, float]]] = {"project": [], "baseline": [], "raw": []}
        for i in range(args.repeat):
            reg, key = workdir / f"register-{i}.db", workdir / f"register-{i}.key"
            subprocess.run([*pipolicy, "init", "--db", str(reg), "--key-file", str(key), "--format", "json"],
                           env=env, check=True, capture_output=True)
            runs = {
                "project": [*pipolicy, "user", "import", str(data), "--db", str(reg), "--format", "json"],
                "baseline": [sys.executable, str(BASELINE), str(data), str(workdir / f"baseline-{i}.db")],
                "raw": [sys.executable, str(BASELINE), str(data), str(workdir / f"raw-{i}.db"), "--no-validate"],
            }
            order = list(runs) if i % 2 == 0 else list(reversed(runs))
            for name in order:
                seconds, mb, stdout = measure(f"{name}-{i}", runs[name], env, workdir)
                samples[name].append((seconds, mb))
                print(f"  run {i + 1} {name:<8} {seconds:8.2f} s  {rate(n / seconds, ' rows/s'):>16}  peak RSS {mb:7.1f} MB")
                if name == "project":
                    result = json.loads(stdout)
                    in_register = count_users(reg)
                    if result.get("inserted") != n or result.get("invalid") != 0 or in_register != n:
                        sys.exit(f"project import is wrong: {result}, {in_register:,} rows in users, expected {n:,}")
                else:
                    assert json.loads(stdout)["inserted"] == n, stdout
            for path in workdir.glob(f"*-{i}.db*"):  # free the disk before the next round
                path.unlink()

        def median(name: str, index: int) -> float:
            return statistics.median(s[index] for s in samples[name])

        project_rate, baseline_rate, raw_rate = (n / median(name, 0) for name in ("project", "baseline", "raw"))
        project_mb, baseline_mb = median("project", 1), median("baseline", 1)
        for name in samples:
            print(f"  median {name:<8} {median(name, 0):8.2f} s  {rate(n / median(name, 0), ' rows/s'):>16}  "
                  f"peak RSS {median(name, 1):7.1f} MB")
        report([
            at_least(f"user import {n:,} NDJSON users", project_rate, baseline_rate, RATE_TARGET, " rows/s",
                     peak_mb=project_mb),
            memory_below("peak memory of user import", project_mb, baseline_mb, MEMORY_TARGET_MB),
            Row("raw insert without validation (context)", rate(project_rate, " rows/s"), rate(raw_rate, " rows/s"),
                project_rate / raw_rate, "-", None, project_rate, raw_rate, "rows/s", project_mb),
        ])
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
