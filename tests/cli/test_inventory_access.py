import json
import sqlite3

import pytest

from tests_support import ID_1949_F, ID_2015_M


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "adult", "--id-number", ID_1949_F, "--db", db)
    cli.json("user", "add", "kid", "--id-number", ID_2015_M, "--db", db)
    cli.json("system", "add", "crm", "--country", "cn", "--db", db)
    cli.json("system", "add", "sms", "--kind", "processor", "--contract", "DPA-7", "--db", db)
    return db


def event(**fields):
    base = {"at": "2026-11-01 21:00", "actor": "svc", "user_id": "adult", "categories": "registration",
            "purpose": "service", "action": "view", "basis": "contract"}
    return {**base, **fields}


def ndjson(tmp_path, rows, name="events.ndjson"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def violations(cli, db, *args):
    result = cli("access", "violations", "--db", db, "--format", "json", *args)
    assert result.exit_code in (0, 5), result.stderr
    rows = json.loads(result.stdout)
    assert (result.exit_code == 5) == bool(rows)
    return rows


def test_systems(cli, reg):
    rows = cli.json("system", "list", "--db", reg)
    assert [(r["name"], r["kind"], r["country"]) for r in rows] == [("crm", "internal", "CN"), ("sms", "processor", None)]
    assert cli("system", "add", "crm", "--db", reg).exit_code == 4
    assert cli("system", "add", "x", "--kind", "processor", "--db", reg).exit_code == 4
    assert cli("system", "add", "x", "--country", "China", "--db", reg).exit_code == 4


def test_data_add_list_and_sources(cli, reg):
    item = cli.json("data", "add", "adult", "--category", "device", "--field", "imei", "--system", "crm",
                    "--source", "automatic", "--collected-at", "2026-01-01", "--db", reg)
    assert item["collected_at"] == "2025-12-31T16:00:00Z"
    cli.json("data", "add", "adult", "--category", "third-party", "--field", "credit_tier", "--system", "crm",
             "--source", "third-party:Partner Co", "--db", reg)
    cli.json("data", "add", "adult", "--category", "registration", "--field", "note", "--system", "crm",
             "--value", "-", "--db", reg, input="SECRETVALUE42\n")
    rows = cli.json("data", "list", "--user", "adult", "--db", reg)
    assert [(r["field"], r["source"]) for r in rows] == [
        ("imei", "automatic"), ("credit_tier", "third-party:Partner Co"), ("note", "provided")]
    assert "SECRETVALUE42" not in json.dumps(rows)
    revealed = cli.json("data", "list", "--user", "adult", "--reveal", "--db", reg)
    assert revealed[2]["value"] == "SECRETVALUE42"
    assert any(e["command"] == "data list --reveal" for e in cli.json("audit", "list", "--db", reg))
    assert cli.json("system", "list", "--db", reg)[0]["people"] == 1
    for args in (["--category", "dreams"], ["--system", "nowhere"], ["--source", "guesswork"], ["--field", "has space"]):
        base = {"--category": "device", "--field": "imei", "--system": "crm"}
        base.update(dict(zip(args[::2], args[1::2])))
        flat = [part for pair in base.items() for part in pair]
        assert cli("data", "add", "adult", *flat, "--db", reg).exit_code == 4, args


def test_data_import_validates_first_and_is_idempotent(cli, reg, tmp_path):
    good = [
        {"user_id": "adult", "category": "device", "field": "imei", "system": "crm", "source": "automatic"},
        {"user_id": "kid", "category": "order", "field": "history", "system": "crm", "collected_at": "2026-02-01"},
    ]
    bad = [*good, {"user_id": "ghost", "category": "device", "field": "imei", "system": "crm"},
           {"user_id": "adult", "category": "device", "field": "imei", "system": "fax"},
           {"user_id": "adult", "category": "device", "field": "imei", "system": "crm"}]
    result = cli("data", "import", ndjson(tmp_path, bad), "--db", reg)
    assert result.exit_code == 4
    assert "row 3: user_id: no such user" in result.stderr and "row 4: system: not registered" in result.stderr
    assert "row 5: row: repeats row 1" in result.stderr
    assert cli.json("data", "list", "--db", reg) == []
    path = ndjson(tmp_path, good, "good.ndjson")
    assert cli.json("data", "import", path, "--db", reg)["inserted"] == 2
    assert cli.json("data", "import", path, "--db", reg)["unchanged"] == 2


def test_access_log_never_refuses_a_missing_basis(cli, reg):
    result = cli("access", "log", "adult", "--categories", "registration", "--purpose", "messaging", "--action", "use",
                 "--db", reg, "--format", "json")
    assert result.exit_code == 0 and "violation" in result.stderr
    assert json.loads(result.stdout)["id"] == 1
    assert [v["reasons"] for v in violations(cli, reg)] == [["no-consent"]]
    for args in (["--categories", "dreams"], ["--basis", "because"]):
        base = {"--categories": "registration", "--purpose": "service", "--action": "view"}
        base.update(dict(zip(args[::2], args[1::2])))
        flat = [part for pair in base.items() for part in pair]
        assert cli("access", "log", "adult", *flat, "--db", reg).exit_code == 4
    assert cli("access", "log", "ghost", "--categories", "registration", "--purpose", "service", "--action", "view",
               "--db", reg).exit_code == 3


def test_each_kind_of_violation_and_its_disappearance(cli, reg, tmp_path):
    cli.json("consent", "grant", "adult", "location", "--at", "2026-01-01", "--db", reg)
    cli.json("consent", "withdraw", "adult", "location", "--at", "2026-06-01", "--db", reg)
    cli.json("consent", "grant", "adult", "tracking", "--at", "2026-01-01", "--db", reg)
    cli.json("consent", "withdraw", "adult", "tracking", "--signal", "dnt", "--at", "2026-03-01", "--db", reg)
    events = [
        event(purpose="messaging", basis="consent", event_id="1", source="s"),                          # no consent
        event(purpose="service", basis="contract", categories="location", at="2026-05-01", event_id="2", source="s"),
        event(purpose="service", basis="contract", categories="location", at="2026-07-01", event_id="3", source="s"),
        event(purpose="service", basis="contract", categories="tracking", at="2026-04-01", event_id="4", source="s"),
        event(purpose="resale", basis="consent", event_id="5", source="s"),
        event(purpose="service", basis="academic-research", event_id="6", source="s"),
        event(user_id="kid", purpose="surveys", basis="consent", at="2026-07-01", event_id="7", source="s"),
        event(purpose="service", basis="contract", at="2026-11-20", event_id="8", source="s"),
        event(purpose="service", basis="criminal-justice", at="2026-11-21", event_id="9", source="s"),
        event(purpose="surveys", basis="consent", at="2026-08-01", event_id="10", source="s"),
    ]
    assert cli.json("access", "import", ndjson(tmp_path, events), "--db", reg)["inserted"] == 10
    cli.json("consent", "grant", "kid", "surveys", "--at", "2026-01-01", "--db", reg)
    cli.json("consent", "grant", "adult", "surveys", "--at", "2026-01-01", "--db", reg)
    cli.json("policy", "version", "add", "v2", "--effective", "2026-07-15", "--reduces-rights", "--db", reg)
    cli.json("user", "cancel", "adult", "--at", "2026-11-10", "--db", reg)
    found = {v["id"]: v["reasons"] for v in violations(cli, reg)}
    assert found == {
        1: ["no-consent"],
        3: ["location-after-withdrawal"],
        4: ["tracking-after-withdrawal"],
        5: ["purpose-not-in-policy"],
        6: ["basis-without-legal-counterpart"],
        7: ["minor-without-guardian"],
        8: ["after-cancellation"],
        10: ["superseded"],
    }
    # A consent recorded late, for the time of the use, makes a violation disappear.
    cli.json("consent", "grant", "adult", "messaging", "--at", "2026-11-01", "--db", reg)
    assert 1 not in {v["id"] for v in violations(cli, reg)}
    cli.json("consent", "grant", "kid", "surveys", "--at", "2026-01-02", "--by-guardian", "父亲", "--relation", "father",
             "--written-consent", "form-1", "--db", reg)
    assert 7 not in {v["id"] for v in violations(cli, reg)}
    assert [v["id"] for v in violations(cli, reg, "--user", "kid")] == []
    assert [v["id"] for v in violations(cli, reg, "--since", "2026-07-02")] == [10, 5, 6, 8]


def test_access_import_skips_resent_events_and_reports_bad_rows(cli, reg, tmp_path):
    night = [event(event_id=str(n), source="crm") for n in range(5)] + [event()]
    path = ndjson(tmp_path, night)
    first = cli.json("access", "import", path, "--db", reg, "--batch-size", "2")
    assert (first["inserted"], first["skipped"]) == (6, 0)
    again = cli.json("access", "import", path, "--db", reg)
    assert (again["inserted"], again["skipped"]) == (1, 5)  # an event without an id is always appended
    assert len(cli.json("access", "list", "--db", reg)) == 7
    batches = [e for e in cli.json("audit", "list", "--db", reg, "--command", "access import")]
    assert [e["detail"]["keys"] for e in batches] == [[1, 2], [3, 4], [5, 6], [7, 7]]
    bad = ndjson(tmp_path, [event(event_id="x", source="crm"), event(user_id="ghost"), event(action="delete"),
                            event(at="yesterday-ish"), event(categories=["location", 7]), {"user_id": "adult"}], "bad.ndjson")
    result = cli("access", "import", bad, "--db", reg)
    assert result.exit_code == 4
    for line in ("row 2: user_id: no such user", "row 3: action:", "row 4: at:", "row 5: categories:", "row 6: at: required"):
        assert line in result.stderr
    assert len(cli.json("access", "list", "--db", reg)) == 7
    csv_path = tmp_path / "e.csv"
    csv_path.write_text("at,actor,user_id,categories,purpose,action,basis\n"
                        '2026-11-29 20:00,svc,kid,"order,registration",service,use,contract\n', encoding="utf-8")
    assert cli.json("access", "import", csv_path, "--db", reg)["inserted"] == 1
    assert cli.json("access", "list", "--user", "kid", "--db", reg)[0]["categories"] == ["order", "registration"]


def test_access_list_filters(cli, reg, tmp_path):
    cli.json("access", "import", ndjson(tmp_path, [event(at="2026-01-01"), event(at="2026-06-01", purpose="messaging",
                                                         basis="consent"), event(user_id="kid")]), "--db", reg)
    assert len(cli.json("access", "list", "--db", reg)) == 3
    assert len(cli.json("access", "list", "--since", "2026-05-01", "--until", "2026-07-01", "--db", reg)) == 1
    assert len(cli.json("access", "list", "--purpose", "messaging", "--db", reg)) == 1
    assert len(cli.json("access", "list", "--user", "kid", "--db", reg)) == 1


def test_everything_about_a_person_is_reached_through_an_index(reg):
    conn = sqlite3.connect(reg)
    for table in ("access_log", "data_items", "consents"):
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE user_key = 1"))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (table, plan)
    plan = " ".join(row[-1] for row in conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM consents WHERE user_key = 1 AND code = 'x' AND at <= 'z' ORDER BY at DESC LIMIT 1"))
    assert "consents_user_code_at" in plan
