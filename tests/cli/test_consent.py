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
