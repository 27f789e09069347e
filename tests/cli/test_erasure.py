import fcntl
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests_support import ID_1949_F

MARK = "ZQXMARK"
LONG = MARK + "L" * 6000 + MARK  # spills into overflow pages


def files_of(db):
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")) if p.exists()]


def marker_in_files(db) -> bool:
    return any(MARK.encode() in path.read_bytes() for path in files_of(db))


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "victim", "--name", MARK + "名", "--address", MARK + " road 1", "--email", "zqxmark@example.com",
             "--id-number", ID_1949_F, "--phone", "13812345678", "--db", db)
    cli.json("user", "add", "other", "--name", "李四", "--db", db)
    cli.json("system", "add", "crm", "--db", db)
    cli.json("data", "add", "victim", "--category", "registration", "--field", "note", "--system", "crm",
             "--value", "-", "--db", db, input=LONG + "\n")
    cli.json("consent", "grant", "victim", "messaging", "--evidence", MARK + "-evidence", "--db", db)
    cli.json("access", "log", "victim", "--categories", "registration", "--purpose", "service", "--action", "view",
             "--basis", "contract", "--db", db)
    cli.json("request", "open", "victim", "--kind", "copy", "--for-deceased", "--requester", MARK + "儿子",
             "--relation", "son", "--db", db)
    return db


def test_dry_run_says_what_would_go_and_changes_nothing(cli, reg):
    before = cli.json("audit", "head", "--db", reg)
    rows = {r["table"]: r for r in cli.json("erase", "victim", "--dry-run", "--db", reg)}
    assert rows["users"]["rows"] == 1 and rows["data_items"]["rows"] == 1 and rows["consents"]["rows"] == 1
    assert rows["access_log"]["effect"] == "kept de-identified, restricted"
    assert cli.json("audit", "head", "--db", reg) == before


def test_off_a_terminal_erase_needs_yes(cli, reg):
    result = cli("erase", "victim", "--db", reg)
    assert result.exit_code == 4 and "--yes" in result.stderr
    assert cli("user", "show", "victim", "--db", reg).exit_code == 0


def test_nothing_of_the_person_is_left_in_the_files(cli, reg, home):
    assert marker_in_files(reg)  # the scan can see the markers before
    result = cli.json("erase", "victim", "--yes", "--db", reg)
    assert result["scrub"] == "done" and result["rows"]["access_log"] == 1
    assert not marker_in_files(reg)
    assert cli("user", "show", "victim", "--db", reg).exit_code == 3
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT count(*) FROM data_items").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM consents").fetchone()[0] == 0
    assert conn.execute("SELECT user_key IS NULL AND restricted_at IS NOT NULL FROM access_log").fetchone()[0] == 1
    assert conn.execute("SELECT requester, relation, restricted_at IS NOT NULL FROM requests").fetchone() == (None, None, 1)
    tombstone = json.loads(conn.execute("SELECT identifiers FROM erasures").fetchone()[0])
    assert set(tombstone) == {"user_id", "phone", "email", "id_number"} and all(len(v) == 64 for v in tombstone.values())
    assert ID_1949_F not in json.dumps(tombstone)
    key_file = conn.execute("SELECT value FROM config WHERE key = 'key-file'").fetchone()[0]
    journal = __import__("pathlib").Path(key_file + ".tombstones")
    assert journal.stat().st_mode & 0o077 == 0 and "victim" not in journal.read_text()
    assert cli.json("audit", "verify", "--db", reg)["ok"] is True
    erase_event = [e for e in cli.json("audit", "list", "--db", reg) if e["action"] == "erase"][0]
    assert erase_event["key"] == 1 and "victim" not in json.dumps(erase_event)
    assert cli.json("user", "show", "other", "--db", reg)["user_id"] == "other"


def test_a_reader_leaves_the_scrub_pending_until_it_goes(cli, reg):
    reader = sqlite3.connect(reg)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM users").fetchone()
    started = time.monotonic()
    result = cli.json("erase", "victim", "--yes", "--db", reg)
    assert result["scrub"] == "pending"
    status = cli("status", "--check", "--db", reg, "--format", "json")
    assert status.exit_code == 5 and json.loads(status.stdout)["scrub_pending"] == 1
    assert time.monotonic() - started < 30  # neither waits out the 60 s busy timeout for the reader
    reader.rollback()
    reader.close()
    assert cli.json("status", "--db", reg)["scrub_pending"] == 0  # any later command retries
    assert not marker_in_files(reg)
    assert cli("status", "--check", "--db", reg).exit_code == 0


def test_completing_a_deletion_request_erases(cli, reg):
    key = str(cli.json("request", "open", "victim", "--kind", "deletion", "--ground", "consent-withdrawn", "--db", reg)["id"])
    cli.json("request", "verify", key, "--method", "counter", "--db", reg)
    [task] = cli.json("task", "list", "--request", key, "--db", reg)  # the CRM holds the person's data too
    cli.json("task", "done", str(task["id"]), "--db", reg)
    plan = cli.json("request", "complete", key, "--dry-run", "--db", reg)
    assert plan[0]["table"] == "users"
    assert cli("request", "complete", key, "--db", reg).exit_code == 4  # --yes off a terminal
    done = cli.json("request", "complete", key, "--yes", "--db", reg)
    assert done["status"] == "completed" and done["user_id"] is None
    assert not marker_in_files(reg)


def test_backups_do_not_bring_the_erased_back(cli, reg, tmp_path):
    cli.json("config", "set", "backup-dir", str(tmp_path / "backups"), "--db", reg)
    backup = cli.json("backup", "create", "--db", reg)
    path = tmp_path / "backups" / backup["path"].rsplit("/", 1)[1]
    assert path.exists() and path.stat().st_mode & 0o077 == 0
    cli.json("erase", "victim", "--yes", "--db", reg)
    assert cli.json("status", "--db", reg)["erasures_pending_in_backups"] == 1
    assert cli.json("backup", "list", "--db", reg)[0]["erased_people_inside"] == 1
    restored = cli.json("backup", "restore", str(path), "--yes", "--db", reg)
    assert restored["erased_again"] == 1
    assert cli("user", "show", "victim", "--db", reg).exit_code == 3
    assert cli.json("user", "show", "other", "--db", reg)["user_id"] == "other"
    assert not marker_in_files(reg)
    assert cli.json("audit", "verify", "--db", reg)["ok"] is True


def test_replay_after_a_restore_by_other_means(cli, reg, tmp_path):
    cli.json("config", "set", "backup-dir", str(tmp_path / "b"), "--db", reg)
    backup = cli.json("backup", "create", "--db", reg)
    cli.json("erase", "victim", "--yes", "--db", reg)
    for side in files_of(reg)[1:]:
        side.unlink()
    shutil.copyfile(backup["path"], reg)  # an operator copies the file back by hand
    assert cli.json("user", "show", "victim", "--db", reg)["user_id"] == "victim"
    assert cli.json("backup", "replay", "--dry-run", "--db", reg) == {"would_erase": 1}
    assert cli.json("backup", "replay", "--yes", "--db", reg) == {"erased_again": 1}
    assert cli("user", "show", "victim", "--db", reg).exit_code == 3


def test_expired_backups_are_deleted(cli, reg, tmp_path):
    cli.json("config", "set", "backup-dir", str(tmp_path / "b"), "--db", reg)
    backup = cli.json("backup", "create", "--expires-in", "0d", "--db", reg)
    cli.json("erase", "victim", "--yes", "--db", reg)
    assert cli.json("status", "--db", reg)["erasures_pending_in_backups"] == 1
    assert [r["id"] for r in cli.json("backup", "expire", "--dry-run", "--db", reg)] == [backup["id"]]
    assert cli("backup", "expire", "--db", reg).exit_code == 4
    cli.json("backup", "expire", "--yes", "--db", reg)
    assert not __import__("pathlib").Path(backup["path"]).exists()
    assert cli.json("status", "--db", reg)["erasures_pending_in_backups"] == 0
    assert cli("backup", "restore", str(tmp_path / "nope.db"), "--yes", "--db", reg).exit_code == 3


def test_a_backup_still_being_written_is_left_alone_and_an_abandoned_one_cleared(cli, reg, tmp_path):
    folder = tmp_path / "b"
    cli.json("config", "set", "backup-dir", str(folder), "--db", reg)
    cli.json("backup", "create", "--db", reg)  # makes the folder
    # What a `backup create` leaves while it writes (or when killed): a row of size 0 and a .partial file,
    # and, killed before its row was committed, a .partial file alone.
    with_row, alone = folder / "register-20260101T000000000000Z.db", folder / "register-20260101T000001000000Z.db"
    conn = sqlite3.connect(reg)
    with conn:
        conn.execute("INSERT INTO backups (path, created_at, expires_at, size) VALUES (?, '2026-01-01T00:00:00Z', "
                     "'2099-01-01T00:00:00Z', 0)", (str(with_row),))
    partials = [path.with_name(path.name + ".partial") for path in (with_row, alone)]
    handles = []
    for partial in partials:
        partial.write_bytes(MARK.encode())
        handle = open(partial, "rb")
        fcntl.flock(handle, fcntl.LOCK_EX)  # as the process writing it holds it
        handles.append(handle)
    cli.json("backup", "create", "--db", reg)
    assert all(partial.exists() for partial in partials)
    assert conn.execute("SELECT deleted_at FROM backups WHERE path = ?", (str(with_row),)).fetchone() == (None,)
    for handle in handles:
        handle.close()  # the writer died
    cli.json("backup", "expire", "--yes", "--db", reg)
    assert not any(partial.exists() for partial in partials)
    assert conn.execute("SELECT deleted_at IS NOT NULL FROM backups WHERE path = ?", (str(with_row),)).fetchone() == (1,)
    assert sorted(os.listdir(folder)) == sorted(Path(p).name for (p,) in conn.execute("SELECT path FROM backups WHERE size > 0"))
    assert cli.json("audit", "verify", "--db", reg)["ok"] is True


def test_a_scrub_clears_only_the_erasures_its_checkpoint_covered(db, monkeypatch):
    from pipolicy_cli import erasure
    from pipolicy_cli.register import Register

    def insert(conn, identifiers):
        conn.execute("INSERT INTO erasures (erased_at, identifiers) VALUES ('2026-12-01T00:00:00Z', ?)", (identifiers,))

    with sqlite3.connect(db) as conn:
        insert(conn, '{"early": "x"}')
    checkpoint = erasure._checkpoint

    def another_erasure_commits_meanwhile(conn):
        with sqlite3.connect(db) as other:
            insert(other, '{"late": "y"}')
        return checkpoint(conn)

    monkeypatch.setattr(erasure, "_checkpoint", another_erasure_commits_meanwhile)
    with Register.open(db) as register:
        erasure.scrub(register)
        pending = register.conn.execute("SELECT identifiers FROM erasures WHERE scrub_pending = 1").fetchall()
    # one commits before each of the scrub's two checkpoints; neither was pending when the scrub looked
    assert pending == [('{"late": "y"}',), ('{"late": "y"}',)]
