"""Retention rules and the sweep: actions, floors, --as-of, the lock, signals, resumption, cron."""

import fcntl
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_erasure import MARK, marker_in_files
from tests_support import ID_2015_M

BIN = Path(sys.executable).parent


def pipolicy_bin():
    found = BIN / "pipolicy"
    if not found.exists():
        pytest.skip("needs the installed pipolicy command")
    return str(found)


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "alice", "--name", "张三", "--db", db)
    cli.json("system", "add", "crm", "--db", db)
    cli.json("system", "add", "maps", "--kind", "processor", "--contract", "DPA-9", "--db", db)
    for field, system, category, at in (("last_position", "maps", "location", "2024-05-01"),
                                        ("home_area", "crm", "location", "2026-11-01"),
                                        ("imei", "crm", "device", "2022-01-01"),
                                        ("invoices", "crm", "order", "2022-01-01")):
        cli.json("data", "add", "alice", "--category", category, "--field", field, "--system", system,
                 "--collected-at", at, "--value", f"{MARK}-{field}", "--db", db)
    return db


def events_file(folder: Path, count: int, at: str, start: int = 0, user: str = "alice", source: str = "app") -> Path:
    path = folder / f"events-{source}-{start}.ndjson"
    with path.open("w", encoding="utf-8") as handle:
        for number in range(start, start + count):
            handle.write(json.dumps({"at": at, "actor": "svc", "user_id": user, "categories": "registration",
                                     "purpose": "service", "action": "view", "basis": "contract", "source": source,
                                     "event_id": str(number)}) + "\n")
    return path


def sweep(cli, db, *args, expect=0):
    result = cli("retention", "sweep", "--yes", "--db", db, "--format", "json", *args)
    assert result.exit_code == expect, (result.exit_code, result.stderr)
    return json.loads(result.stdout)


def test_init_loads_the_default_rules_within_the_floors(cli, db):
    rules = cli.json("retention", "rule", "list", "--db", db)
    by_target = {rule["table"] or rule["category"]: rule for rule in rules}
    assert by_target["access_log"]["keep"] == "1 year" and by_target["access_log"]["floor"] == "6 months"
    assert "Cybersecurity Law Art. 21" in by_target["access_log"]["floor_source"]
    assert by_target["order"]["action"] == "restrict" and "policy" in by_target["order"]["basis"]


def test_a_rule_under_the_floor_is_refused_naming_it(cli, db):
    before = cli.json("retention", "rule", "list", "--db", db)
    result = cli("retention", "rule", "set", "--table", "access_log", "--keep", "90d", "--action", "delete", "--db", db)
    assert result.exit_code == 4
    assert "floor for access_log (6 months: Cybersecurity Law Art. 21" in result.stderr
    for bad in (["--table", "users"], ["--category", "dreams"], ["--table", "tasks", "--category", "order"], []):
        assert cli("retention", "rule", "set", *bad, "--keep", "1y", "--action", "delete", "--db", db).exit_code == 4
    assert cli("retention", "rule", "set", "--table", "tasks", "--keep", "1y", "--action", "restrict", "--db", db).exit_code == 4
    assert cli("retention", "rule", "set", "--table", "requests", "--keep", "soon", "--action", "delete", "--db", db).exit_code == 4
    assert cli.json("retention", "rule", "list", "--db", db) == before
    rule = cli.json("retention", "rule", "set", "--table", "access_log", "--keep", "6 months", "--action", "delete",
                    "--basis", "security review only", "--db", db)
    assert rule["keep"] == "6 months" and rule["basis"] == "security review only"
    assert len(cli.json("retention", "rule", "list", "--db", db)) == len(before)  # replaced, not added
    assert cli.json("retention", "rule", "remove", "--category", "order", "--db", db)["category"] == "order"
    assert cli("retention", "rule", "remove", "--category", "order", "--db", db).exit_code == 3


def test_a_profile_change_puts_a_rule_under_a_floor_and_the_sweep_skips_it(cli, db):
    cli.json("retention", "rule", "set", "--table", "requests", "--keep", "1 year", "--action", "delete", "--db", db)
    cli.json("config", "set", "jurisdiction", "ccpa", "--db", db)
    plan = cli.json("retention", "sweep", "--dry-run", "--db", db)
    assert "table requests: delete" not in plan["counts"] and "24 months" in plan["skipped"][0]
    summary = sweep(cli, db, "--fail-on-attention", expect=5)
    assert any("CCPA Regulations 7101" in line for line in summary["attention"])


def test_each_action_and_the_systems_told(cli, reg):
    plan = cli.json("retention", "sweep", "--dry-run", "--as-of", "2026-12-01", "--db", reg)
    assert plan["counts"]["category location: delete"] == 1 and plan["counts"]["category device: deidentify"] == 1
    assert plan["counts"]["category order: restrict"] == 1
    summary = sweep(cli, reg, "--as-of", "2026-12-01")
    assert summary["state"] == "done" and summary["counts"]["category location: delete"] == 1
    conn = sqlite3.connect(reg)
    rows = {field: (user_key, value, deidentified, restricted) for field, user_key, value, deidentified, restricted in
            conn.execute("SELECT field, user_key, value, deidentified_at IS NOT NULL, restricted_at IS NOT NULL FROM data_items")}
    assert "last_position" not in rows and rows["home_area"] == (1, f"{MARK}-home_area", 0, 0)
    assert rows["imei"] == (None, None, 1, 0)  # the record stays, the person and the value go
    assert rows["invoices"] == (1, f"{MARK}-invoices", 0, 1)  # kept, for storage only
    told = {(t["system"], t["action"]) for t in cli.json("task", "list", "--db", reg)}
    assert told == {("maps", "delete"), ("crm", "deidentify"), ("crm", "restrict")}
    [maps] = [json.loads(line) for line in cli("task", "pull", "--system", "maps", "--db", reg).stdout.splitlines()]
    assert maps["retention"] == {"category": "location", "action": "delete", "collected_before": "2025-11-30T16:00:00Z"}
    assert maps["user_id"] is None and maps["identifiers"] == {}  # the rule, not the person
    again = sweep(cli, reg, "--as-of", "2026-12-01")
    assert set(again["counts"].values()) == {0}  # nothing is counted twice
    assert len(cli.json("task", "list", "--db", reg)) == 3


def test_as_of_decides_what_is_old(cli, reg, tmp_path):
    cli.json("access", "import", events_file(tmp_path, 5, "2025-06-01 12:00"), "--db", reg)
    assert cli.json("retention", "sweep", "--dry-run", "--as-of", "2026-05-31", "--db", reg)["counts"]["table access_log: delete"] == 0
    assert sweep(cli, reg, "--as-of", "2026-05-31")["counts"]["table access_log: delete"] == 0
    assert sweep(cli, reg, "--as-of", "2026-06-02")["counts"]["table access_log: delete"] == 5
    assert cli.json("access", "list", "--db", reg) == []
    history = cli.json("retention", "history", "--db", reg)
    assert [h["as_of"] for h in history] == ["2026-06-01T16:00:00Z", "2026-05-30T16:00:00Z"]


def test_nothing_the_sweep_deleted_remains_in_the_files(cli, reg):
    cli.json("data", "add", "alice", "--category", "tracking", "--field", "cookie", "--system", "crm",
             "--collected-at", "2025-01-01", "--value", MARK * 300, "--db", reg)  # spills into overflow pages
    for category in ("order", "device"):
        cli.json("retention", "rule", "set", "--category", category, "--keep", "1 year", "--action", "delete", "--db", reg)
    assert marker_in_files(reg)
    summary = sweep(cli, reg, "--as-of", "2028-01-01")
    assert sum(summary["counts"].values()) == 5
    assert not marker_in_files(reg)


def test_a_sweep_that_frees_a_quarter_of_the_file_gives_the_pages_back_in_place(cli, reg, tmp_path):
    def old_events(start: int) -> Path:
        path = tmp_path / f"old-{start}.ndjson"
        with path.open("w", encoding="utf-8") as handle:
            for number in range(start, start + 12_000):
                handle.write(json.dumps({"at": "2024-01-01 12:00", "actor": "svc-" + "x" * 190, "user_id": "alice",
                                         "categories": "registration", "purpose": "service", "action": "view",
                                         "basis": "contract", "source": "app", "event_id": f"{number:0>150}"}) + "\n")
        return path

    def pragmas() -> tuple[int, int]:
        with sqlite3.connect(reg) as conn:
            return conn.execute("PRAGMA auto_vacuum").fetchone()[0], conn.execute("PRAGMA freelist_count").fetchone()[0]

    for start in (0, 12_000):  # registers start INCREMENTAL (an older one is converted by its first full VACUUM)
        cli.json("access", "import", old_events(start), "--db", reg)
        size = Path(reg).stat().st_size
        assert sweep(cli, reg, "--as-of", "2026-01-01")["counts"]["table access_log: delete"] == 12_000
        assert pragmas() == (2, 0)  # INCREMENTAL, no free page left
        assert Path(reg).stat().st_size < size / 2


def test_verified_deletions_whose_systems_are_done_are_carried_out(cli, reg):
    key = str(cli.json("request", "open", "alice", "--kind", "deletion", "--ground", "user-left", "--db", reg)["id"])
    cli.json("request", "verify", key, "--method", "counter", "--db", reg)
    assert sweep(cli, reg)["counts"]["requests carried out"] == 0  # crm and maps have not confirmed
    cli.json("task", "done", "-", "--db", reg, input="".join(f"{t['id']}\n" for t in cli.json("task", "list", "--db", reg)))
    assert sweep(cli, reg)["counts"]["requests carried out"] == 1
    assert cli("user", "show", "alice", "--db", reg).exit_code == 3


def test_attention_and_fail_on_attention(cli, db):
    cli.json("user", "add", "kid", "--id-number", ID_2015_M, "--db", db)
    cli.json("consent", "grant", "kid", "messaging", "--db", db)
    assert sweep(cli, db)["attention"] == ["1 minors have no guardian's written consent"]
    sweep(cli, db, "--fail-on-attention", expect=5)


def test_the_dead_man_check(cli, db):
    assert cli("status", "--check", "--db", db).exit_code == 0  # not configured: no check
    cli.json("config", "set", "sweep-max-age", "36h", "--db", db)
    result = cli("status", "--check", "--db", db, "--format", "json")
    assert result.exit_code == 5 and "no retention sweep has finished yet" in result.stdout
    sweep(cli, db)
    assert cli("status", "--check", "--db", db).exit_code == 0
    conn = sqlite3.connect(db)
    conn.execute("UPDATE sweeps SET finished_at = '2026-01-01T00:00:00Z'")
    conn.commit()
    assert cli("status", "--check", "--db", db).exit_code == 5
    assert cli("config", "set", "sweep-max-age", "whenever", "--db", db).exit_code == 4


def test_max_duration_stops_between_batches_and_the_next_run_resumes(cli, reg, tmp_path):
    cli.json("access", "import", events_file(tmp_path, 30, "2024-01-01 12:00"), "--db", reg)
    stopped = sweep(cli, reg, "--max-duration", "0h", "--batch-size", "10")
    assert stopped["state"] == "stopped" and stopped["stop_reason"] == "max-duration"
    resumed = sweep(cli, reg, "--batch-size", "10")
    assert resumed["id"] == stopped["id"] and resumed["resumed"] == 1 and resumed["counts"]["table access_log: delete"] == 30


def test_a_held_lock_exits_6_and_changes_nothing(cli, reg):
    with open(f"{reg}.sweep-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = cli("retention", "sweep", "--yes", "--db", reg)
        assert result.exit_code == 6 and "another retention sweep" in result.stderr
    assert cli.json("retention", "history", "--db", reg) == []
    assert cli.json("retention", "sweep", "--dry-run", "--db", reg)["dry_run"] is True  # a dry run needs no lock


def cron_env(db):
    return {"PATH": f"{BIN}:/usr/bin:/bin", "PIPOLICY_DB": str(db)}


def test_under_cron_no_tty_no_stdin_bare_environment(reg):
    command = [pipolicy_bin(), "retention", "sweep"]
    bare = dict(env=cron_env(reg), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    refused = subprocess.run(command, **bare)
    assert refused.returncode == 4 and "--yes" in refused.stderr
    dry = subprocess.run([*command, "--dry-run"], **bare)
    assert dry.returncode == 0 and json.loads(dry.stdout)["dry_run"] is True
    done = subprocess.run([*command, "--yes"], **bare)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["state"] == "done" and "duration_seconds" in summary and "\x1b[" not in done.stdout + done.stderr


@pytest.fixture
def big(cli, reg, tmp_path):
    """Enough old events that a sweep in batches of 200 takes a while."""
    result = cli("access", "import", events_file(tmp_path, 60_000, "2024-01-01 12:00"), "--db", reg, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return reg


def start_sweep(db, *extra):
    return subprocess.Popen([pipolicy_bin(), "retention", "sweep", "--yes", "--batch-size", "200", *extra],
                            env=cron_env(db), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_progress(db, process):
    conn = sqlite3.connect(db)
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(f"the sweep ended too soon: {process.communicate()}")
            row = conn.execute("SELECT json_extract(counts, '$.\"table access_log: delete\"') FROM sweeps").fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    finally:
        conn.close()
    pytest.fail("the sweep made no progress")


def deleted_so_far(db) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    counted = conn.execute("SELECT coalesce(json_extract(counts, '$.\"table access_log: delete\"'), 0) FROM sweeps").fetchone()[0]
    left = conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
    conn.close()
    return counted, left


def test_a_sweep_killed_with_sigkill_leaves_no_lock_and_is_resumed_without_double_counting(cli, big):
    process = start_sweep(big)
    wait_for_progress(big, process)
    process.kill()
    process.wait()
    counted, left = deleted_so_far(big)
    assert counted + left == 60_000  # every committed batch counted exactly once
    summary = sweep(cli, big)
    assert summary["resumed"] == 1 and summary["counts"]["table access_log: delete"] == 60_000
    assert cli.json("audit", "verify", "--db", big)["ok"] is True


def test_sigterm_finishes_the_batch_and_exits_143(cli, big):
    process = start_sweep(big)
    wait_for_progress(big, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    summary = json.loads(out)
    assert summary["state"] == "stopped" and summary["stop_reason"] == "terminated"
    counted, left = deleted_so_far(big)
    assert counted == summary["counts"]["table access_log: delete"] and counted + left == 60_000
    assert sweep(cli, big)["counts"]["table access_log: delete"] == 60_000


def test_four_importers_and_a_sweep_lose_nothing(cli, big, tmp_path):
    files = [events_file(tmp_path, 5_000, "2026-11-30 12:00", start=0, source=f"svc-{n}") for n in range(4)]
    sweeper = start_sweep(big)
    importers = [subprocess.Popen([pipolicy_bin(), "access", "import", str(path), "--batch-size", "500"], env=cron_env(big),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for path in files]
    for process in (*importers, sweeper):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    conn = sqlite3.connect(big)
    assert conn.execute("SELECT count(*) FROM access_log").fetchone()[0] == 20_000  # the new ones, all of them
    assert conn.execute("SELECT count(DISTINCT source) FROM access_log").fetchone()[0] == 4
    assert cli.json("retention", "history", "--db", big)[0]["counts"]["table access_log: delete"] == 60_000
