import json

import pytest

from tests_support import ID_1949_F


@pytest.fixture
def reg(cli, db):
    cli.json("user", "add", "u1", "--id-number", ID_1949_F, "--db", db)
    cli.json("user", "add", "u2", "--db", db)
    return db


def opened(cli, db, *args, user="u1"):
    return cli.json("request", "open", user, *args, "--db", db)


@pytest.mark.parametrize(
    "received, due",
    [
        ("2026-09-28 10:00", "2026-10-23"),  # the week before National Day
        ("2026-09-30 23:00", "2026-10-27"),  # the eve of National Day
        ("2026-10-01 09:00", "2026-10-27"),  # on a public holiday
        ("2026-10-09 18:00", "2026-10-29"),  # the make-up working Saturday 10-10 counts
        ("2026-10-10 11:00", "2026-10-30"),  # received on the make-up Saturday: not counted
        ("2026-09-30 17:00Z", "2026-10-27"),  # 01:00 on 1 October in Shanghai
    ],
)
def test_pipl_deadline_is_15_working_days_on_chinas_calendar(cli, reg, received, due):
    assert opened(cli, reg, "--kind", "access", "--received", received)["due_on"] == due


def test_a_year_without_an_official_arrangement_is_said(cli, reg):
    from datetime import date

    from pipolicy_cli import deadlines

    result = cli("request", "open", "u1", "--kind", "access", "--received", "2026-11-30", "--db", reg, "--format", "json")
    assert result.exit_code == 0 and "official holiday arrangement" not in result.stderr
    # A request received late in 2026 runs into 2027, for which no arrangement is published yet.
    late = deadlines.due("pipl", date(2026, 12, 20))
    assert late.due_on == date(2027, 1, 11) and "no official holiday arrangement for 2027" in late.note
    assert cli("request", "open", "u1", "--kind", "copy", "--received", "2999-01-01", "--db", reg).exit_code == 4


def test_gdpr_and_ccpa_deadlines(cli, reg):
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    assert opened(cli, reg, "--kind", "access", "--received", "2026-01-31")["due_on"] == "2026-02-28"
    cli.json("config", "set", "jurisdiction", "ccpa", "--db", reg)
    row = opened(cli, reg, "--kind", "access", "--received", "2026-11-20")
    assert (row["due_on"], row["acknowledge_by"]) == ("2027-01-04", "2026-12-08")


def test_deletion_needs_a_ground(cli, reg):
    assert cli("request", "open", "u1", "--kind", "deletion", "--db", reg).exit_code == 4
    assert cli("request", "open", "u1", "--kind", "deletion", "--ground", "boredom", "--db", reg).exit_code == 4
    assert opened(cli, reg, "--kind", "deletion", "--ground", "consent-withdrawn")["ground"] == "consent-withdrawn"
    assert opened(cli, reg, "--kind", "deletion", "--ground", "no-consent")["ground"] == "no-consent"


def test_for_a_deceased_person_a_relative_asks(cli, reg):
    assert cli("request", "open", "u1", "--kind", "copy", "--for-deceased", "--db", reg).exit_code == 4
    row = opened(cli, reg, "--kind", "copy", "--for-deceased", "--requester", "王小明", "--relation", "son")
    assert row["for_deceased"] is True and row["relation"] == "son"


def test_lifecycle_is_attributable_and_audited(cli, reg):
    key = opened(cli, reg, "--kind", "explanation", "--via", "app")["id"]
    assert cli("request", "complete", str(key), "--db", reg).exit_code == 4  # not verified yet
    assert cli("request", "verify", str(key), "--db", reg).exit_code == 4  # how?
    verified = cli.json("request", "verify", str(key), "--method", "SMS code to the registered phone", "--actor", "officer-li", "--db", reg)
    assert (verified["status"], verified["verified_by"]) == ("verified", "officer-li")
    done = cli.json("request", "complete", str(key), "--note", "explained the processing by letter", "--db", reg)
    assert done["status"] == "completed" and done["closed_at"] and done["days_left"] is None
    assert cli("request", "reject", str(key), "--reason", "late", "--db", reg).exit_code == 4
    steps = [e["command"] for e in cli.json("audit", "list", "--db", reg, "--object", "requests")]
    assert steps == ["request open", "request verify", "request complete"]


def test_rejection_needs_reasons(cli, reg):
    key = str(opened(cli, reg, "--kind", "correction")["id"])
    assert cli("request", "reject", key, "--db", reg).exit_code == 4
    row = cli.json("request", "reject", key, "--reason", "identity could not be verified", "--db", reg)
    assert row["status"] == "rejected" and row["reason"] == "identity could not be verified"


def test_extension_once_within_the_window(cli, reg):
    key = str(opened(cli, reg, "--kind", "access")["id"])
    refused = cli("request", "extend", key, "--reason", "complex", "--db", reg)
    assert refused.exit_code == 4 and "allows no extension" in refused.stderr
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    key = str(opened(cli, reg, "--kind", "access")["id"])
    assert cli("request", "extend", key, "--db", reg).exit_code == 4
    row = cli.json("request", "extend", key, "--reason", "many systems to search", "--db", reg)
    assert row["extended_due_on"] > row["due_on"]
    assert cli("request", "extend", key, "--reason", "again", "--db", reg).exit_code == 4
    stale = str(opened(cli, reg, "--kind", "access", "--received", "2026-01-05")["id"])
    assert cli("request", "extend", stale, "--reason", "late", "--db", reg).exit_code == 4


def test_overdue_and_due_within(cli, reg):
    old = opened(cli, reg, "--kind", "access", "--received", "2026-01-05")
    assert old["overdue"] is True and old["days_left"] < 0
    fresh = opened(cli, reg, "--kind", "copy", user="u2")
    assert fresh["overdue"] is False and fresh["days_left"] > 3
    overdue = cli("request", "list", "--overdue", "--db", reg, "--format", "json")
    assert overdue.exit_code == 5 and [r["id"] for r in json.loads(overdue.stdout)] == [old["id"]]
    assert [r["id"] for r in cli.json("request", "list", "--due-within", "3d", "--db", reg)] == [old["id"]]
    assert len(cli.json("request", "list", "--due-within", "60d", "--db", reg)) == 2
    assert cli("request", "list", "--due-within", "soon", "--db", reg).exit_code == 4
    check = cli("status", "--check", "--db", reg, "--format", "json")
    assert check.exit_code == 5 and "1 requests are overdue" in json.loads(check.stdout)["attention"]
    cli.json("request", "verify", str(old["id"]), "--method", "counter", "--db", reg)
    cli.json("request", "complete", str(old["id"]), "--db", reg)
    assert cli("request", "list", "--overdue", "--db", reg).exit_code == 0
    assert cli("status", "--check", "--db", reg).exit_code == 0


def test_cancelling_an_account_opens_a_deletion_request(cli, reg):
    cancelled = cli.json("user", "cancel", "u1", "--db", reg)
    request = cli.json("request", "show", str(cancelled["deletion_request"]), "--db", reg)
    assert (request["kind"], request["ground"], request["user_id"]) == ("deletion", "user-left", "u1")
    assert cli.json("user", "cancel", "u1", "--db", reg)["deletion_request"] is None  # once
    cli.json("request", "verify", str(request["id"]), "--method", "logged-in session", "--db", reg)
    refused = cli("request", "complete", str(request["id"]), "--db", reg)
    assert refused.exit_code == 4 and "--yes" in refused.stderr
    assert cli.json("request", "complete", str(request["id"]), "--yes", "--db", reg)["status"] == "completed"
    assert cli("user", "show", "u1", "--db", reg).exit_code == 3


def test_lists_and_filters(cli, reg):
    opened(cli, reg, "--kind", "access")
    opened(cli, reg, "--kind", "copy", user="u2")
    assert [r["kind"] for r in cli.json("request", "list", "--user", "u2", "--db", reg)] == ["copy"]
    assert [r["kind"] for r in cli.json("request", "list", "--kind", "access", "--db", reg)] == ["access"]
    assert len(cli.json("request", "list", "--status", "open", "--db", reg)) == 2
    assert cli("request", "show", "99", "--db", reg).exit_code == 3
