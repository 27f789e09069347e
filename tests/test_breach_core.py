"""Breach drafting at the core: grades, SMS lengths, safe file names."""

import pytest

from pipolicy_cli import breach, notices
from pipolicy_cli.register import Register


@pytest.fixture
def register(tmp_path):
    reg, _ = Register.create_or_migrate(tmp_path / "r.db", "test")
    with reg:
        with reg.transaction("t", "seed") as tx:
            tx.execute("INSERT INTO config (key, value, updated_at) VALUES ('jurisdiction', 'pipl', ?)", (tx.at,))
        yield reg


@pytest.mark.parametrize("people, grade", [(0, "general"), (999_999, "general"), (1_000_000, "relatively major"),
                                           (10_000_000, "major"), (100_000_000, "particularly major")])
def test_grades_at_their_edges(register, people, grade):
    assert breach.grade(register, {"grade": None}, people)["grade"] == grade


def test_an_officer_can_grade_higher_never_lower(register):
    assert breach.grade(register, {"grade": "major"}, 5)["grade"] == "major"
    assert breach.grade(register, {"grade": "general"}, 2_000_000)["grade"] == "relatively major"


def test_sms_lengths():
    assert notices.sms_limit("Plain English text") == 160 and notices.sms_limit("中文短信") == 70
    assert notices.sms_limit("price in € ") == 70  # outside GSM-7's basic set


@pytest.mark.parametrize("user_id", ["../../etc/passwd", "/abs", "..", "a/b", "ok-1.2_3"])
def test_file_names_cannot_leave_their_folder(user_id):
    name = notices.safe_name(user_id)
    assert "/" not in name and not name.startswith(".") and name


def _pushes(n):
    for key in range(1, n + 1):
        user = f"U{key:05d}" if key % 7 else f"用户{key}"
        yield notices.Notice(user, key, "push", user, None, f"notice {key}\n" * (key % 5 + 1))


@pytest.mark.parametrize("n, limit", [(0, None), (3, None), (3, 1), (0x10000, None)])
def test_a_zip_draft_reads_back_with_zipfile(tmp_path, monkeypatch, n, limit):
    """Written by hand (flat memory): zip64 when an offset (forced here with a low limit) or the count needs it."""
    import zipfile

    if limit is not None:
        monkeypatch.setattr(notices, "ZIP32_LIMIT", limit)
    path = tmp_path / "all.zip"
    assert notices.write_zip(path, _pushes(n), "txt", None) == n
    assert path.stat().st_mode & 0o777 == 0o600 and not list(tmp_path.glob("*.part"))
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert len(names) == n and archive.testzip() is None
        for key in {1, n} if n else ():
            assert archive.read(names[key - 1]).decode() == f"notice {key}\n" * (key % 5 + 1)
        if n >= 7:
            assert names[6] == "000000/用户7-7.txt"
        assert all(info.external_attr >> 16 & 0o777 == 0o600 for info in archive.infolist())
