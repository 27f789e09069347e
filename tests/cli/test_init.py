import os
import sqlite3
import stat

from pipolicy_cli.register import Register, migrations


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_creates_a_private_wal_register_with_a_key_outside_it(cli, tmp_path, home):
    path = tmp_path / "r.db"
    result = cli.json("init", "--db", path)
    assert result["created"] is True
    assert result["jurisdiction"] == "pipl"
    assert result["migrations_applied"] == [name for name, _ in migrations.MIGRATIONS]
    assert mode(path) == 0o600
    key = result["key_file"]
    assert mode(key) == 0o600
    assert not key.startswith(str(tmp_path / "r.db"))
    assert key.startswith(str(home))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = conn.execute("SELECT name, applied_at FROM migrations").fetchall()
    assert rows[0][0] == "001_foundation" and rows[0][1].endswith("Z")


def test_wal_and_shm_files_are_private_too(cli, db):
    with Register.open(db) as register:
        register.conn.execute("SELECT count(*) FROM audit_events").fetchone()
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            if side.exists():
                assert mode(side) & 0o077 == 0


def test_every_connection_sets_the_pragmas(db):
    with Register.open(db) as register:
        conn = register.conn
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
        assert conn.execute("PRAGMA cache_size").fetchone()[0] <= -100_000
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2


def test_second_init_changes_nothing(cli, db):
    before = cli.json("audit", "head", "--db", db)
    again = cli.json("init", "--db", db)
    assert again["created"] is False and again["migrations_applied"] == []
    assert cli.json("audit", "head", "--db", db) == before


def test_init_with_another_jurisdiction_is_refused(cli, db):
    result = cli("init", "--db", db, "--jurisdiction", "gdpr")
    assert result.exit_code == 4
    assert "config set jurisdiction" in result.stderr


def test_init_with_unknown_jurisdiction_writes_nothing(cli, tmp_path):
    result = cli("init", "--db", tmp_path / "x.db", "--jurisdiction", "mars")
    assert result.exit_code == 2  # not one of the choices: a usage error
    assert not (tmp_path / "x.db").exists()


def test_gdpr_register(cli, tmp_path):
    path = tmp_path / "g.db"
    assert cli.json("init", "--db", path, "--jurisdiction", "gdpr")["jurisdiction"] == "gdpr"
    assert cli.json("status", "--db", path)["timezone"] == "Europe/Brussels"


def test_older_register_is_migrated_and_recorded(cli, db, monkeypatch):
    def m999(conn):
        conn.execute("CREATE TABLE later_feature (id INTEGER PRIMARY KEY)")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("999_later", m999)])
    monkeypatch.setattr(migrations, "KNOWN", [*migrations.KNOWN, "999_later"])
    status = cli("status", "--db", db)
    assert status.exit_code == 1 and "pipolicy init" in status.stderr
    result = cli.json("init", "--db", db)
    assert result["migrations_applied"] == ["999_later"]
    assert result["schema_version"] == "999_later"
    assert "later_feature" in cli.json("status", "--db", db)["counts"]
    events = cli.json("audit", "list", "--db", db, "--command", "init")
    assert any(event["detail"] == {"migration": "999_later"} for event in events)
    assert cli("audit", "verify", "--db", db).exit_code == 0


def test_newer_register_is_left_untouched(cli, db):
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO migrations VALUES ('500_future', '2030-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    for args in (["status"], ["init"], ["config", "set", "contact", "x"]):
        result = cli(*args, "--db", db)
        assert result.exit_code == 1
        assert "newer pipolicy" in result.stderr
    assert db.read_bytes() == before


def test_a_foreign_sqlite_database_is_not_taken_over(cli, tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    result = cli("init", "--db", path)
    assert result.exit_code == 1
    assert "not a pipolicy register" in result.stderr
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]


def test_a_file_that_is_not_a_database(cli, tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    for args in (["status"], ["init"]):
        result = cli(*args, "--db", path)
        assert result.exit_code == 1
        assert "cannot be read as a SQLite database" in result.stderr
        assert "Traceback" not in result.stderr


def test_missing_register_is_not_found(cli, tmp_path):
    result = cli("status", "--db", tmp_path / "nowhere.db")
    assert result.exit_code == 3
    assert "pipolicy init" in result.stderr


def test_location_precedence(cli, tmp_path, home, monkeypatch):
    default = cli.json("init")
    assert default["register"] == str(home / "register.db")

    configured = tmp_path / "configured.db"
    cli.json("config", "set", "db", str(configured))
    assert cli.json("init")["register"] == str(configured)

    from_env = tmp_path / "env.db"
    monkeypatch.setenv("PIPOLICY_DB", str(from_env))
    assert cli.json("init")["register"] == str(from_env)

    explicit = tmp_path / "explicit.db"
    status_source = cli.json("init", "--db", explicit)
    assert status_source["register"] == str(explicit)
    assert cli.json("status", "--db", explicit)["register_source"] == "--db"
    assert cli.json("status")["register_source"] == "PIPOLICY_DB"


def test_the_same_register_from_any_working_directory(cli, tmp_path, monkeypatch):
    cli.json("init")
    first = cli.json("status")["register"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.json("status")["register"] == first


def test_relative_db_is_made_absolute(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli.json("init", "--db", "rel.db")
    assert result["register"] == str(tmp_path / "rel.db")


def test_key_file_can_be_named_and_is_kept(cli, tmp_path):
    key = tmp_path / "keys" / "k.key"
    path = tmp_path / "r.db"
    assert cli.json("init", "--db", path, "--key-file", key)["key_file"] == str(key)
    assert mode(key) == 0o600
    content = key.read_text()
    cli.json("init", "--db", path)
    assert key.read_text() == content
    refused = cli("init", "--db", path, "--key-file", tmp_path / "other.key")
    assert refused.exit_code == 4
