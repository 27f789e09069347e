"""Start-up time of the `pipolicy` command against a bare `python -c pass`.

Every command runs as a fresh process with the same interpreter, interleaved
(baseline, --version, --help, status, baseline, ...), and the median of each is
compared with the baseline's median in the same run.

    python tests/bench/bench_startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import Row, at_most, environment, interleaved, report, spread

TARGETS = {"--version": 3.0, "--help": 10.0, "status": 15.0}


def launcher() -> tuple[list[str], str]:
    """The installed console script next to this interpreter, else `python -m pipolicy_cli`."""
    script = Path(sys.executable).parent / ("pipolicy.exe" if os.name == "nt" else "pipolicy")
    if script.exists():
        return [str(script)], str(script)
    return [sys.executable, "-m", "pipolicy_cli"], f"{sys.executable} -m pipolicy_cli"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each command (default 15)")
    args = parser.parse_args()

    pipolicy, how = launcher()
    with tempfile.TemporaryDirectory(prefix="pipolicy-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIPOLICY_")}
        env["PIPOLICY_HOME"] = home
        db, key = Path(home, "bench.db"), Path(home, "bench.key")
        made = subprocess.run(
            [*pipolicy, "init", "--db", str(db), "--key-file", str(key), "--format", "json"],
            env=env, capture_output=True, text=True,
        )
        if made.returncode != 0:
            sys.exit(f"pipolicy init failed (exit {made.returncode}):\n{made.stderr}")

        commands = {
            "baseline": [sys.executable, "-c", "pass"],
            "--version": [*pipolicy, "--version"],
            "--help": [*pipolicy, "--help"],
            "status": [*pipolicy, "status", "--format", "json", "--db", str(db)],
        }
        for name, cmd in commands.items():  # check once that each works before timing it
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{name}: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")

        def run(cmd: list[str]):
            # stdout and stderr piped, as a script or a pager would read them
            return lambda: subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)

        samples = interleaved({name: run(cmd) for name, cmd in commands.items()}, repeat=args.repeat, warmup=1)

    print(f"pipolicy start-up vs `python -c pass`: {args.repeat} runs each, interleaved, median")
    print(environment())
    print(f"launcher: {how}")
    for name, values in samples.items():
        print(f"  {name:<10} median {statistics.median(values) * 1e3:7.1f} ms  spread {spread(values)}")
    base = statistics.median(samples["baseline"])
    rows: list[Row] = [
        at_most("pipolicy --version", statistics.median(samples["--version"]), base, TARGETS["--version"]),
        at_most("pipolicy --help", statistics.median(samples["--help"]), base, TARGETS["--help"]),
        at_most("pipolicy status --format json", statistics.median(samples["status"]), base, TARGETS["status"]),
    ]
    report(rows)


if __name__ == "__main__":
    main()
