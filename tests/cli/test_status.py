import sqlite3

from pipolicy_cli.register import migrations


def test_status_reports_counts_schema_and_head(cli, db):
    report = cli.json("status", "--db", db)
    assert report["register"] == str(db)
    assert report["schema_version"] == migrations.KNOWN[-1]
    assert report["jurisdiction"] == "pipl"
    assert report["counts"]["audit_events"] == report["audit"]["count"] > 0
    assert set(report["counts"]) >= {"audit_events", "config", "migrations"}
    assert isinstance(report["erasures_pending_in_backups"], int)
    assert len(report["audit"]["hash"]) == 64
    assert report["audit"]["verified"] is None


def test_check_passes_on_a_healthy_register(cli, db):
    report = cli.json("status", "--check", "--db", db)
    assert report["attention"] == [] and report["audit"]["verified"] is True


def test_check_exits_5_when_the_chain_is_broken(cli, db):
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit_events SET event = replace(event, 'init', 'hack') WHERE seq = 2")
    conn.commit()
    conn.close()
    result = cli("status", "--check", "--db", db, "--format", "table")
    assert result.exit_code == 5
    assert "event 2" in result.stderr
    assert cli("status", "--db", db).exit_code == 0


def test_status_table_on_a_terminal_and_json_when_piped(cli, db):
    table = cli("status", "--db", db, "--format", "table")
    assert table.exit_code == 0 and "schema_version" in table.stdout and not table.stdout.startswith("{")
    piped = cli("status", "--db", db)
    assert piped.stdout.startswith("{")
