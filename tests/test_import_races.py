"""Imports check the whole file first and write afterwards, in batches; other processes write in between.
These force that interleaving: what another process did meanwhile must neither fail the import nor be
miscounted in its result and audit events."""

import json

import pytest

from pipolicy_cli import access, consents, staging, user_import, users
from pipolicy_cli.register import Register
from pipolicy_cli.register.audit import verify


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        for user_id in ("u1", "u2"):
            users.add(reg, {"user_id": user_id}, "t")
        yield reg


def meanwhile(monkeypatch, register, sql: list[tuple[str, tuple]]):
    """Before the first batch is written, another connection runs `sql` in one transaction."""
    batches = staging.Staging.batches
    done = []

    def interleaved(conn, outcome, size):
        if not done:
            other = Register.open(register.path)
            with other, other.transaction("other", "meanwhile") as tx:
                for statement, params in sql:
                    tx.execute(statement, params)
            done.append(True)
        yield from batches(conn, outcome, size)

    monkeypatch.setattr(staging.Staging, "batches", staticmethod(interleaved))


def lines(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def import_events(register):
    return [json.loads(event)["detail"] for (event,) in register.conn.execute(
        "SELECT event FROM audit_events WHERE json_extract(event, '$.action') = 'import' ORDER BY seq")]


EVENT = {"at": "2026-11-01 10:00", "actor": "svc", "categories": "registration", "purpose": "service", "action": "view",
         "basis": "contract", "source": "app"}


def test_access_import_skips_what_another_import_stored_and_keeps_the_erased_persons_events(register, tmp_path, monkeypatch):
    meanwhile(monkeypatch, register, [
        ("INSERT INTO access_log (at, actor, user_key, categories, purpose, action, basis, source, event_id, recorded_at) "
         "SELECT '2026-11-01T02:00:00Z', 'svc', id, 'registration', 'service', 'view', 'contract', 'app', 'e1', "
         "'2026-11-30T00:00:00Z' FROM users WHERE user_id = 'u1'", ()),
        ("DELETE FROM users WHERE user_id = 'u2'", ()),  # erased meanwhile
    ])
    events = [{**EVENT, "user_id": user_id, "event_id": event_id} for user_id, event_id in (("u1", "e1"), ("u1", "e2"), ("u2", "e3"))]
    result = access.import_events(register, lines(tmp_path / "a.ndjson", events), "ndjson", "t")
    assert (result.inserted, result.skipped) == (2, 1)
    stored = register.conn.execute("SELECT event_id, user_key IS NULL, restricted_at IS NOT NULL FROM access_log ORDER BY id").fetchall()
    assert stored == [("e1", 0, 0), ("e2", 0, 0), ("e3", 1, 1)]
    (detail,) = import_events(register)
    assert detail["inserted"] == 2 and detail["restricted"] == 1 and detail["keys"][1] - detail["keys"][0] == 1
    assert verify(register.conn).ok


def test_consent_import_leaves_out_the_erased_and_what_another_import_stored(register, tmp_path, monkeypatch):
    meanwhile(monkeypatch, register, [
        ("INSERT INTO consents (user_key, code, action, at, source, event_id, recorded_at) "
         "SELECT id, 'messaging', 'grant', '2026-11-01T02:00:00Z', 'crm', 'c1', '2026-11-30T00:00:00Z' FROM users "
         "WHERE user_id = 'u1'", ()),
        ("DELETE FROM users WHERE user_id = 'u2'", ()),
    ])
    rows = [{"user_id": user_id, "action": "grant", "purpose": "messaging", "at": "2026-11-01 10:00", "source": "crm",
             "event_id": event_id} for user_id, event_id in (("u1", "c1"), ("u1", "c2"), ("u2", "c3"))]
    result = consents.import_consents(register, lines(tmp_path / "c.ndjson", rows), "ndjson", "t")
    assert (result.inserted, result.skipped) == (1, 2)
    assert [event_id for (event_id,) in register.conn.execute("SELECT event_id FROM consents ORDER BY id")] == ["c1", "c2"]
    (detail,) = import_events(register)
    assert detail["inserted"] == 1 and detail["keys"][0] == detail["keys"][1]
    assert verify(register.conn).ok


def test_user_import_takes_people_another_import_stored_with_the_same_values_as_unchanged(register, tmp_path, monkeypatch):
    meanwhile(monkeypatch, register, [("INSERT INTO users (user_id, name, status, created_at) "
                                       "VALUES ('u3', 'Li Lei', 'active', '2026-11-30T00:00:00Z')", ())])
    people = [{"user_id": "u3", "name": "Li Lei"}, {"user_id": "u4", "name": "Han Meimei"}]
    result = user_import.import_users(register, lines(tmp_path / "u.ndjson", people), "ndjson", "t")
    assert (result.inserted, result.unchanged) == (1, 1)
    assert register.conn.execute("SELECT count(*) FROM users").fetchone()[0] == 4
    assert verify(register.conn).ok
