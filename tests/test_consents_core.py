import json

import pytest

from pipolicy_cli import consents, policy, users
from pipolicy_cli.errors import InvalidInput
from pipolicy_cli.register import Register
from tests_support import ID_1949_F, ID_2015_M


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        users.add(reg, {"user_id": "u1", "id_number": ID_1949_F}, "t")
        users.add(reg, {"user_id": "kid", "id_number": ID_2015_M}, "t")
        yield reg


def test_check_event_normalises(register):
    values, problems = consents.check_event(
        {"user_id": " u1 ", "action": "withdraw", "purpose": "sharing", "at": "2026-11-29 21:00", "signal": "gpc",
         "method": "", "source": "web", "event_id": "9"}, consents.Rules(register))
    assert problems == []
    event = dict(zip(consents.EVENT_COLUMNS, values))
    assert event == {"user_id": "u1", "code": "sharing", "action": "withdraw", "at": "2026-11-29T13:00:00Z", "method": None,
                     "evidence": None, "signal": "gpc", "guardian_name": None, "guardian_relation": None,
                     "written_consent": None, "source": "web", "event_id": "9"}


def test_check_event_names_every_fault(register):
    _, problems = consents.check_event({"action": "grant", "purpose": "dreams", "at": "2999-01-01", "signal": "gpc",
                                        "by_guardian": "x", "event_id": "7", "evidence": "\x07", "colour": "red"},
                                       consents.Rules(register))
    assert [name for name, _ in problems] == ["colour", "evidence", "user_id", "purpose", "at", "signal", "relation", "source"]


def test_one_grant_is_checked_as_an_import_checks_it_and_named_by_its_options(register):
    kid = users.find(register, "kid")
    with pytest.raises(InvalidInput) as caught:
        consents.record(register, kid, "messaging", "grant", "t", by_guardian="王芳", at="tomorrow-ish")
    assert caught.value.problems == ["--at: not a date or time", "--relation: required: a guardian's consent names the "
                                     "guardian, the relation and the written consent"]
    event = consents.record(register, kid, "messaging", "grant", "t", at="2026-02-01")
    assert event["warning"].startswith("the person was 10 at that time") and event["source"] is None
    assert register.conn.execute("SELECT count(*) FROM consents").fetchone()[0] == 1


def test_import_skips_resent_events_and_finishes_a_killed_run(register, tmp_path, monkeypatch):
    policy.add_version(register, "v1", "2026-03-01", [], False, None, "t")
    rows = [{"user_id": "u1", "action": "grant", "purpose": "surveys", "at": f"2026-0{1 + n % 5}-02", "source": "app",
             "event_id": str(n)} for n in range(9)]
    rows[3]["user_id"] = "ghost"  # invalid, skipped with skip_invalid
    rows[6]["event_id"] = "2"     # resent within the file
    path = tmp_path / "c.ndjson"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    real, calls = register.transaction, []

    def dying(actor, command):
        calls.append(command)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed during the second batch
        return real(actor, command)

    monkeypatch.setattr(register, "transaction", dying)
    with pytest.raises(KeyboardInterrupt):
        consents.import_consents(register, path, "ndjson", "t", skip_invalid=True, batch_size=4, jobs=1)
    monkeypatch.setattr(register, "transaction", real)
    rest = consents.import_consents(register, path, "ndjson", "t", skip_invalid=True, batch_size=4, jobs=2)
    assert (rest.rows, rest.inserted, rest.skipped, rest.invalid) == (9, 3, 5, 1)
    stored = register.conn.execute("SELECT event_id, at, policy_version FROM consents ORDER BY id").fetchall()
    assert [event_id for event_id, _, _ in stored] == ["0", "1", "2", "4", "5", "7", "8"]
    assert all((version == "v1") == (at >= "2026-03-01") for _, at, version in stored)

