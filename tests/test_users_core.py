from datetime import date

import pytest

from pipolicy_cli import users
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register
from pipolicy_cli.user_import import import_users
from tests_support import ID_1949_F, people_file


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        yield reg


def test_age_counts_birthdays():
    row = {"born": "2008-12-01"}
    assert users.age(row, date(2026, 11, 30)) == 17
    assert users.age(row, date(2026, 12, 1)) == 18
    assert users.age({"born": None}, date(2026, 1, 1)) is None


def test_cutoff_on_29_february():
    assert users.cutoff(date(2028, 2, 29), 18) == "2010-02-28"
    assert users.cutoff(date(2026, 11, 30), 18) == "2008-11-30"


def test_add_find_and_conflicts(register):
    row = users.add(register, {"user_id": "u1", "id_number": ID_1949_F.lower(), "phone": "13812345678"}, "t")
    assert row["id_number"] == ID_1949_F and row["born"] == "1949-12-31" and row["sex"] == "female"
    assert users.find(register, "+86-138-1234-5678", "phone")["id"] == row["id"]
    with pytest.raises(NotFound):
        users.find(register, "u2")
    with pytest.raises(InvalidInput) as caught:
        users.add(register, {"user_id": "u2", "phone": "13812345678"}, "t")
    assert caught.value.problems == ["phone: already used by another user"]


def test_import_core_counts_and_batches(register, tmp_path):
    path = people_file(tmp_path, 25, "ndjson")
    first = import_users(register, path, "ndjson", "t", batch_size=10)
    assert first.summary() == {"rows": 25, "inserted": 25, "updated": 0, "unchanged": 0, "invalid": 0, "written": True}
    events = register.conn.execute(
        "SELECT json_extract(event, '$.detail.keys') FROM audit_events WHERE action = 'import' ORDER BY seq"
    ).fetchall()
    assert [row[0] for row in events] == ["[1,10]", "[11,20]", "[21,25]"]
    again = import_users(register, path, "ndjson", "t")
    assert (again.inserted, again.unchanged, again.written) == (0, 25, False)


def test_a_killed_import_is_finished_by_running_it_again(register, tmp_path, monkeypatch):
    from pipolicy_cli import user_import

    path = people_file(tmp_path, 30, "csv")
    calls = {"n": 0}
    real = register.transaction

    def dying(actor, command):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the third batch
        return real(actor, command)

    monkeypatch.setattr(register, "transaction", dying)
    with pytest.raises(KeyboardInterrupt):
        user_import.import_users(register, path, "csv", "t", batch_size=10)
    monkeypatch.setattr(register, "transaction", real)
    assert register.conn.execute("SELECT count(*) FROM users").fetchone()[0] == 20
    rest = user_import.import_users(register, path, "csv", "t", batch_size=10)
    assert (rest.inserted, rest.unchanged) == (10, 20)
    assert register.conn.execute("SELECT count(DISTINCT user_id) FROM users").fetchone()[0] == 30


def test_parallel_validation_gives_the_same_result(register, tmp_path):
    path = people_file(tmp_path, 2500, "ndjson", bad={7: {"phone": "1"}, 1800: {"email": "@"}})
    result = import_users(register, path, "ndjson", "t", jobs=2, skip_invalid=True)
    assert (result.inserted, result.invalid) == (2498, 2)
    assert result.problems == ["row 7: phone: not a phone number", "row 1800: email: not a valid e-mail address"]


def test_parallel_import_through_python_dash_m(tmp_path):
    import json
    import os
    import subprocess
    import sys

    db = tmp_path / "r.db"
    env = {**os.environ, "PIPOLICY_HOME": str(tmp_path / "home")}
    run = [sys.executable, "-m", "pipolicy_cli"]
    subprocess.run([*run, "init", "--db", str(db)], check=True, env=env, capture_output=True)
    path = people_file(tmp_path, 300, "csv")
    done = subprocess.run([*run, "user", "import", str(path), "--jobs", "2", "--db", str(db), "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inserted"] == 300
