"""Tasks at the core: fan-out, reports, and closing a request, without the CLI."""

import pytest

from pipolicy_cli import inventory, requests, tasks, users
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        users.add(reg, {"user_id": "u1", "email": "a@example.com", "name": "张三"}, "t")
        for name in ("crm", "mail"):
            inventory.add_system(reg, name, "internal", None, None, None, "t")
        for system, field in (("crm", "name"), ("crm", "email"), ("mail", "email")):
            inventory.add_item(reg, {"user_id": "u1", "category": "registration", "field": field, "system": system,
                                     "source": "provided"}, "t")
        yield reg


def verified(register, kind="correction"):
    key = requests.open_request(register, users.find(register, "u1"), kind, "t")["id"]
    requests.verify(register, key, "counter", "t")
    return key


def test_fan_out_sends_each_system_only_what_it_holds(register):
    key = verified(register)
    rows = list(tasks.query(register, request_id=key))
    assert [(r["system"], r["action"]) for r in rows] == [("crm", "correct"), ("mail", "correct")]
    crm, mail = tasks.pull(register, "crm", "sys"), tasks.pull(register, "mail", "sys")
    assert crm[0]["identifiers"] == {"name": "张三", "email": "a@example.com"}
    assert mail[0]["identifiers"] == {"email": "a@example.com"}


def test_reports_are_all_or_nothing_and_idempotent(register):
    key = verified(register)
    first, second = (r["id"] for r in tasks.query(register, request_id=key))
    with pytest.raises(InvalidInput) as caught:
        tasks.report(register, [(first, "done", None), (404, "done", None)], "sys")
    assert caught.value.problems == ["line 2: id: no task 404"]
    assert {r["state"] for r in tasks.query(register)} == {"open"}
    with pytest.raises(NotFound):
        tasks.report(register, [(404, "done", None)], "sys")
    assert tasks.report(register, [(first, "done", "ok")], "sys")[0]["changed"] is True
    assert tasks.report(register, [(first, "done", "ok")], "sys")[0]["changed"] is False
    with pytest.raises(InvalidInput):
        requests.complete(register, key, "officer")
    tasks.report(register, [(second, "done", None)], "sys")
    assert requests.complete(register, key, "officer")["status"] == "completed"
    assert register.conn.execute("SELECT count(*) FROM tasks WHERE payload IS NOT NULL").fetchone()[0] == 0


def test_override_cancels_what_is_open_and_needs_a_reason(register):
    key = verified(register)
    with pytest.raises(InvalidInput):
        requests.complete(register, key, "officer", override="  ")
    requests.complete(register, key, "officer", override="system retired")
    assert {r["state"] for r in tasks.query(register, request_id=key)} == {"cancelled"}
