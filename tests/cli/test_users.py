import json

import pytest

from synthetic import people
from tests_support import ID_1949_F, ID_2015_M, people_file

# ID_1949_F: born 1949-12-31, 17th digit even (female); ID_2015_M: born 2015-06-01, male.


def add(cli, db, user_id, *args, expect=0):
    return cli.json("user", "add", user_id, *args, "--db", db, expect=expect)


def head(cli, db):
    return cli.json("audit", "head", "--db", db)


def test_add_validates_normalises_and_masks(cli, db):
    shown = add(cli, db, "u1", "--name", "张三", "--phone", "138 1234 5678", "--email", "Zhang.San@Example.COM",
                "--id-number", ID_1949_F.lower(), "--address", "北京市朝阳区建国路1号")
    assert shown["id"] == 1
    assert shown["name"] == "张*" and shown["phone"] == "138****5678"
    assert shown["email"] == "Z***@example.com" and shown["id_number"] == ID_1949_F[:6] + "********" + ID_1949_F[-4:]
    assert shown["gender"] == "female" and shown["birth_date"] == "1949-**-**"
    revealed = cli.json("user", "show", "u1", "--reveal", "--db", db)
    assert revealed["phone"] == "+8613812345678"
    assert revealed["email"] == "Zhang.San@example.com"
    assert revealed["id_number"] == ID_1949_F
    assert revealed["birth_date"] == "1949-12-31"
    assert revealed["age"] == 76


@pytest.mark.parametrize(
    "args, field",
    [
        (["--phone", "12345"], "phone"),
        (["--phone", "+86 138"], "phone"),
        (["--email", "not-an-address"], "email"),
        (["--id-number", ID_1949_F[:-1] + "1"], "id_number"),
        (["--id-number", "123"], "id_number"),
        (["--gender", "other"], "gender"),
        (["--birth-date", "2999-01-01"], "birth_date"),
        (["--birth-date", "31/12/1949"], "birth_date"),
        (["--id-number", ID_1949_F, "--birth-date", "1950-01-01"], "birth_date"),
        (["--id-number", ID_1949_F, "--gender", "male"], "gender"),
        (["--name", "x" * 101], "name"),
        (["--name", "bad\x07bell"], "name"),
    ],
)
def test_each_rule_refuses_and_writes_nothing(cli, db, args, field):
    before = head(cli, db)
    result = cli("user", "add", "u1", *args, "--db", db)
    assert result.exit_code == 4, result.stderr
    assert f"error: {field}:" in result.stderr
    for value in args[1::2]:
        if len(value) > 3:
            assert value not in result.stderr  # never the value itself
    assert head(cli, db) == before


def test_identifiers_are_unique(cli, db):
    add(cli, db, "u1", "--phone", "13812345678", "--email", "a@example.com", "--id-number", ID_1949_F)
    for args, field in (
        (["--phone", "+86 138-1234-5678"], "phone"),
        (["--email", "A@EXAMPLE.com"], "email"),
        (["--id-number", ID_1949_F], "id_number"),
    ):
        result = cli("user", "add", "u2", *args, "--db", db)
        assert result.exit_code == 4 and f"{field}: already used by another user" in result.stderr
    result = cli("user", "add", "u1", "--db", db)
    assert result.exit_code == 4 and "user_id: already used" in result.stderr


def test_find_by_any_identifier_and_from_stdin(cli, db):
    add(cli, db, "u1", "--phone", "13812345678", "--email", "a@example.com", "--id-number", ID_1949_F)
    for by, value in (("phone", "+86 138 1234 5678"), ("email", "a@EXAMPLE.com"), ("id-number", ID_1949_F.lower()),
                      ("user-id", "u1")):
        assert cli.json("user", "show", value, "--by", by, "--db", db)["user_id"] == "u1"
    assert cli.json("user", "show", "-", "--by", "phone", "--db", db, input="13812345678\n")["user_id"] == "u1"
    missing = cli("user", "show", "13900000000", "--by", "phone", "--db", db)
    assert missing.exit_code == 3 and "13900000000" not in missing.stderr
    assert cli("user", "show", "12", "--by", "phone", "--db", db).exit_code == 4


def test_values_from_stdin_stay_out_of_argv(cli, db):
    shown = cli.json("user", "add", "u1", "--id-number", "-", "--reveal", "--db", db, input=ID_2015_M + "\n")
    assert shown["id_number"] == ID_2015_M
    two = cli("user", "add", "u2", "--phone", "-", "--email", "-", "--db", db, input="x\n")
    assert two.exit_code == 2


def test_every_reveal_is_audited(cli, db):
    add(cli, db, "u1", "--phone", "13812345678")
    add(cli, db, "u2", "--phone", "13812345679")
    cli.json("user", "show", "u1", "--db", db)
    assert cli.json("audit", "list", "--db", db, "--command", "user show --reveal") == []
    cli.json("user", "show", "u1", "--reveal", "--db", db)
    listed = cli.json("user", "list", "--reveal", "--db", db)
    assert {row["phone"] for row in listed} == {"+8613812345678", "+8613812345679"}
    events = cli.json("audit", "list", "--db", db, "--object", "users")
    reveals = [(event["command"], event["key"]) for event in events if event["action"] == "reveal"]
    assert reveals == [("user show --reveal", 1), ("user list --reveal", 1), ("user list --reveal", 2)]


def test_list_is_masked_with_filters(cli, db):
    add(cli, db, "old", "--id-number", ID_1949_F)
    add(cli, db, "kid", "--id-number", ID_2015_M)
    add(cli, db, "unknown", "--name", "王五")
    rows = cli.json("user", "list", "--db", db)
    assert [row["user_id"] for row in rows] == ["old", "kid", "unknown"]
    assert all("*" in (row["id_number"] or "*") for row in rows)
    assert [row["user_id"] for row in cli.json("user", "list", "--minors", "--db", db)] == ["kid"]
    assert [row["user_id"] for row in cli.json("user", "list", "--age-unknown", "--db", db)] == ["unknown"]
    cli.json("config", "set", "guardian-age", "10", "--db", db)
    assert cli.json("user", "list", "--minors", "--db", db) == []
    assert len(cli.json("user", "list", "--created-from", "2000-01-01", "--db", db)) == 3
    assert cli.json("user", "list", "--created-to", "2000-01-01", "--db", db) == []
    assert len(cli.json("user", "list", "--limit", "2", "--db", db)) == 2
    cli.json("user", "cancel", "kid", "--db", db)
    assert [row["user_id"] for row in cli.json("user", "list", "--status", "cancelled", "--db", db)] == ["kid"]
    table = cli("user", "list", "--db", db, "--format", "table")
    assert "old" in table.stdout and ID_1949_F not in table.stdout


def test_update_is_an_audited_correction_naming_the_fields(cli, db):
    add(cli, db, "u1", "--phone", "13812345678", "--name", "张三")
    result = cli.json("user", "update", "u1", "--name", "张三丰", "--email", "z@example.com", "--db", db)
    assert result["changed"] == ["email", "name"]
    event = cli.json("audit", "list", "--db", db, "--command", "user update")[-1]
    assert event["fields"] == ["email", "name", "updated_at"] and event["key"] == 1
    assert "张三丰" not in json.dumps(cli.json("audit", "list", "--db", db), ensure_ascii=False)
    before = head(cli, db)
    assert cli.json("user", "update", "u1", "--name", "张三丰", "--db", db)["changed"] == []
    assert head(cli, db) == before
    assert cli.json("user", "update", "+8613812345678", "--by", "phone", "--clear", "email", "--db", db)["changed"] == ["email"]
    assert cli.json("user", "show", "u1", "--reveal", "--db", db)["email"] is None


def test_update_checks_the_whole_record(cli, db):
    add(cli, db, "u1", "--id-number", ID_1949_F)
    result = cli("user", "update", "u1", "--birth-date", "1950-01-01", "--db", db)
    assert result.exit_code == 4 and "birth_date: contradicts the ID number" in result.stderr
    assert cli("user", "update", "u1", "--clear", "user_id", "--db", db).exit_code == 4
    add(cli, db, "u2", "--phone", "13812345678")
    assert cli("user", "update", "u1", "--phone", "13812345678", "--db", db).exit_code == 4
    corrected = cli.json("user", "update", "u1", "--id-number", ID_2015_M, "--db", db)
    assert corrected["changed"] == ["id_number"]
    assert cli.json("user", "show", "u1", "--db", db)["age"] == 11  # age follows the corrected ID


def test_cancel_keeps_the_time_and_is_idempotent(cli, db):
    add(cli, db, "u1")
    first = cli.json("user", "cancel", "u1", "--at", "2026-03-01 09:00", "--db", db)
    assert first["status"] == "cancelled" and first["cancelled_at"] == "2026-03-01T01:00:00Z"
    before = head(cli, db)
    assert cli.json("user", "cancel", "u1", "--db", db)["cancelled_at"] == "2026-03-01T01:00:00Z"
    assert head(cli, db) == before


def test_unknown_user_is_not_found(cli, db):
    assert cli("user", "show", "ghost", "--db", db).exit_code == 3
    assert cli("user", "cancel", "ghost", "--db", db).exit_code == 3


# ---- import -----------------------------------------------------------------


def count(cli, db):
    return cli.json("status", "--db", db)["counts"]["users"]


@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_import_every_format_and_reimport_changes_nothing(cli, db, tmp_path, fmt):
    path = people_file(tmp_path, 30, fmt)
    result = cli.json("user", "import", path, "--db", db, "--batch-size", "7")
    assert result == {"rows": 30, "inserted": 30, "updated": 0, "unchanged": 0, "invalid": 0, "written": True}
    batches = [e for e in cli.json("audit", "list", "--db", db, "--command", "user import")]
    assert [e["detail"]["keys"] for e in batches] == [[1, 7], [8, 14], [15, 21], [22, 28], [29, 30]]
    before = head(cli, db)
    again = cli.json("user", "import", path, "--db", db)
    assert again["unchanged"] == 30 and again["written"] is False
    assert head(cli, db) == before


def test_import_from_stdin(cli, db, tmp_path):
    path = people_file(tmp_path, 5, "ndjson")
    result = cli.json("user", "import", "-", "--db", db, input=path.read_text(encoding="utf-8"))
    assert result["inserted"] == 5


def test_one_bad_row_means_nothing_is_written(cli, db, tmp_path):
    path = people_file(tmp_path, 10, "csv", bad={4: {"phone": "SECRET-123"}, 7: {"id_number": "11010519491231002"}})
    result = cli("user", "import", path, "--db", db)
    assert result.exit_code == 4
    assert "row 4: phone: not a valid phone number" in result.stderr
    assert "row 7: id_number:" in result.stderr
    assert "SECRET-123" not in result.stderr
    assert count(cli, db) == 0
    skipped = cli.json("user", "import", path, "--skip-invalid", "--db", db)
    assert skipped["inserted"] == 8 and skipped["invalid"] == 2
    assert count(cli, db) == 8


def test_rows_that_repeat_or_collide(cli, db, tmp_path):
    add(cli, db, "existing", "--phone", next(people(1, seed=11))["phone"])
    path = people_file(tmp_path, 4, "ndjson", bad={3: {"email": "user2@example.com"}})
    result = cli("user", "import", path, "--db", db)
    assert "row 1: phone: already used by another user" in result.stderr
    assert "row 3: email: repeats row 2" in result.stderr
    assert count(cli, db) == 1


def test_import_update_applies_audited_corrections(cli, db, tmp_path):
    path = people_file(tmp_path, 5, "csv")
    cli.json("user", "import", path, "--db", db)
    changed = people_file(tmp_path, 5, "csv", bad={2: {"name": "新名字"}, 5: {"address": "上海市徐汇区1号"}}, name="changed.csv")
    refused = cli("user", "import", changed, "--db", db)
    assert refused.exit_code == 4 and "row 2: user_id: exists with other values" in refused.stderr
    result = cli.json("user", "import", changed, "--update", "--db", db)
    assert result["updated"] == 2 and result["unchanged"] == 3
    updates = [e for e in cli.json("audit", "list", "--db", db, "--command", "user import") if e["action"] == "update"]
    assert [(e["key"], e["fields"]) for e in updates] == [(2, ["name", "updated_at"]), (5, ["address", "updated_at"])]


@pytest.mark.parametrize(
    "content, message",
    [
        ("user_id,name\nu1,\"unterminated\n", "broken CSV"),
        (b"user_id,name\nu1,\xff\xfe\n", "not valid UTF-8"),
        ("[{\"user_id\": \"u1\"},", "row 2: not valid JSON"),
        ("[{\"user_id\": \"u1\"}", "not closed"),
        ("user_id,user_id\nu1,u2\n", "repeated column"),
    ],
)
def test_broken_files_are_refused_whole(cli, db, tmp_path, content, message):
    path = tmp_path / "in.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = cli("user", "import", path, "--db", db)
    assert result.exit_code == 4 and message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("user_id,name\nu1,a,b\nu2,b\n", "row 1: row: has 3 fields"),
        ('{"user_id": "u1", "colour": "red"}\n', "row 1: colour: unknown field"),
        ('{"user_id": "u1", "phone": 13812345678}\n', "row 1: phone: must be text"),
        ('{"user_id": "u1"}\nnot json\n', "row 2: row: not valid JSON"),
        ('[1]', "row 1: row: not a JSON object"),
        ("name\n张三\n", "row 1: user_id: required"),
    ],
)
def test_bad_rows_are_reported_by_number(cli, db, tmp_path, content, message):
    path = tmp_path / "in.data"
    path.write_text(content, encoding="utf-8")
    result = cli("user", "import", path, "--db", db)
    assert result.exit_code == 4 and message in result.stderr, result.stderr
    assert count(cli, db) == 0


def test_missing_file(cli, db, tmp_path):
    assert cli("user", "import", tmp_path / "nope.csv", "--db", db).exit_code == 3
