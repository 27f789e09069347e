"""Run every benchmark in tests/bench/ and print one table of all their rows.

Each script runs as a child process (this interpreter, so the same installed
pipolicy) with the sizes of the chosen scale; its own output goes to stderr as
it runs, and its rows come back as JSON through the file named by
PIPOLICY_BENCH_JSON (written by `_common.report`). The table on stdout has a
row per measurement: operation, project, baseline, ratio, peak memory, target,
met; then "N/M targets met".

A missed target is not a failure. A script that fails (exits non-zero, or
reports nothing) shows as a FAILED row with its exit code and the last line of
its stderr, and the others still run; the exit status is then 1, else 0.

Scales:
  small  the sizes in tests/bench/README.md's examples, a few minutes on 2 cores
  full   the scripts' defaults, the sizes the issues set (1,000,000 users,
         10,000,000 access events, 1,000,000 e-mail notices): about two hours
         on 2 cores, and up to ~16 GB of free disk at a time (bench_draft.py)

    python tests/bench/run.py [--scale small|full] [--only NAME ...] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from _common import BENCH_JSON, Row, environment, targets_met, text_table

HERE = Path(__file__).resolve().parent

# name -> the options of tests/bench/bench_NAME.py at each scale (full: the scripts' defaults)
SCRIPTS: dict[str, dict[str, list[str]]] = {
    "startup": {"small": [], "full": []},
    "audit": {"small": [], "full": []},
    "user_import": {"small": ["--users", "200000"], "full": []},
    "consent_check": {"small": [], "full": []},
    "access": {"small": ["--users", "100000", "--events", "1000000"], "full": []},
    "export": {"small": ["--users", "20000", "--events", "200000", "--repeat", "3"], "full": []},
    "erase": {"small": ["--users", "20000", "--events", "200000", "--targets", "4"], "full": []},
    "sweep": {"small": ["--users", "20000", "--events", "200000", "--repeat", "3"], "full": []},
    "draft": {"small": ["--users", "20000"], "full": []},
}

HEADERS = ("operation", "project", "baseline", "ratio", "peak memory", "target", "met")
TEXT_COLUMNS = {0, 5, 6}  # left-aligned; the others are numbers


@dataclass
class ScriptResult:
    """What one benchmark script gave back."""

    name: str
    exit_code: int
    rows: list[Row] = field(default_factory=list)
    stderr_last_line: str = ""
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.exit_code != 0 or not self.rows


def script_path(name: str) -> Path:
    return HERE / f"bench_{name}.py"


def command(name: str, scale: str) -> list[str]:
    return [sys.executable, str(script_path(name)), *SCRIPTS[name][scale]]


def last_line(text: str, limit: int = 160) -> str:
    """The last non-blank line, cut to `limit` characters (it goes in a table cell)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def run_script(name: str, scale: str, workdir: Path) -> ScriptResult:
    """Run one script, its stdout passed on to this process's stderr, and read back its rows."""
    json_path, err_path = workdir / f"{name}.json", workdir / f"{name}.err"
    cmd = command(name, scale)
    print(f"\n=== {shlex.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with open(err_path, "wb") as err:
        code = subprocess.run(cmd, env={**os.environ, BENCH_JSON: str(json_path)}, stdout=sys.stderr, stderr=err).returncode
    seconds = time.perf_counter() - start
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    if stderr:
        print(stderr, end="" if stderr.endswith("\n") else "\n", file=sys.stderr)
    rows = [Row(**row) for row in json.loads(json_path.read_text(encoding="utf-8"))["rows"]] if json_path.exists() else []
    print(f"=== {script_path(name).name}: exit {code}, {len(rows)} row(s), {duration(seconds)}", file=sys.stderr, flush=True)
    return ScriptResult(name, code, rows, last_line(stderr), seconds)


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def cells(results: Sequence[ScriptResult]) -> list[tuple[str, ...]]:
    """The table's cells: a line per row, and a FAILED line for each script that failed."""
    lines = []
    for result in results:
        for row in result.rows:
            lines.append((
                row.operation,
                row.project,
                row.baseline,
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                "-" if row.peak_mb is None else f"{row.peak_mb:.1f} MB",
                row.target,
                "-" if row.met is None else ("yes" if row.met else "NO"),
            ))
        if result.failed:
            why = f"exit {result.exit_code}" if result.exit_code else "no rows reported"
            said = f": {result.stderr_last_line}" if result.stderr_last_line else ""
            lines.append((f"{script_path(result.name).name} FAILED ({why}){said}", "-", "-", "-", "-", "-", "FAILED"))
    return lines


def summary(results: Sequence[ScriptResult]) -> str:
    """ "N/M targets met", and which scripts failed if any did."""
    text = targets_met(row for result in results for row in result.rows)
    failed = [script_path(result.name).name for result in results if result.failed]
    if failed:
        text += f"; {len(failed)} of {len(results)} scripts failed: {', '.join(failed)}"
    return text


def times(results: Sequence[ScriptResult]) -> str:
    return "run times: " + ", ".join(f"{result.name} {duration(result.seconds)}" for result in results)


def render_text(results: Sequence[ScriptResult], scale: str, env_line: str, total_s: float) -> str:
    lines = [f"pipolicy benchmarks, {scale} scale, {len(results)} script(s), {duration(total_s)}", env_line, ""]
    lines += text_table(HEADERS, cells(results), TEXT_COLUMNS)
    lines += ["", summary(results), times(results)]
    return "\n".join(lines)


def markdown_cell(text: str) -> str:
    return text.strip().replace("|", "\\|") or "-"


def render_markdown(results: Sequence[ScriptResult], scale: str, env_line: str, total_s: float) -> str:
    align = ["---" if i in TEXT_COLUMNS else "---:" for i in range(len(HEADERS))]
    lines = [
        f"{scale.capitalize()} scale (`python tests/bench/run.py --scale {scale}`), {len(results)} script(s), "
        f"{duration(total_s)}; {env_line}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(markdown_cell(c) for c in line) + " |" for line in cells(results)),
        "",
        f"{summary(results)}; {times(results)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=("small", "full"), default="small",
                        help="small: a few minutes (default); full: the issues' sizes, about two hours and ~16 GB of disk")
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), metavar="NAME",
                        help=f"run only these scripts, of: {', '.join(SCRIPTS)}")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the README)")
    args = parser.parse_args()

    names = [name for name in SCRIPTS if not args.only or name in args.only]
    results: list[ScriptResult] = []
    start = time.perf_counter()
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="pipolicy-bench-run-") as tmp:
        try:
            for name in names:
                results.append(run_script(name, args.scale, Path(tmp)))
        except KeyboardInterrupt:
            interrupted = True  # the running child got the same SIGINT; show what finished
    render = render_markdown if args.markdown else render_text
    print(render(results, args.scale, environment(), time.perf_counter() - start))
    if interrupted:
        sys.exit(130)
    sys.exit(1 if any(result.failed for result in results) else 0)


if __name__ == "__main__":
    main()
