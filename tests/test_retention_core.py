"""Retention at the core: floors, the sweep's batches and its resumption, without the CLI."""

import pytest

from pipolicy_cli import dates, retention, sweep, users
from pipolicy_cli.errors import InvalidInput, Locked
from pipolicy_cli.register import Register


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        retention.load_defaults(reg, "test")
        key = users.add(reg, {"user_id": "u1"}, "t")["id"]
        with reg.transaction("t", "seed") as tx:
            for number in range(25):
                tx.execute("INSERT INTO access_log (at, actor, user_key, categories, purpose, action, basis, recorded_at) "
                           "VALUES (?, 'svc', ?, 'registration', 'service', 'view', 'contract', ?)",
                           (f"2024-01-{number + 1:02d}T00:00:00Z", key, tx.at))
        yield reg


def test_floors_compare_lengths_not_spelling():
    assert dates.approx_days(dates.parse_duration("26 weeks")) < dates.approx_days(dates.parse_duration("6 months"))
    assert dates.approx_days(dates.parse_duration("P1Y")) == dates.approx_days(dates.parse_duration("12 months"))


def test_a_rule_under_the_floor_names_its_source(register):
    with pytest.raises(InvalidInput, match="Cybersecurity Law Art. 21"):
        retention.set_rule(register, "t", table="access_log", keep="26 weeks", action="delete")
    assert retention.set_rule(register, "t", table="access_log", keep="183d", action="delete")["keep"] == "183d"


def test_batches_resume_where_a_stopped_sweep_left_off(register):
    calls = []
    first = sweep.Sweep(register, "t", as_of="2026-01-01T00:00:00Z", batch_size=10,
                        should_stop=lambda: len(calls) >= 1, progress=lambda label, rows: calls.append(rows)).run()
    assert first["state"] == "stopped" and first["counts"]["table access_log: delete"] == 10
    second = sweep.Sweep(register, "t", batch_size=10).run()
    assert second["id"] == first["id"] and second["as_of"] == "2026-01-01T00:00:00Z"
    assert second["counts"]["table access_log: delete"] == 25 and second["state"] == "done"
    assert register.conn.execute("SELECT count(*) FROM access_log").fetchone()[0] == 0


def test_another_moment_supersedes_a_stopped_sweep(register):
    sweep.Sweep(register, "t", as_of="2026-01-01T00:00:00Z", batch_size=10, max_seconds=0).run()
    later = sweep.Sweep(register, "t", as_of="2026-02-01T00:00:00Z").run()
    states = {row["id"]: (row["state"], row["stop_reason"]) for row in sweep.history(register)}
    assert states == {1: ("stopped", "superseded"), later["id"]: ("done", None)}


def test_the_lock_is_exclusive(register):
    with sweep.lock(register):
        with pytest.raises(Locked):
            sweep.Sweep(register, "t").run()
    assert sweep.Sweep(register, "t").run()["state"] == "done"


def test_a_new_register_gives_free_pages_back_in_place(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "fresh.db", "test")
    with reg:
        assert reg.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert reg.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_free_pages_go_back_in_steps_and_at_most_a_budget_a_run(register, monkeypatch):
    conn = register.conn
    with register.transaction("t", "seed") as tx:
        tx.execute("CREATE TABLE filler (blob BLOB)")
        tx.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) "
                   "INSERT INTO filler SELECT zeroblob(3000) FROM n")
    with register.transaction("t", "seed") as tx:
        tx.execute("DELETE FROM filler")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (free,), (page_size,) = (conn.execute(f"PRAGMA {name}").fetchone() for name in ("freelist_count", "page_size"))
    assert free > sweep.VACUUM_MIN_PAGES
    monkeypatch.setattr(sweep, "GIVE_BACK_STEP", 500 * page_size)
    monkeypatch.setattr(sweep, "GIVE_BACK_PER_RUN", 1200 * page_size)

    steps = []
    assert sweep.give_back(register, should_stop=lambda: len(steps) >= 2 or steps.append(1)) == (1000, [])  # stopped
    assert sweep.give_back(register) == (1200, [])  # 500 + 500 + 200: the budget
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == free - 2200

    summary = sweep.Sweep(register, "t", as_of="2026-01-01T00:00:00Z").run()
    assert summary["counts"]["free pages given back"] == 1200


def test_batches_are_sized_to_take_about_batch_seconds(register):
    run = sweep.Sweep(register, "t")
    sizes = []
    for seconds in (0.05, 0.5, 3.0, 20.0, 200.0):  # what each batch took
        run._size_next_batch(seconds, run.batch_size)
        sizes.append(run.batch_size)
    # x8 at most; then about BATCH_SECONDS' worth; MAX_BATCH at most; halved at most when slow
    assert sizes == [80_000, 640_000, 1_000_000, 750_000, 375_000]
    run._size_next_batch(0.01, 10)  # a last, partial batch says nothing about the rate
    assert run.batch_size == 375_000
    fixed = sweep.Sweep(register, "t", batch_size=500)
    fixed._size_next_batch(0.001, 500)
    assert fixed.batch_size == 500
