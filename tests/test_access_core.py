import pytest

from pipolicy_cli import access, users
from pipolicy_cli.register import Register
from tests_support import ID_1949_F


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        users.add(reg, {"user_id": "u1", "id_number": ID_1949_F}, "t")
        yield reg


def test_check_event_normalises(register):
    words = access.Vocabulary(register)
    values, problems = access.check_event(
        {"at": "2026-11-29 21:00", "actor": " svc ", "user_id": "u1", "categories": ["order", "location", "order"],
         "purpose": "service", "action": "use", "basis": "contract"}, words)
    assert problems == []
    event = dict(zip(access.EVENT_FIELDS, values))
    assert event["at"] == "2026-11-29T13:00:00Z" and event["categories"] == "location,order" and event["actor"] == "svc"


def test_check_event_names_every_fault(register):
    _, problems = access.check_event({"user_id": "u1", "categories": "dreams", "action": "burn", "basis": "whim",
                                      "event_id": "7", "colour": "red"}, access.Vocabulary(register))
    assert {name for name, _ in problems} == {"colour", "at", "actor", "purpose", "categories", "action", "basis", "source"}


def row(at="2026-11-01T00:00:00Z", categories="registration", purpose="service", basis="contract", status="active",
        cancelled_at=None, born="1949-12-31", purpose_latest=None, location=None, tracking=None, provision=None, scope=None):
    return (1, at, "svc", "u1", categories, purpose, "use", basis, status, cancelled_at, born, purpose_latest, location, tracking,
            provision, scope)


def test_the_judge(register):
    judge = access.Judge(register)
    assert judge.faults(row()) == []
    assert [code for code, _ in judge.faults(row(purpose="messaging", basis="consent"))] == ["no-consent"]
    granted = "grant|2026-01-01T00:00:00Z||"
    assert judge.faults(row(purpose="messaging", basis="consent", purpose_latest=granted)) == []
    withdrawn = "withdraw|2026-02-01T00:00:00Z||gpc"
    assert "GPC" in judge.faults(row(purpose="messaging", basis="consent", purpose_latest=withdrawn))[0][1]
    assert [c for c, _ in judge.faults(row(categories="location,order"))] == ["location-no-consent"]
    assert judge.faults(row(categories="location", location=granted)) == []
    assert judge.faults(row(categories="location", basis="vital-interests")) == []
    cancelled = row(status="cancelled", cancelled_at="2026-10-01T00:00:00Z")
    assert [c for c, _ in judge.faults(cancelled)] == ["after-cancellation"]
    assert judge.faults(row(status="cancelled", cancelled_at="2026-10-01T00:00:00Z", basis="other-law")) == []
    kid = row(purpose="surveys", basis="consent", born="2015-06-01", purpose_latest=granted)
    assert [c for c, _ in judge.faults(kid)] == ["minor-without-guardian"]
    with_guardian = row(purpose="surveys", basis="consent", born="2015-06-01", purpose_latest="grant|2026-01-01T00:00:00Z|form-1|")
    assert judge.faults(with_guardian) == []


def test_import_batch_in_several_statements_keeps_order_and_keys(register, tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(access, "STATEMENT_ROWS", 2)  # a batch of 5 rows becomes up to 3 INSERT statements
    rows = [{"at": "2026-11-01T00:00:00Z", "actor": "svc", "user_id": "u1", "categories": "registration",
             "purpose": "service", "action": "view", "basis": "contract", "source": "s", "event_id": str(n)}
            for n in range(12)]
    rows[3]["user_id"] = "ghost"  # invalid, skipped with skip_invalid
    rows[7]["event_id"] = "2"     # resent within the file: skipped
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = access.import_events(register, path, "ndjson", "t", skip_invalid=True, batch_size=5, jobs=1)
    assert (result.inserted, result.skipped, result.invalid) == (10, 1, 1)
    stored = register.conn.execute("SELECT id, event_id FROM access_log ORDER BY id").fetchall()
    assert stored == list(enumerate(["0", "1", "2", "4", "5", "6", "8", "9", "10", "11"], 1))
    details = [json.loads(e)["detail"] for (e,) in register.conn.execute(
        "SELECT event FROM audit_events WHERE event LIKE '%access import%' ORDER BY seq")]
    assert [(d["inserted"], d["keys"]) for d in details] == [(5, [1, 5]), (5, [6, 10])]


def test_categories_in_stored_form_take_the_short_way_and_others_are_normalised(register):
    words = access.Vocabulary(register)
    assert words.in_stored_form("location,order") and words.in_stored_form("order")
    for text in ("order,location", "order,order", "order, location", "dreams", "order,"):
        assert not words.in_stored_form(text)
    event = {"at": "2026-11-29T13:00:00Z", "actor": "svc", "user_id": "u1", "purpose": "service", "action": "use",
             "basis": "contract"}
    for text in ("location,order", "order,location", "order, location,order"):
        values, problems = access.check_event({**event, "categories": text}, words)
        assert problems == [] and values[3] == "location,order"
