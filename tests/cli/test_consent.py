import json

import pytest

from tests_support import ID_1949_F, ID_2008_F, ID_2015_M


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "adult", "--id-number", ID_1949_F, "--phone", "13812345678", "--db", db)
    cli.json("user", "add", "kid", "--id-number", ID_2015_M, "--db", db)
    cli.json("user", "add", "teen", "--id-number", ID_2008_F, "--db", db)
    cli.json("user", "add", "nobody-knows", "--name", "匿名", "--db", db)
    return db


def check(cli, db, user, code, at=None):
    args = ["consent", "check", user, code, "--db", db, "--format", "json"]
    if at:
        args += ["--at", at]
    result = cli(*args)
    assert result.exit_code in (0, 5), result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_grant_then_withdraw_affects_only_later_use(cli, reg):
    cli.json("consent", "grant", "adult", "messaging", "--at", "2026-01-10", "--method", "app-toggle",
             "--evidence", "log-4711", "--db", reg)
    cli.json("consent", "withdraw", "adult", "messaging", "--at", "2026-03-01", "--db", reg)
    assert check(cli, reg, "adult", "messaging", "2026-02-01")[0] == 0
    code, answer = check(cli, reg, "adult", "messaging", "2026-03-02")
    assert code == 5 and answer["reason"] == "withdrawn"
    assert check(cli, reg, "adult", "messaging", "2026-01-09")[1]["reason"] == "no-consent"


def test_service_rests_on_the_contract_until_cancellation(cli, reg):
    code, answer = check(cli, reg, "adult", "service")
    assert code == 0 and answer["basis"] == "contract"
    cli.json("user", "cancel", "adult", "--at", "2026-05-01", "--db", reg)
    assert check(cli, reg, "adult", "service", "2026-04-30")[0] == 0
    code, answer = check(cli, reg, "adult", "service", "2026-05-02")
    assert code == 5 and answer["reason"] == "cancelled"


def test_unknown_codes_and_users(cli, reg):
    assert cli("consent", "grant", "adult", "telepathy", "--db", reg).exit_code == 4
    assert cli("consent", "check", "adult", "telepathy", "--db", reg).exit_code == 4
    assert cli("consent", "check", "ghost", "messaging", "--db", reg).exit_code == 3
    assert cli("consent", "grant", "adult", "messaging", "--at", "2999-01-01", "--db", reg).exit_code == 4


def test_a_rights_reducing_version_supersedes_older_consents(cli, reg):
    cli.json("consent", "grant", "adult", "improvement", "--at", "2026-01-01", "--db", reg)
    version = cli.json("policy", "version", "add", "2026-07", "--effective", "2026-07-01", "--reduces-rights",
                       "--summary", "Data kept longer", "--db", reg)
    assert version["needs_reconsent"] is True
    assert check(cli, reg, "adult", "improvement", "2026-06-30")[0] == 0
    code, answer = check(cli, reg, "adult", "improvement", "2026-07-02")
    assert code == 5 and answer["reason"] == "superseded" and "2026-07" in answer["why"]
    assert cli.json("policy", "reconsent-list", "--db", reg) == [
        {"user_id": "adult", "code": "improvement", "granted_at": "2025-12-31T16:00:00Z", "superseded_by": "2026-07"}
    ]
    renewed = cli.json("consent", "grant", "adult", "improvement", "--at", "2026-07-05", "--db", reg)
    assert renewed["policy_version"] == "2026-07"
    assert check(cli, reg, "adult", "improvement", "2026-07-06")[0] == 0
    assert cli.json("policy", "reconsent-list", "--db", reg) == []


def test_a_version_that_changes_only_wording_needs_no_reconsent(cli, reg):
    cli.json("consent", "grant", "adult", "surveys", "--at", "2026-01-01", "--db", reg)
    cli.json("policy", "version", "add", "2026-02", "--effective", "2026-02-01", "--db", reg)
    assert check(cli, reg, "adult", "surveys", "2026-03-01")[0] == 0
    cli.json("policy", "version", "add", "2026-04", "--effective", "2026-04-01", "--changes", "purposes,methods", "--db", reg)
    assert check(cli, reg, "adult", "surveys", "2026-04-02")[1]["reason"] == "superseded"
    assert cli("policy", "version", "add", "2026-04", "--effective", "2026-05-01", "--db", reg).exit_code == 4
    assert cli("policy", "version", "add", "x", "--effective", "2026-05-01", "--changes", "colours", "--db", reg).exit_code == 4
    assert [v["version"] for v in cli.json("policy", "version", "list", "--db", reg)] == ["2026-02", "2026-04"]


def test_minors_need_a_guardians_written_consent(cli, reg):
    result = cli("consent", "grant", "kid", "personalization", "--at", "2026-02-01", "--db", reg, "--format", "json")
    assert result.exit_code == 0 and "guardian's written consent" in result.stderr
    assert check(cli, reg, "kid", "personalization")[1]["reason"] == "minor-without-guardian"
    minors = cli("consent", "minors", "--db", reg, "--format", "json")
    assert minors.exit_code == 5
    rows = json.loads(minors.stdout)
    assert {(r["user_id"], r["finding"]) for r in rows} == {("kid", "no-guardian-consent"), ("nobody-knows", "age-unknown")}
    assert "1 minor without" in minors.stderr and "1 person of unknown age" in minors.stderr
    half = cli("consent", "grant", "kid", "personalization", "--by-guardian", "王芳", "--db", reg)
    assert half.exit_code == 4
    cli.json("consent", "grant", "kid", "personalization", "--by-guardian", "王芳", "--relation", "mother",
             "--written-consent", "form-2026-17", "--db", reg)
    assert check(cli, reg, "kid", "personalization")[0] == 0
    after = cli("consent", "minors", "--db", reg, "--format", "json")
    assert after.exit_code == 0
    assert [r["finding"] for r in json.loads(after.stdout)] == ["age-unknown"]


def test_a_consent_given_before_the_18th_birthday_needs_the_guardian(cli, reg):
    cli.json("consent", "grant", "teen", "messaging", "--at", "2026-05-31 12:00", "--db", reg)
    assert check(cli, reg, "teen", "messaging", "2026-06-15")[1]["reason"] == "minor-without-guardian"
    cli.json("consent", "grant", "teen", "messaging", "--at", "2026-06-01 09:00", "--db", reg)
    assert check(cli, reg, "teen", "messaging", "2026-06-01 10:00")[0] == 0
    assert check(cli, reg, "teen", "messaging", "2026-06-01 08:00")[1]["reason"] == "minor-without-guardian"


def test_guardian_age_follows_the_config(cli, reg):
    cli.json("consent", "grant", "teen", "surveys", "--at", "2026-01-05", "--db", reg)  # age 17 then
    assert check(cli, reg, "teen", "surveys")[1]["reason"] == "minor-without-guardian"
    cli.json("config", "set", "guardian-age", "14", "--db", reg)
    assert check(cli, reg, "teen", "surveys")[0] == 0


def test_do_not_track_withdraws_tracking(cli, reg):
    cli.json("consent", "grant", "adult", "tracking", "--at", "2026-01-01", "--db", reg)
    event = cli.json("consent", "withdraw", "adult", "tracking", "--signal", "dnt", "--db", reg)
    assert event["signal"] == "dnt"
    code, answer = check(cli, reg, "adult", "tracking")
    assert code == 5 and "DNT" in answer["why"]
    assert cli("consent", "withdraw", "adult", "messaging", "--signal", "dnt", "--db", reg).exit_code == 4
    assert cli("consent", "withdraw", "adult", "tracking", "--signal", "smoke", "--db", reg).exit_code == 2
    assert cli.json("consent", "withdraw", "adult", "sharing", "--signal", "gpc", "--db", reg)["signal"] == "gpc"


def test_history_is_the_proof(cli, reg):
    cli.json("policy", "version", "add", "v1", "--effective", "2025-01-01", "--db", reg)
    cli.json("consent", "grant", "adult", "location", "--at", "2026-01-01", "--evidence", "gps-optin-1", "--db", reg)
    cli.json("consent", "withdraw", "adult", "location", "--at", "2026-02-01", "--db", reg)
    cli.json("consent", "grant", "adult", "surveys", "--at", "2026-01-15", "--db", reg)
    rows = cli.json("consent", "history", "+86 138 1234 5678", "--by", "phone", "--db", reg)
    assert [(r["code"], r["action"]) for r in rows] == [("location", "grant"), ("surveys", "grant"), ("location", "withdraw")]
    assert rows[0]["policy_version"] == "v1" and rows[0]["evidence"] == "gps-optin-1"
    assert len(cli.json("consent", "history", "adult", "location", "--db", reg)) == 2
    standing = cli.json("consent", "list", "--db", reg)
    assert [(r["code"], r["state"]) for r in standing] == [("location", "withdrawn"), ("surveys", "granted")]
    assert [r["code"] for r in cli.json("consent", "list", "--state", "granted", "--db", reg)] == ["surveys"]
    events = [e for e in cli.json("audit", "list", "--db", reg) if e["object"] == "consents"]
    assert len(events) == 3 and "gps-optin-1" not in json.dumps(events)


def test_bulk_check_answers_in_order(cli, reg):
    cli.json("consent", "grant", "adult", "messaging", "--at", "2026-01-01", "--db", reg)
    questions = "\n".join([
        json.dumps({"user_id": "adult", "purpose": "messaging"}),
        json.dumps({"user_id": "adult", "purpose": "messaging", "at": "2025-12-01"}),
        json.dumps({"user_id": "ghost", "purpose": "messaging"}),
        json.dumps({"user_id": "adult", "purpose": "astrology"}),
        "",
        json.dumps({"user_id": "adult", "purpose": "service"}),
    ]) + "\n"
    result = cli("consent", "check", "-", "--db", reg, "--format", "json", input=questions)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["line"], a["allowed"], a["reason"]) for a in answers] == [
        (1, True, "allowed"), (2, False, "no-consent"), (3, False, "unknown-user"),
        (4, False, "unknown-purpose"), (6, True, "allowed"),
    ]
    assert result.exit_code == 5
    allowed = cli("consent", "check", "-", "--db", reg, input=json.dumps({"user_id": "adult", "purpose": "service"}) + "\n")
    assert allowed.exit_code == 0
    broken = cli("consent", "check", "-", "--db", reg, input="not json\n" + json.dumps({"user_id": "adult", "purpose": "service"}) + "\n")
    assert broken.exit_code == 4
    assert [json.loads(line).get("error") is not None for line in broken.stdout.splitlines()] == [True, False]
    assert broken.stderr == "pipolicy: error: 1 malformed question line(s), the first line 1; each was answered with an error line\n"


def test_policy_catalog_lists(cli, reg):
    purposes = cli.json("policy", "purposes", "--db", reg)
    assert len(purposes) == 8 and purposes[0] == {
        "code": "service", "default_basis": "contract", "title": purposes[0]["title"], "clause": "1.(3) 1.(1)"
    }
    assert len(cli.json("policy", "categories", "--db", reg)) == 9
    assert {s["code"] for s in cli.json("policy", "scopes", "--db", reg)} >= {"sharing", "cross-border"}
    bases = {b["code"]: b for b in cli.json("policy", "bases", "--db", reg)}
    assert bases["operations-security"]["flagged"] is True and bases["contract"]["law"].startswith("Art. 13(2)")
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    bases = {b["code"]: b for b in cli.json("policy", "bases", "--db", reg)}
    assert bases["operations-security"]["flagged"] is False


def test_a_register_can_follow_its_own_catalog(cli, reg, tmp_path):
    from pipolicy_cli.catalog import data_path

    own = tmp_path / "catalog.toml"
    own.write_text(data_path("catalog.toml").read_text(encoding="utf-8") + '''
[[purposes]]
code = "research-panel"
title = "A research panel the person joined"
default_basis = "consent"
clause = "addendum 1"
''', encoding="utf-8")
    cli.json("config", "set", "catalog-file", str(own), "--db", reg)
    cli.json("consent", "grant", "adult", "research-panel", "--db", reg)
    assert check(cli, reg, "adult", "research-panel")[0] == 0
    broken = tmp_path / "broken.toml"
    broken.write_text("purposes = 3\n")
    assert cli("config", "set", "catalog-file", str(broken), "--db", reg).exit_code == 4


def test_notify_list(cli, reg):
    assert cli("policy", "notify-list", "--db", reg).exit_code == 3
    cli.json("policy", "version", "add", "v2", "--effective", "2026-12-01", "--db", reg)
    cli.json("user", "cancel", "kid", "--db", reg)
    rows = cli.json("policy", "notify-list", "--db", reg)
    assert [r["user_id"] for r in rows] == ["adult", "teen", "nobody-knows"]
    assert rows[0]["channels"] == ["sms"] and rows[0]["phone"] == "138****5678"


# consent import ------------------------------------------------------------------------------------------------

IMPORTED = [
    {"user_id": "adult", "action": "grant", "purpose": "messaging", "at": "2026-01-10 09:00", "method": "app-toggle",
     "evidence": "log-1", "source": "app", "event_id": "1"},
    {"user_id": "adult", "action": "withdraw", "purpose": "tracking", "at": "2026-01-11 09:00", "signal": "dnt",
     "source": "app", "event_id": "2"},
    {"user_id": "kid", "action": "grant", "purpose": "personalization", "at": "2026-01-12", "by_guardian": "王芳",
     "relation": "mother", "written_consent": "form-3", "source": "app", "event_id": "3"},
    {"user_id": "nobody-knows", "action": "grant", "purpose": "surveys"},  # at: now
    {"user_id": "adult", "action": "grant", "purpose": "location", "at": "2026-01-13", "source": "app"},  # no id: appended
]


def consent_file(tmp_path, rows, fmt, name="consents"):
    import csv

    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_import_every_format_and_a_reimport_skips_what_is_stored(cli, reg, tmp_path, fmt):
    path = consent_file(tmp_path, IMPORTED, fmt)
    assert cli.json("consent", "import", path, "--db", reg) == {"rows": 5, "inserted": 5, "skipped": 0, "invalid": 0, "written": True}
    again = cli.json("consent", "import", path, "--db", reg)
    assert (again["inserted"], again["skipped"], again["written"]) == (2, 3, True)  # rows without an event_id are appended
    rows = cli.json("consent", "history", "adult", "--db", reg)
    assert [(r["code"], r["action"], r["at"], r["source"], r["event_id"]) for r in rows] == [
        ("messaging", "grant", "2026-01-10T01:00:00Z", "app", "1"), ("tracking", "withdraw", "2026-01-11T01:00:00Z", "app", "2"),
        ("location", "grant", "2026-01-12T16:00:00Z", "app", None), ("location", "grant", "2026-01-12T16:00:00Z", "app", None)]
    assert (rows[0]["method"], rows[0]["evidence"], rows[1]["signal"]) == ("app-toggle", "log-1", "dnt")
    assert check(cli, reg, "adult", "messaging", "2026-02-01")[0] == 0
    assert "DNT" in check(cli, reg, "adult", "tracking")[1]["why"]
    assert check(cli, reg, "kid", "personalization")[0] == 0  # the guardian's written consent came with it
    assert check(cli, reg, "nobody-knows", "surveys")[0] == 0
    kid = cli.json("consent", "history", "kid", "--db", reg)[0]
    assert (kid["guardian_name"], kid["guardian_relation"], kid["written_consent"]) == ("王*", "mother", "form-3")


def test_import_from_stdin(cli, reg, tmp_path):
    payload = consent_file(tmp_path, IMPORTED[:2], "ndjson").read_text(encoding="utf-8")
    result = cli.json("consent", "import", "-", "--db", reg, input=payload)
    assert (result["inserted"], result["invalid"]) == (2, 0)
    csv_text = consent_file(tmp_path, IMPORTED[2:3], "csv").read_text(encoding="utf-8")
    assert cli.json("consent", "import", "-", "--input-format", "csv", "--db", reg, input=csv_text)["inserted"] == 1
    assert [r["user_id"] for r in cli.json("consent", "list", "--db", reg)] == ["adult", "adult", "kid"]


def test_import_reports_every_bad_row_and_writes_nothing_unless_told(cli, reg, tmp_path):
    good = {"user_id": "adult", "action": "grant", "purpose": "messaging", "at": "2026-01-10"}
    bad = [
        good,
        {**good, "user_id": "ghost"},
        {**good, "action": "grant-ish"},
        {**good, "purpose": "telepathy"},
        {**good, "at": "2999-01-01"},
        {**good, "at": "soon"},
        {**good, "signal": "dnt"},  # a signal withdraws
        {**good, "action": "withdraw", "purpose": "messaging", "signal": "dnt"},  # DNT withdraws only tracking
        {**good, "by_guardian": "赵六"},  # without the relation and the written consent
        {**good, "action": "withdraw", "by_guardian": "赵六", "relation": "father", "written_consent": "f-1"},
        {**good, "event_id": "7"},
        {**good, "colour": "red"},
        {**good, "method": 7},
        {"purpose": "messaging"},
    ]
    path = consent_file(tmp_path, bad, "ndjson")
    result = cli("consent", "import", path, "--db", reg)
    assert result.exit_code == 4
    for line in ("row 2: user_id: no such user", "row 3: action: must be grant or withdraw", "row 4: purpose: neither",
                 "row 5: at: a consent cannot be recorded for the future", "row 6: at: not a date or time",
                 "row 7: signal: only a withdrawal", "row 8: signal: dnt withdraws only tracking", "row 9: relation: required",
                 "row 10: by_guardian: a guardian's written consent goes with a grant", "row 11: source: required with event_id",
                 "row 12: colour: unknown field", "row 13: method: must be text", "row 14: user_id: required",
                 "row 14: action: required", "13 of 14 rows are invalid; nothing was written"):
        assert line in result.stderr, line
    assert "赵六" not in result.stderr and "grant-ish" not in result.stderr and "telepathy" not in result.stderr
    assert cli.json("consent", "list", "--db", reg) == []
    skipped = cli("consent", "import", path, "--skip-invalid", "--db", reg, "--format", "json")
    assert skipped.exit_code == 0 and json.loads(skipped.stdout)["inserted"] == 1
    assert "warning: skipped row 2: user_id: no such user" in skipped.stderr
    assert [r["code"] for r in cli.json("consent", "history", "adult", "--db", reg)] == ["messaging"]


def test_import_records_the_policy_version_of_each_time_in_audited_batches(cli, reg, tmp_path):
    cli.json("policy", "version", "add", "v1", "--effective", "2026-01-01", "--db", reg)
    cli.json("policy", "version", "add", "v2", "--effective", "2026-06-01", "--changes", "purposes", "--db", reg)
    rows = [{"user_id": "adult", "action": "grant", "purpose": "surveys", "at": at} for at in ("2025-12-01", "2026-02-01", "2026-07-01")]
    rows.append({"user_id": "kid", "action": "grant", "purpose": "surveys", "at": "2026-02-01"})
    result = cli("consent", "import", consent_file(tmp_path, rows, "csv"), "--batch-size", "3", "--db", reg, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["inserted"] == 4
    assert result.stderr == ("warning: 1 grant given under 18 without a guardian's written consent: a minor's consent "
                             "counts only with one (see `pipolicy consent minors`)\n")
    versions = [r["policy_version"] for r in cli.json("consent", "history", "adult", "--db", reg)]
    assert versions == [None, "v1", "v2"]
    assert check(cli, reg, "kid", "surveys", "2026-03-01")[1]["reason"] == "minor-without-guardian"
    batches = cli.json("audit", "list", "--command", "consent import", "--db", reg)
    assert [e["detail"] for e in batches] == [{"inserted": 3, "keys": [1, 3]}, {"inserted": 1, "keys": [4, 4]}]
    assert "adult" not in json.dumps(batches) and "kid" not in json.dumps(batches)


def test_imported_consents_are_exported_and_erased(cli, reg, tmp_path):
    import sqlite3

    import jsonschema

    from pipolicy_cli.catalog import data_path

    mark = "ZQXMARK"
    rows = [{**IMPORTED[0], "evidence": mark + "-evidence", "event_id": mark + "-1"}, IMPORTED[2]]
    cli.json("consent", "import", consent_file(tmp_path, rows, "json"), "--db", reg)
    document = json.loads(cli("export", "adult", "--db", reg).stdout)
    jsonschema.validate(document, json.loads(data_path("schemas", "export.schema.json").read_text(encoding="utf-8")))
    assert [(c["code"], c["source"], c["event_id"]) for c in document["consents"]] == [("messaging", "app", mark + "-1")]
    def marked() -> bool:
        return any(mark.encode() in path.read_bytes() for path in reg.parent.glob(reg.name + "*"))

    assert marked()
    cli.json("erase", "adult", "--yes", "--db", reg)
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT count(*) FROM consents").fetchone()[0] == 1  # the kid's
    conn.close()
    assert not marked()  # nor in the index on (source, event_id)
