import io
import json

from pipolicy_cli.cli.output import Environment, Format, Output


def test_an_unexpected_error_is_one_line_without_its_message(cli, db, monkeypatch):
    from pipolicy_cli import status

    def boom(register):
        raise ValueError("13812345678 leaked")

    monkeypatch.setattr(status, "ATTENTION_CHECKS", [boom])
    result = cli("status", "--check", "--db", db)
    assert result.exit_code == 1
    assert "internal error: ValueError" in result.stderr
    assert "13812345678" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_debug_shows_the_stack_but_still_not_the_value(cli, db, monkeypatch):
    from pipolicy_cli import status

    def boom(register):
        value = "".join(["138", "1234", "5678"])  # a value known only at run time
        raise ValueError(value)

    monkeypatch.setattr(status, "ATTENTION_CHECKS", [boom])
    result = cli("status", "--check", "--db", db, env={"PIPOLICY_DEBUG": "1"})
    assert result.exit_code == 1 and "boom" in result.stderr
    assert "13812345678" not in result.stderr


def test_json_mode_errors_add_a_json_line(cli, tmp_path):
    result = cli("status", "--db", tmp_path / "none.db", "--json")
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("pipolicy: error: no register")
    assert json.loads(lines[-1])["error"] == {
        "message": lines[0].removeprefix("pipolicy: error: "),
        "kind": "not_found",
        "exit_code": 3,
    }


def test_table_mode_errors_are_one_line(cli, tmp_path):
    result = cli("status", "--db", tmp_path / "none.db", "--format", "table")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1


def test_usage_errors_exit_2(cli):
    assert cli("no-such-command").exit_code == 2
    assert cli("status", "--no-such-option").exit_code == 2


def fake(tty: bool, no_color: bool = False) -> Output:
    env = Environment(io.StringIO(), io.StringIO(), tty, tty, no_color)
    return Output(Format.auto, env)


def test_auto_is_json_when_piped_and_a_table_on_a_terminal():
    piped = fake(tty=False)
    piped.rows([{"a": 1}])
    assert json.loads(piped.env.stdout.getvalue()) == [{"a": 1}]
    terminal = fake(tty=True, no_color=True)
    terminal.rows([{"a": "[bold]x[/bold]"}])
    drawn = terminal.env.stdout.getvalue()
    assert "[bold]x[/bold]" in drawn  # data is never read as markup
    assert "\x1b[" not in drawn


def test_empty_json_list_is_an_array():
    out = fake(tty=False)
    out.rows(iter([]))
    assert json.loads(out.env.stdout.getvalue()) == []


def test_non_ascii_stays_readable():
    out = Output(Format.json, Environment(io.StringIO(), io.StringIO(), False, False, False))
    out.rows([{"name": "张三"}])
    assert "张三" in out.env.stdout.getvalue()


def test_csv_and_ndjson():
    out = Output(Format.csv, Environment(io.StringIO(), io.StringIO(), False, False, False))
    out.rows([{"a": 1, "b": ["x", "y"]}], ["a", "b"])
    assert out.env.stdout.getvalue() == 'a,b\n1,"x, y"\n'
    out = Output(Format.ndjson, Environment(io.StringIO(), io.StringIO(), False, False, False))
    out.rows([{"a": 1}, {"a": 2}])
    assert out.env.stdout.getvalue() == '{"a": 1}\n{"a": 2}\n'


def test_quickstart_walks_through_a_fresh_register(cli, tmp_path, home):
    folder = tmp_path / "demo"
    result = cli("quickstart", "--dir", folder)
    assert result.exit_code == 0, result.stderr
    assert "Step 1 of" in result.stdout and "audit verify" in result.stdout
    assert "row 25: phone: not a valid phone number" in result.stderr  # the demo's bad rows are shown
    status = cli.json("status", "--db", folder / "register.db")
    assert status["counts"]["users"] == 22  # 24 imported, two erased (one through a deletion request)
    assert status["erasures_pending_in_backups"] == 1 and status["scrub_pending"] == 0
    assert (folder / "U00000004-export.md").read_text(encoding="utf-8").startswith("# Your personal information")
    # the copy request waits for its two systems; the deletion closed when both confirmed
    assert [r["status"] for r in cli.json("request", "list", "--db", folder / "register.db")] == ["open", "verified", "completed"]
    tasks = cli.json("task", "list", "--db", folder / "register.db")
    assert [(t["request_id"], t["state"]) for t in tasks] == [(2, "pulled"), (2, "pulled"), (3, "done"), (3, "done"), (None, "open")]
    assert tasks[-1]["request_kind"] == "retention" and tasks[-1]["system"] == "crm"  # the sweep's tracking rule
    assert cli.json("retention", "history", "--db", folder / "register.db")[0]["counts"] == {"category tracking: delete": 1}
    assert (folder / "register.db").exists() and (folder / "register.key").exists()
    assert not (home / "register.db").exists()  # the officer's own register is untouched
    assert cli.json("audit", "verify", "--db", folder / "register.db")["ok"] is True


def test_quickstart_refuses_a_folder_in_use(cli, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    result = cli("quickstart", "--dir", tmp_path / "used")
    assert result.exit_code == 4


def test_a_reader_that_goes_away_stops_the_output_quietly(cli, db, tmp_path):
    import os
    import subprocess
    import sys

    from tests_support import people_file

    cli.json("user", "import", people_file(tmp_path, 3000, "ndjson"), "--db", db)
    env = {**os.environ, "PIPOLICY_DB": str(db)}
    with subprocess.Popen([sys.executable, "-m", "pipolicy_cli", "user", "list", "--format", "csv"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout.readline().startswith(b"user_id,")
        process.stdout.close()  # like `| head -1`
        assert process.wait(timeout=60) == 141
        assert process.stderr.read() == b""


def test_an_out_file_in_a_missing_folder_or_on_a_folder_is_invalid_input(cli, db, tmp_path):
    for out, said in ((tmp_path / "missing" / "report.md", "--out: no such folder"), (tmp_path, "is a folder")):
        result = cli("report", "--db", db, "--format", "md", "--out", out)
        assert result.exit_code == 4 and said in result.stderr.splitlines()[0]
    assert not (tmp_path / "missing").exists()
