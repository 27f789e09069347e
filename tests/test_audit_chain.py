"""The audit chain catches every single-event edit, deletion, insertion and swap.

The exhaustive part runs the real verifier over the window around each
mutation (a change at event i can only be seen at i or i+1, and the verifier
is a pure function of the rows it is given and the hash before them), which
makes 40,000 mutations of a 10,000-event chain take a second. A sample of the
same mutations is then made in the SQLite file and caught through the CLI.
"""

from __future__ import annotations

import random
import sqlite3

import pytest

from pipolicy_cli.register import Register, audit

N = 10_000


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    path = tmp_path_factory.mktemp("chain") / "register.db"
    register, _ = Register.create_or_migrate(path, "test")
    with register:
        with register.transaction("test", "bulk") as tx:
            remaining = N - audit.head(register.conn).count
            for i in range(remaining):
                tx.record("update", "things", key=i, fields=[f"f{i % 7}"])
        rows = register.conn.execute("SELECT seq, event, hash FROM audit_events ORDER BY seq").fetchall()
    assert len(rows) == N
    return path, rows


def window_check(rows, start, window):
    previous = rows[start - 1][2] if start > 0 else audit.GENESIS
    return audit.verify_rows(window, previous=previous, expected=start + 1)


def test_the_untouched_chain_verifies(chain):
    path, rows = chain
    assert audit.verify_rows(rows).ok
    with Register.open(path) as register:
        result = audit.verify(register.conn)
    assert result.ok and result.count == N and result.hash == rows[-1][2]


def test_every_edit_is_caught(chain):
    _, rows = chain
    for i in range(N):
        seq, event, digest = rows[i]
        for forged in ((seq, event.replace('"actor":"test"', '"actor":"tset"'), digest), (seq, event, digest[::-1])):
            result = window_check(rows, i, [forged, *rows[i + 1 : i + 2]])
            assert not result.ok and result.first_bad == seq, i


def test_every_deletion_is_caught(chain):
    _, rows = chain
    for i in range(N - 1):
        result = window_check(rows, i, rows[i + 1 : i + 3])
        assert not result.ok and result.first_bad == i + 1, i
    # Deleting the last event leaves a consistent shorter chain: the anchor catches it.
    assert not audit.verify_rows(rows[:-1], anchor=rows[-1][2]).ok


def test_every_insertion_is_caught_even_with_a_correct_hash(chain):
    _, rows = chain
    for i in range(N):
        previous = rows[i - 1][2] if i else audit.GENESIS
        text = audit.canonical({"action": "delete", "actor": "intruder", "alg": "sha256", "at": "x", "command": "c",
                                "fields": [], "key": 1, "object": "users"})
        forged = (i + 1, text, audit.chain_hash(previous, i + 1, text, None))
        shifted = [(seq + 1, event, digest) for seq, event, digest in rows[i : i + 2]]
        result = window_check(rows, i, [forged, *shifted])
        assert not result.ok, i
        if i < N - 1:
            assert result.first_bad == i + 2, i
    # Appending a well-formed event is only caught with a key or an anchor held elsewhere.


def test_every_swap_of_neighbours_is_caught(chain):
    _, rows = chain
    for i in range(N - 1):
        a, b = rows[i], rows[i + 1]
        swapped = [(a[0], b[1], b[2]), (b[0], a[1], a[2])]
        result = window_check(rows, i, swapped)
        assert not result.ok and result.first_bad == i + 1, i
        moved = [b, a]
        result = window_check(rows, i, moved)
        assert not result.ok and result.first_bad == i + 1, i


def test_a_rewritten_tail_is_caught_by_the_anchor(chain):
    _, rows = chain
    rewritten = list(rows[:5000])
    previous = rewritten[-1][2]
    for seq, event, _ in rows[5000:]:
        text = event.replace('"actor":"test"', '"actor":"evil"')
        previous = audit.chain_hash(previous, seq, text, None)
        rewritten.append((seq, text, previous))
    assert audit.verify_rows(rewritten).ok
    result = audit.verify_rows(rewritten, anchor=rows[-1][2])
    assert not result.ok and result.reason == "the given head is not in the chain"


def test_an_appended_forgery_is_caught_with_a_key():
    key = b"k" * 32
    rows, previous = [], audit.GENESIS
    for seq in range(1, 4):
        text = audit.canonical({"action": "x", "alg": audit.KEYED, "seq_hint": seq})
        previous = audit.chain_hash(previous, seq, text, key)
        rows.append((seq, text, previous))
    forged_text = audit.canonical({"action": "x", "alg": audit.KEYED})
    rows.append((4, forged_text, audit.chain_hash(previous, 4, forged_text, None)))
    result = audit.verify_rows(rows, key=key)
    assert not result.ok and result.first_bad == 4
    downgraded = rows[:3] + [(4, audit.canonical({"action": "x", "alg": audit.PLAIN}), "")]
    downgraded[3] = (4, downgraded[3][1], audit.chain_hash(previous, 4, downgraded[3][1], None))
    assert audit.verify_rows(downgraded, key=key).reason.startswith("unkeyed event after keyed")


@pytest.mark.parametrize("seed", range(6))
def test_mutations_in_the_file_are_caught_through_the_cli(chain, tmp_path, cli, seed):
    source, rows = chain
    path = tmp_path / "copy.db"
    src = sqlite3.connect(source)
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    rng = random.Random(seed)
    i = rng.randrange(2, N - 2)
    kind = ["edit", "delete", "insert", "swap", "edit", "delete"][seed]
    if kind == "edit":
        dst.execute("UPDATE audit_events SET event = replace(event, 'test', 'tset') WHERE seq = ?", (i,))
    elif kind == "delete":
        dst.execute("DELETE FROM audit_events WHERE seq = ?", (i,))
    elif kind == "insert":
        dst.execute("UPDATE audit_events SET seq = seq + 1000000 WHERE seq > ?", (i,))
        dst.execute("UPDATE audit_events SET seq = seq - 1000000 + 1 WHERE seq > 1000000")
        dst.execute("INSERT INTO audit_events (seq, event, hash) VALUES (?, ?, ?)", (i + 1, rows[0][1], rows[0][2]))
    else:
        dst.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", (i,))
        dst.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (i, i + 1))
        dst.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", (i + 1,))
    dst.commit()
    dst.close()
    result = cli.json("audit", "verify", "--db", path, expect=5)
    assert result["ok"] is False and result["first_bad"] in (i, i + 1), (kind, i, result)


def test_the_fast_event_builder_writes_canonical_json():
    from hypothesis import given, strategies as st

    text = st.text(max_size=30)

    @given(text, text, text, st.lists(text, max_size=4), st.none() | st.integers(-2**62, 2**62), text,
           st.none() | st.dictionaries(text, st.integers() | text, max_size=3))
    def check(action, actor, command, fields, key, object_kind, detail):
        built = audit.event_text(action, actor, audit.PLAIN, "2026-01-01T00:00:00Z", command, fields, key, object_kind, detail)
        event = {"action": action, "actor": actor, "alg": audit.PLAIN, "at": "2026-01-01T00:00:00Z",
                 "command": command, "fields": sorted(fields), "key": key, "object": object_kind}
        if detail:
            event["detail"] = detail
        assert built == audit.canonical(event)

    check()
