"""tests/bench/run.py: the one table assembled from the scripts' JSON rows.

Fake rows and two tiny fake scripts stand in for the benchmarks; nothing here
times anything.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "bench"


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):
    """tests/bench/run.py as a module (it imports its sibling `_common`)."""
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", module)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def fake_results(run):
    Row = sys.modules["_common"].Row
    good = run.ScriptResult("user_import", 0, [
        Row("user import 200,000 NDJSON users", "11,219 rows/s", "8,904 rows/s", 1.26, ">= 0.8x", True,
            11219.0, 8904.0, "rows/s", 135.04),
        Row("peak memory of user import", "135.0 MB", "120.5 MB", 1.12, "< 150 MB", True, 135.04, 120.5, "MB", 135.04),
        Row("raw insert | no validation (context)", "11,219 rows/s", "78,780 rows/s", 0.14, "-", None),
    ], seconds=61.0)
    missed = run.ScriptResult("access", 0, [
        Row("access import 1,000,000 events", "17,641 events/s", "32,758 events/s", 0.45, ">= 0.5x", False),
    ], seconds=95.0)
    failed = run.ScriptResult("erase", 1, [], "set-up is wrong: {'users': 3}", seconds=2.5)
    silent = run.ScriptResult("sweep", 0, [], "", seconds=1.0)
    return [good, missed, failed, silent]


def test_cells_one_line_per_row_and_a_failed_line_per_failed_script(run):
    lines = run.cells(fake_results(run))
    assert lines[0] == ("user import 200,000 NDJSON users", "11,219 rows/s", "8,904 rows/s", "1.26x", "135.0 MB",
                        ">= 0.8x", "yes")
    assert lines[2][3:] == ("0.14x", "-", "-", "-")  # context: no peak measured, no target
    assert lines[3][-1] == "NO"
    assert lines[4] == ("bench_erase.py FAILED (exit 1): set-up is wrong: {'users': 3}", "-", "-", "-", "-", "-", "FAILED")
    assert lines[5][0] == "bench_sweep.py FAILED (no rows reported)" and lines[5][-1] == "FAILED"
    assert len(lines) == 6


def test_summary_counts_only_rows_with_a_target_and_names_failed_scripts(run):
    results = fake_results(run)
    assert run.summary(results) == "2/3 targets met; 2 of 4 scripts failed: bench_erase.py, bench_sweep.py"
    assert run.summary(results[:2]) == "2/3 targets met"


def test_text_table_is_aligned_with_environment_scale_and_times(run):
    text = run.render_text(fake_results(run), "small", "python 3.11, sqlite 3.40, 2 cpus", 219.4)
    lines = text.splitlines()
    assert lines[0] == "pipolicy benchmarks, small scale, 4 script(s), 3 min 39 s"
    assert lines[1] == "python 3.11, sqlite 3.40, 2 cpus"
    header, rule = lines[3], lines[4]
    assert header.split() == ["operation", "project", "baseline", "ratio", "peak", "memory", "target", "met"]
    # every column starts where its rule starts
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    assert len(starts) == 7
    first = lines[5]
    assert first.index("1.26x") + len("1.26x") == starts[4] - 2  # numbers right-aligned
    assert first.index(">= 0.8x") == starts[5]  # text left-aligned
    assert lines[-2] == "2/3 targets met; 2 of 4 scripts failed: bench_erase.py, bench_sweep.py"
    assert lines[-1] == "run times: user_import 1 min 01 s, access 1 min 35 s, erase 2.5 s, sweep 1.0 s"


def test_markdown_table_escapes_pipes_and_keeps_seven_columns(run):
    text = run.render_markdown(fake_results(run), "small", "python 3.11, 2 cpus", 60.0)
    lines = text.splitlines()
    assert lines[0].startswith("Small scale (`python tests/bench/run.py --scale small`), 4 script(s), 1 min 00 s;")
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| operation | project | baseline | ratio | peak memory | target | met |"
    assert table[1] == "|---|---:|---:|---:|---:|---|---|"
    assert len(table) == 2 + 6
    assert "| raw insert \\| no validation (context) |" in table[4]
    for line in table:
        assert line.replace("\\|", "").count("|") == 8
    assert lines[-1].startswith("2/3 targets met; 2 of 4 scripts failed")


def test_last_line_of_stderr_is_the_reason_shown(run):
    assert run.last_line("Traceback...\n  File x\nValueError: boom\n\n") == "ValueError: boom"
    assert run.last_line("") == ""
    assert len(run.last_line("x" * 500)) == 160


GOOD = """
from _common import at_least, memory_below, report
print("progress line")
report([at_least("fast thing", 200.0, 100.0, 0.5, " rows/s", peak_mb=12.5),
        at_least("slow thing", 10.0, 100.0, 0.5, " rows/s"),
        memory_below("peak memory of fast thing", 12.5, 10.0, 150)])
"""

BAD = """
import sys
print("set-up started")
sys.exit("set-up is wrong:\\n3 rows in users, expected 5")
"""


@pytest.fixture
def fake_scripts(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """bench_good.py (reports, one target missed) and bench_bad.py (fails) in place of the real scripts."""
    shutil.copy(BENCH / "_common.py", tmp_path / "_common.py")
    (tmp_path / "bench_good.py").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bench_bad.py").write_text(BAD, encoding="utf-8")
    monkeypatch.setattr(run, "HERE", tmp_path)
    monkeypatch.setattr(run, "SCRIPTS", {"good": {"small": [], "full": []}, "bad": {"small": [], "full": []}})
    return run


def test_main_collects_the_json_rows_and_fails_only_for_a_failed_script(fake_scripts, monkeypatch, capfd):
    monkeypatch.setattr(sys, "argv", ["run.py"])
    with pytest.raises(SystemExit) as exited:
        fake_scripts.main()
    assert exited.value.code == 1
    out, err = capfd.readouterr()
    assert "progress line" in err and "progress line" not in out  # the scripts' own output goes to stderr
    lines = out.splitlines()
    assert lines[0].startswith("pipolicy benchmarks, small scale, 2 script(s), ")
    fast = next(line for line in lines if line.startswith("fast thing"))
    assert fast.split()[2:] == ["200", "rows/s", "100", "rows/s", "2.00x", "12.5", "MB", ">=", "0.5x", "yes"]
    assert next(line for line in lines if line.startswith("slow thing")).endswith("NO")
    assert "bench_bad.py FAILED (exit 1): 3 rows in users, expected 5" in out
    assert "2/3 targets met; 1 of 2 scripts failed: bench_bad.py" in out


def test_main_exits_0_when_targets_are_missed_but_no_script_failed(fake_scripts, monkeypatch, capfd):
    monkeypatch.setattr(sys, "argv", ["run.py", "--only", "good", "--markdown"])
    with pytest.raises(SystemExit) as exited:
        fake_scripts.main()
    assert exited.value.code == 0
    out, _ = capfd.readouterr()
    assert "| fast thing | 200 rows/s | 100 rows/s | 2.00x | 12.5 MB | >= 0.5x | yes |" in out
    assert "bad" not in out
    assert out.rstrip().splitlines()[-1].startswith("2/3 targets met; run times: good ")
