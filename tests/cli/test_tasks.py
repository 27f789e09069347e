"""Tasks: a verified request fans out to every system holding the person's data."""

import json
import sqlite3

import pytest

from test_erasure import MARK, marker_in_files


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "alice", "--name", MARK + "名", "--phone", "13812345678", "--email", "zqxmark@example.com", "--db", db)
    cli.json("user", "add", "bob", "--name", "李四", "--db", db)
    cli.json("system", "add", "crm", "--db", db)
    cli.json("system", "add", "sms-gateway", "--kind", "processor", "--contract", "DPA-1", "--db", db)
    cli.json("system", "add", "billing", "--db", db)
    for system, category, field in (("crm", "registration", "name"), ("crm", "order", "order_history"),
                                    ("sms-gateway", "registration", "phone")):
        cli.json("data", "add", "alice", "--category", category, "--field", field, "--system", system, "--db", db)
    cli.json("data", "add", "bob", "--category", "order", "--field", "invoices", "--system", "billing", "--db", db)
    return db


def verified(cli, db, user="alice", kind="deletion", *extra):
    ground = ["--ground", "consent-withdrawn"] if kind == "deletion" else []
    key = str(cli.json("request", "open", user, "--kind", kind, *ground, *extra, "--db", db)["id"])
    cli.json("request", "verify", key, "--method", "counter", "--db", db)
    return key


def pull(cli, db, system, *extra):
    result = cli("task", "pull", "--system", system, *extra, "--db", db)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_verifying_fans_out_one_task_per_system_holding_the_person(cli, reg):
    key = verified(cli, reg)
    tasks = cli.json("task", "list", "--request", key, "--db", reg)
    assert [(t["system"], t["action"], t["state"]) for t in tasks] == [("crm", "delete", "open"), ("sms-gateway", "delete", "open")]
    assert "payload" not in tasks[0] and "identifiers" not in tasks[0]  # listing never shows what a system is sent
    assert cli.json("task", "list", "--system", "billing", "--db", reg) == []
    # kinds that systems need not act on, and people the inventory knows nothing of, create none
    verified(cli, reg, "alice", "explanation")
    cli.json("user", "add", "carol", "--db", reg)
    verified(cli, reg, "carol")
    assert len(cli.json("task", "list", "--db", reg)) == 2
    copy = verified(cli, reg, "bob", "copy")
    assert [(t["system"], t["action"]) for t in cli.json("task", "list", "--request", copy, "--db", reg)] == [("billing", "copy")]


def test_pull_hands_out_each_task_once_with_what_the_system_needs(cli, reg):
    verified(cli, reg)
    [task] = pull(cli, reg, "sms-gateway")
    assert task["user_id"] == "alice" and task["action"] == "delete"
    assert task["identifiers"] == {"phone": "+8613812345678"}  # only what that system holds
    assert task["items"] == [{"category": "registration", "field": "phone"}]
    [crm] = pull(cli, reg, "crm")
    assert set(crm["identifiers"]) == {"name"}
    assert pull(cli, reg, "sms-gateway") == []  # handed out: not again while the lease runs
    assert cli.json("task", "list", "--state", "pulled", "--db", reg)[0]["pulls"] == 1
    pulls = [e for e in cli.json("audit", "list", "--db", reg) if e["action"] == "pull"]
    assert len(pulls) == 2 and "alice" not in json.dumps(pulls) and "13812345678" not in json.dumps(pulls)


def test_a_lost_pull_is_handed_out_again_after_the_lease(cli, reg):
    verified(cli, reg)
    [first] = pull(cli, reg, "crm")
    assert pull(cli, reg, "crm", "--lease", "1h") == []
    conn = sqlite3.connect(reg)
    conn.execute("UPDATE tasks SET pulled_at = '2026-01-01T00:00:00Z'")
    conn.commit()
    [again] = pull(cli, reg, "crm", "--lease", "1h")
    assert again["id"] == first["id"]
    assert cli.json("task", "list", "--system", "crm", "--db", reg)[0]["pulls"] == 2


def test_pull_csv_and_limit(cli, reg):
    verified(cli, reg)
    verified(cli, reg, "alice", "correction")
    result = cli("task", "pull", "--system", "crm", "--format", "csv", "--limit", "1", "--db", reg)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and lines[0].startswith("id,request_id,request_kind,action") and len(lines) == 2
    assert len(pull(cli, reg, "crm")) == 1


def test_pull_refuses_an_unknown_system_and_a_bad_lease(cli, reg):
    assert cli("task", "pull", "--system", "nope", "--db", reg).exit_code == 3
    result = cli("task", "pull", "--system", "crm", "--lease", "soon", "--db", reg)
    assert result.exit_code == 4 and "--lease" in result.stderr


def test_done_and_fail_one_id_or_ndjson_from_stdin(cli, reg):
    key = verified(cli, reg)
    crm, sms = (t["id"] for t in cli.json("task", "list", "--request", key, "--db", reg))
    assert cli.json("task", "done", str(crm), "--note", "purged", "--db", reg) == [{"id": crm, "state": "done", "changed": True}]
    assert cli.json("task", "done", str(crm), "--db", reg)[0]["changed"] is False  # resent: nothing changes
    result = cli("task", "fail", str(sms), "--db", reg)
    assert result.exit_code == 4 and "--reason" in result.stderr
    assert cli.json("task", "fail", str(sms), "--reason", "vendor API down", "--db", reg)[0]["state"] == "failed"
    assert cli("task", "fail", str(crm), "--reason", "x", "--db", reg).exit_code == 4  # done stays done
    lines = json.dumps({"id": sms, "note": "retried"}) + "\n"
    assert cli.json("task", "done", "-", "--db", reg, input=lines) == [{"id": sms, "state": "done", "changed": True}]
    notes = {t["id"]: t for t in cli.json("task", "list", "--db", reg)}
    assert notes[crm]["state"] == notes[sms]["state"] == "done"


def test_a_bad_line_in_a_batch_records_nothing(cli, reg):
    key = verified(cli, reg)
    crm, sms = (t["id"] for t in cli.json("task", "list", "--request", key, "--db", reg))
    before = cli.json("audit", "head", "--db", reg)
    result = cli("task", "done", "-", "--db", reg, input=f"{crm}\n{{\"id\": 999}}\n")
    assert result.exit_code == 4 and "line 2: id: no task 999" in result.stderr
    result = cli("task", "done", "-", "--db", reg, input=f"{sms}\nnot-a-number\n")
    assert result.exit_code == 4 and "line 2" in result.stderr
    assert cli("task", "done", "999", "--db", reg).exit_code == 3
    assert cli.json("audit", "head", "--db", reg) == before
    assert {t["state"] for t in cli.json("task", "list", "--db", reg)} == {"open"}


def test_a_request_closes_only_when_its_systems_are_done(cli, reg):
    key = verified(cli, reg)
    result = cli("request", "complete", key, "--yes", "--db", reg)
    assert result.exit_code == 4 and "crm (open)" in result.stderr and "sms-gateway (open)" in result.stderr
    assert cli("erase", "alice", "--yes", "--db", reg).exit_code == 4  # nor behind the request's back
    assert cli.json("user", "show", "alice", "--db", reg)["user_id"] == "alice"
    cli.json("task", "done", "-", "--db", reg, input="\n".join(str(t["id"]) for t in cli.json("task", "list", "--db", reg)))
    done = cli.json("request", "complete", key, "--yes", "--db", reg)
    assert done["status"] == "completed" and done["user_id"] is None
    assert not marker_in_files(reg)


def test_an_officer_can_override_with_a_reason(cli, reg):
    key = verified(cli, reg)
    [crm, sms] = cli.json("task", "list", "--db", reg)
    cli.json("task", "done", str(crm["id"]), "--db", reg)
    assert cli("request", "complete", key, "--yes", "--override", " ", "--db", reg).exit_code == 4
    done = cli.json("request", "complete", key, "--yes", "--override", "processor wound up; contract ended", "--db", reg)
    assert done["status"] == "completed"
    states = {t["system"]: t["state"] for t in cli.json("task", "list", "--db", reg)}
    assert states == {"crm": "done", "sms-gateway": "cancelled"}
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT tasks_override FROM requests WHERE id = ?", (key,)).fetchone()[0].startswith("processor")
    closing = [e for e in cli.json("audit", "list", "--db", reg) if e["action"] == "close"][0]
    assert closing["detail"]["override"] is True and closing["detail"]["cancelled"] == 1


def test_payloads_go_when_the_request_closes(cli, reg):
    correction = verified(cli, reg, "alice", "correction")
    assert marker_in_files(reg)
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT count(*) FROM tasks WHERE payload LIKE ?", (f"%{MARK}%",)).fetchone()[0] == 1
    cli.json("task", "done", str(cli.json("task", "list", "--system", "crm", "--db", reg)[0]["id"]), "--db", reg)
    cli.json("task", "done", str(cli.json("task", "list", "--system", "sms-gateway", "--db", reg)[0]["id"]), "--db", reg)
    cli.json("request", "complete", correction, "--db", reg)
    assert conn.execute("SELECT count(*) FROM tasks WHERE payload IS NOT NULL").fetchone()[0] == 0
    rejected = verified(cli, reg, "alice", "copy")
    cli.json("request", "reject", rejected, "--reason", "manifestly unfounded", "--db", reg)
    assert {t["state"] for t in cli.json("task", "list", "--request", rejected, "--db", reg)} == {"cancelled"}
    assert conn.execute("SELECT count(*) FROM tasks WHERE payload IS NOT NULL").fetchone()[0] == 0
    # the erasure removes the rest; the tasks themselves stay, holding nothing personal
    cli.json("erase", "alice", "--yes", "--db", reg)
    assert not marker_in_files(reg)
    assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 4


def test_export_shows_the_tasks_and_what_they_carry(cli, reg):
    verified(cli, reg, "alice", "copy")
    result = cli("export", "alice", "--db", reg)
    exported = json.loads(result.stdout)
    assert [(t["system"], t["action"], t["state"]) for t in exported["tasks"]] == [("crm", "copy", "open"), ("sms-gateway", "copy", "open")]
    assert exported["tasks"][1]["payload"]["identifiers"] == {"phone": "+8613812345678"}


def test_an_export_answering_a_copy_request_waits_for_the_systems(cli, reg):
    key = verified(cli, reg, "bob", "copy")
    result = cli("export", "bob", "--request", key, "--db", reg)
    assert result.exit_code == 0 and "stays open until these systems send their part: billing" in result.stderr
    assert cli.json("request", "show", key, "--db", reg)["status"] == "verified"
    cli.json("task", "done", str(cli.json("task", "list", "--request", key, "--db", reg)[0]["id"]), "--db", reg)
    assert cli("export", "bob", "--request", key, "--db", reg).exit_code == 0
    assert cli.json("request", "show", key, "--db", reg)["status"] == "completed"


def test_overdue_tasks_count_in_status_check(cli, reg):
    key = verified(cli, reg)
    assert cli("status", "--check", "--db", reg).exit_code == 0
    conn = sqlite3.connect(reg)
    conn.execute("UPDATE requests SET due_on = '2026-01-05' WHERE id = ?", (key,))
    conn.commit()
    assert [t["overdue"] for t in cli.json("task", "list", "--db", reg)] == [True, True]
    assert cli("task", "list", "--overdue", "--db", reg).exit_code == 5
    result = cli("status", "--check", "--db", reg, "--format", "json")
    assert result.exit_code == 5 and "2 tasks at systems past their request's due date" in result.stdout


def test_the_readme_cron_job_pulls_acts_and_confirms(cli, reg, tmp_path):
    """The shell example in the README, run as written against a stand-in for the system's own tool."""
    import os
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    if not shutil.which("jq") or not shutil.which("pipolicy", path=str(Path(sys.executable).parent)):
        pytest.skip("needs jq and an installed pipolicy")
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    script = re.search(r"```sh\n(#!/bin/sh\n# /etc/cron.daily/crm-privacy-tasks.*?)```", readme, re.S).group(1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "crm-admin"
    tool.write_text("#!/bin/sh\ngrep -q '\"action\": \"delete\"'\n")  # acts on deletions, fails the rest
    tool.chmod(0o755)
    (tmp_path / "job.sh").write_text(script)
    verified(cli, reg, "alice", "deletion")
    verified(cli, reg, "alice", "copy")
    env = {"PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", "PIPOLICY_DB": str(reg),
           "PIPOLICY_HOME": os.environ["PIPOLICY_HOME"]}
    run = subprocess.run(["sh", str(tmp_path / "job.sh")], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    states = {(t["request_kind"], t["state"]) for t in cli.json("task", "list", "--system", "crm", "--db", reg)}
    assert states == {("deletion", "done"), ("copy", "failed")}
