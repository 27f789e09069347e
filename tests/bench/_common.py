"""Shared helpers for the benchmarks in tests/bench/.

Timing is `time.perf_counter`; every measurement is repeated and the median is
reported (the machine is noisy). Nothing here ever fails on timing: `report()`
prints a table with a "met" column and the scripts exit 0.

When the environment variable PIPOLICY_BENCH_JSON names a file (when this module
is imported), `report()` also writes the rows there as JSON (`{"rows": [Row as
a dict, ...]}`), for tests/bench/run.py to collect; what the script prints does
not change.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence


def workspace(name: str) -> tuple[Path, dict[str, str]]:
    """A fresh temporary folder, and an environment without the caller's PIPOLICY_* whose home is in it."""
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix=f"pipolicy-bench-{name}-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPOLICY_")}
    env["PIPOLICY_HOME"] = str(workdir / "home")
    return workdir, env


def leave(workdir: Path, keep: bool) -> None:
    """Remove the folder, or say where it was kept (--keep)."""
    if keep:
        print(f"kept {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes (a collection runs first, outside the timing)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], object], repeat: int = 7, warmup: int = 1) -> float:
    """Median seconds over `repeat` calls of `fn`, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(repeat))


def interleaved(cases: dict[str, Callable[[], object]], repeat: int = 7, warmup: int = 1) -> dict[str, list[float]]:
    """Time several cases round-robin (A B C A B C ...) so drift and noise hit them alike.

    Returns every sample per case; take `statistics.median` of each list.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            samples[name].append(timed(fn))
    return samples


def spread(samples: Sequence[float]) -> str:
    """min..max of the samples, in ms, to show how noisy a measurement was."""
    return f"{min(samples) * 1e3:.1f}..{max(samples) * 1e3:.1f} ms"


BENCH_JSON = "PIPOLICY_BENCH_JSON"
# Read at import: the scripts drop every PIPOLICY_* variable from os.environ
# before they start pipolicy.
_json_path = os.environ.get(BENCH_JSON)


@dataclass
class Row:
    operation: str
    project: str  # already formatted, with its unit
    baseline: str
    ratio: float | None
    target: str  # e.g. "<= 3.0x", ">= 0.50x", ">= 300,000/s"
    met: bool | None
    # The same measurement as numbers, for the JSON hand-off: the project's and
    # the baseline's figure in `unit` ("ms", "rows/s", "MB", ...), and the peak
    # memory of the project's process tree where the row's operation ran in a
    # child that `measure` watched.
    project_value: float | None = None
    baseline_value: float | None = None
    unit: str | None = None
    peak_mb: float | None = None


def at_most(operation: str, project_s: float, baseline_s: float, limit: float, peak_mb: float | None = None) -> Row:
    """A time row: ratio = project / baseline, met when ratio <= limit."""
    ratio = project_s / baseline_s
    return Row(operation, ms(project_s), ms(baseline_s), ratio, f"<= {limit:g}x", ratio <= limit,
               project_s * 1e3, baseline_s * 1e3, "ms", peak_mb)


def at_least(operation: str, project_rate: float, baseline_rate: float, limit: float, unit: str = "/s",
             peak_mb: float | None = None) -> Row:
    """A throughput row: ratio = project / baseline, met when ratio >= limit."""
    ratio = project_rate / baseline_rate
    return Row(operation, rate(project_rate, unit), rate(baseline_rate, unit), ratio, f">= {limit:g}x", ratio >= limit,
               project_rate, baseline_rate, unit.strip(), peak_mb)


def memory_below(operation: str, project_mb: float, baseline_mb: float | None, limit_mb: float) -> Row:
    """A peak-memory row: met when the project's peak is under limit_mb (ratio = project / baseline, if any)."""
    return Row(operation, f"{project_mb:.1f} MB", "-" if baseline_mb is None else f"{baseline_mb:.1f} MB",
               None if baseline_mb is None else project_mb / baseline_mb, f"< {limit_mb:g} MB", project_mb < limit_mb,
               project_mb, baseline_mb, "MB", project_mb)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def rate(per_second: float, unit: str = "/s") -> str:
    return f"{per_second:,.0f}{unit}"


_reported: list[Row] = []


def report(rows: Iterable[Row], title: str | None = None) -> None:
    """Print the rows as a table: operation, project, baseline, ratio, target, met.

    With PIPOLICY_BENCH_JSON set, every row reported so far by this process is
    also written to that file (see the module's docstring)."""
    rows = list(rows)
    _reported.extend(rows)
    if _json_path:
        Path(_json_path).write_text(json.dumps({"rows": [asdict(row) for row in _reported]}, indent=1),
                                                encoding="utf-8")
    headers = ("operation", "project", "baseline", "ratio", "target", "met")
    cells = [
        (
            row.operation,
            row.project,
            row.baseline,
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
            row.target,
            "-" if row.met is None else ("yes" if row.met else "NO"),
        )
        for row in rows
    ]
    if title:
        print(f"\n{title}")
    for line in text_table(headers, cells, left={0, 4, 5}):
        print(line)
    print(f"\n{targets_met(rows)}" + (" (timings only; nothing fails)" if any(row.met is False for row in rows) else ""))


def targets_met(rows: Iterable[Row]) -> str:
    """ "N/M targets met", counting only the rows that have a target (context rows have met None)."""
    judged = [row.met for row in rows if row.met is not None]
    return f"{sum(judged)}/{len(judged)} targets met"


def text_table(headers: Sequence[str], cells: Sequence[Sequence[str]], left: set[int]) -> list[str]:
    """Lines of a plain-text table: a header, a rule, a line per row; the columns
    numbered in `left` are left-aligned (text), the others right-aligned (numbers)."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(c) for c in cells)]


def environment() -> str:
    """One line naming the interpreter, SQLite and machine, to print above the table."""
    return (
        f"python {platform.python_version()} ({sys.executable}), sqlite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus"
    )


def measure(name: str, cmd: list[str], env: dict, workdir: Path, *, ok: Iterable[int] = (0,),
            read_stdout: bool = True) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child, run with its output in
    workdir/NAME.out and NAME.err; exits unless its exit code is in `ok`.

    With `read_stdout=False` the stdout returned is "" (a large output stays in
    workdir/NAME.out, for the caller to stream)."""
    out_path, err_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        sampler = TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    stdout = out_path.read_text(encoding="utf-8") if read_stdout else ""
    if proc.returncode not in tuple(ok):
        if read_stdout:
            tail = stdout[-2000:]
        else:
            with open(out_path, "rb") as handle:
                handle.seek(max(0, out_path.stat().st_size - 2000))
                tail = handle.read().decode("utf-8", "replace")
        sys.exit(f"{name}: {' '.join(cmd)} exited {proc.returncode}:\n{tail}\n{err_path.read_text()[-4000:]}")
    # ru_maxrss (KiB) is the largest single process; with worker processes the
    # sum over the tree, sampled, is the honest figure: report the larger.
    return seconds, max(usage.ru_maxrss, sampler.peak_kb) / 1024, stdout


class TreeRss(threading.Thread):
    """Samples the summed resident memory of a process and its descendants."""

    def __init__(self, pid: int, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak_kb = pid, every, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(pid) for pid in _tree(self.pid)))


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
