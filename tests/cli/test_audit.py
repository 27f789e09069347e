import sqlite3

import pytest


@pytest.fixture
def busy(cli, db):
    for key, value in (("contact", "a"), ("dpo", "b"), ("organisation", "c")):
        cli.json("config", "set", key, value, "--db", db, "--actor", "officer-li")
    return db


def test_list_is_an_array_oldest_first_with_filters(cli, busy):
    events = cli.json("audit", "list", "--db", busy)
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    mine = cli.json("audit", "list", "--db", busy, "--by-actor", "officer-li")
    assert [event["fields"] for event in mine] == [["contact"], ["dpo"], ["organisation"]]
    assert cli.json("audit", "list", "--db", busy, "--object", "migrations")[0]["action"] == "migrate"
    newest = cli.json("audit", "list", "--db", busy, "--newest-first", "--limit", "1")
    assert newest[0]["seq"] == len(events)
    assert cli.json("audit", "list", "--db", busy, "--since", "2999-01-01") == []
    assert len(cli.json("audit", "list", "--db", busy, "--since", "2000-01-01 08:00")) == len(events)
    assert cli.json("audit", "list", "--db", busy, "--until", "2000-01-01") == []


def test_list_rejects_a_bad_time(cli, busy):
    result = cli("audit", "list", "--db", busy, "--since", "yesterday-ish")
    assert result.exit_code == 4 and "--since" in result.stderr


def test_list_in_every_format(cli, busy):
    for fmt in ("table", "json", "ndjson", "csv"):
        result = cli("audit", "list", "--db", busy, "--format", fmt)
        assert result.exit_code == 0, fmt
        assert "officer-li" in result.stdout
    csv_lines = cli("audit", "list", "--db", busy, "--format", "csv").stdout.splitlines()
    assert csv_lines[0].startswith("seq,at,actor,command,action,object,key,fields")
    ndjson = cli("audit", "list", "--db", busy, "--format", "ndjson").stdout.splitlines()
    assert len(ndjson) == len(csv_lines) - 1


def test_head_and_verify_with_anchor(cli, busy):
    head = cli.json("audit", "head", "--db", busy)
    assert set(head) == {"count", "hash"}
    assert cli.json("audit", "verify", "--db", busy, "--head", head["hash"])["ok"] is True
    cli.json("config", "set", "contact", "later", "--db", busy)
    assert cli.json("audit", "verify", "--db", busy, "--head", head["hash"])["anchor_found"] is True


def test_a_cut_off_tail_is_caught_by_the_anchor(cli, busy):
    head = cli.json("audit", "head", "--db", busy)
    conn = sqlite3.connect(busy)
    conn.execute("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    conn.commit()
    conn.close()
    assert cli("audit", "verify", "--db", busy).exit_code == 0  # a shorter chain is self-consistent
    result = cli("audit", "verify", "--db", busy, "--head", head["hash"], "--format", "table")
    assert result.exit_code == 5
    assert "not in the chain" in result.stderr


def test_verify_names_the_first_bad_event(cli, busy):
    conn = sqlite3.connect(busy)
    seq = conn.execute("SELECT min(seq) FROM audit_events WHERE actor = 'officer-li'").fetchone()[0]
    conn.execute("UPDATE audit_events SET event = replace(event, 'officer-li', 'officer-wu') WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()
    result = cli.json("audit", "verify", "--db", busy, expect=5)
    assert result["ok"] is False and result["first_bad"] == seq


def test_verify_rejects_a_malformed_head(cli, busy):
    assert cli("audit", "verify", "--db", busy, "--head", "xyz").exit_code == 4


def test_keyed_chain(cli, db, monkeypatch):
    monkeypatch.setenv("PIPOLICY_AUDIT_KEY", "s3cret")
    cli.json("config", "set", "contact", "x", "--db", db)
    assert cli.json("audit", "verify", "--db", db)["ok"] is True
    monkeypatch.delenv("PIPOLICY_AUDIT_KEY")
    result = cli.json("audit", "verify", "--db", db, expect=5)
    assert "PIPOLICY_AUDIT_KEY" in result["reason"]
    monkeypatch.setenv("PIPOLICY_AUDIT_KEY", "wrong")
    assert cli.json("audit", "verify", "--db", db, expect=5)["reason"].startswith("hash mismatch")
