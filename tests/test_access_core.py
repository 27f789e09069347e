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
