"""Secrecy: no personal value on stderr, in tracebacks, in audit events, in `--help` or in the process title;
the register, key file, backups and every file written with personal data are 0600 (folders 0700), whatever the
umask; masked output shows no more than the mask.

One register is built through the CLI with marker values planted in every personal field and free-text field,
and another marked person erased; the tests then look for the markers where they must not be.
"""

import csv
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipolicy_cli import masking, proctitle
from pipolicy_cli.cli.app import app
from synthetic import check_digit

KEPT = {  # stays in the register
    "user_id": "zqx-mk1", "name": "司马霁雯", "gender": "male", "birth_date": "1988-06-15", "address": "翠微ZQXADDR路88号",
    "phone": "13957240816", "email": "zqxmailmark@example.org", "id_number": "11010519880615123" + check_digit("11010519880615123"),
    "contact": "wechat:zqxcontact",
}
ERASED = {  # in the backup only, after `erase`
    "user_id": "zqx-gone", "name": "欧阳蓁蓁", "gender": "female", "birth_date": "1977-03-02", "address": "望京ZQXGONE街7号",
    "phone": "15061937284", "email": "zqxgone@example.net", "id_number": "31010419770302456" + check_digit("31010419770302456"),
    "contact": "qq:zqxgonecontact",
}
# Every marker value has "zqx" in it, or is one of these: the names, what the name mask hides, the numbers and dates.
MARKERS = ["zqx", KEPT["name"], KEPT["name"][1:], ERASED["name"], ERASED["name"][1:], KEPT["phone"], ERASED["phone"],
           KEPT["id_number"], ERASED["id_number"], "19880615", "19770302", KEPT["birth_date"], ERASED["birth_date"]]
PYTHON = [sys.executable, "-m", "pipolicy_cli"]


def markers_in(text: str) -> list[str]:
    lowered = text.lower()
    return [marker for marker in MARKERS if marker.lower() in lowered]


class Marked:
    """The marked register: its folder, and a runner that checks every command's stderr."""

    def __init__(self, root: Path):
        self.root = root
        self.db = root / "register.db"
        self.runner = CliRunner()

    def __call__(self, *args, input=None, expect=0, env=None):
        result = self.runner.invoke(app, [*map(str, args), "--db", str(self.db)], input=input, env=env)
        assert result.exit_code == expect, (args, result.exit_code, result.stderr)
        assert markers_in(result.stderr) == [], (args, result.stderr)
        return result


def build(root: Path) -> None:
    run = Marked(root)
    people = root / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(KEPT))
        writer.writeheader()
        writer.writerows([KEPT, ERASED])
    run("init", "--key-file", root / "keys" / "register.key")
    for key, value in [("organisation", "示例有限公司"), ("contact", "客服热线 10086-0000"),
                       ("notice-from", "privacy@demo.example"), ("backup-dir", root / "backups")]:
        run("config", "set", key, value)
    run("system", "add", "crm")
    run("system", "add", "app")
    run("user", "import", people)
    run("user", "add", "zqx-mk3", "--name", "-", input="ZQXTHIRD名\n")
    run("data", "add", KEPT["user_id"], "--category", "registration", "--field", "note", "--system", "crm", "--value", "ZQXDATAVALUE")
    run("data", "add", KEPT["user_id"], "--category", "device", "--field", "push_token", "--system", "app")
    run("data", "add", ERASED["user_id"], "--category", "registration", "--field", "note", "--system", "crm", "--value", "ZQXGONEVALUE")
    run("consent", "grant", KEPT["user_id"], "messaging", "--evidence", "ZQXEVIDENCE", "--method", "app-toggle")
    run("consent", "grant", KEPT["user_id"], "location", "--by-guardian", "ZQXGUARDIAN", "--relation", "mother",
        "--written-consent", "form-1")
    run("consent", "withdraw", KEPT["user_id"], "location", "--evidence", "ZQXWITHDRAWN")
    run("access", "log", KEPT["user_id"], "--categories", "registration", "--purpose", "service", "--action", "view",
        "--basis", "contract", "--used-by", "ZQXUSEDBY")
    events = root / "events.ndjson"
    events.write_text(json.dumps({"at": "2026-01-02T03:04:05Z", "actor": "batch", "user_id": KEPT["user_id"],
                                  "categories": ["registration"], "purpose": "messaging", "action": "use",
                                  "basis": "consent", "source": "night", "event_id": "e1"}) + "\n", encoding="utf-8")
    run("access", "import", events)
    run("request", "open", KEPT["user_id"], "--kind", "copy", "--for-deceased", "--requester", "ZQXREQUESTER", "--relation", "son")
    run("request", "verify", "1", "--method", "ZQXMETHOD")
    run("request", "open", KEPT["user_id"], "--kind", "correction")
    run("request", "reject", "2", "--reason", "ZQXREASON")
    run("breach", "open", "--detected", "2026-11-30 20:00", "--summary", "ZQXSUMMARY", "--cause", "c", "--harm", "h",
        "--measures", "m", "--advice", "a", "--categories", "registration")
    run("breach", "affected", "1", "--users", "-", input=f"{KEPT['user_id']}\n{ERASED['user_id']}\n")
    run("breach", "draft", "1", "--audience", "individuals", "--channel", "email", "--format", "eml", "--out", root / "drafts")
    run("breach", "draft", "1", "--audience", "individuals", "--channel", "letter", "--out", root / "drafts.zip")
    run("breach", "mark-sent", "1", "--users", "-", "--channel", "email", input=f"{KEPT['user_id']}\n")
    run("export", KEPT["user_id"], "--out", root / "export.json")
    run("backup", "create")
    run("erase", ERASED["user_id"], "--yes")


@pytest.fixture(scope="module")
def marked_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("marked")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIPOLICY_HOME", str(root / "home"))
        build(root)
    return root


@pytest.fixture
def marked(marked_folder, tmp_path) -> Marked:
    """A copy of the marked register, for a test to change."""
    copy = tmp_path / "copy"
    shutil.copytree(marked_folder, copy)
    return Marked(copy)


def _bad_files(folder: Path) -> dict[str, Path]:
    files = {
        "bad.csv": "user_id,name,phone,email,id_number,birth_date\n"
                   f"n1,{KEPT['name']},{KEPT['phone']},{KEPT['email']},{KEPT['id_number']},{KEPT['birth_date']}\n"
                   "n2,x,zqx123,zqx@,zqx,zqx\n",
        "headerless.csv": f"{KEPT['user_id']},{KEPT['name']},{KEPT['phone']}\n{ERASED['user_id']},{ERASED['name']},{ERASED['phone']}\n",
        "broken.json": '[{"user_id": "n1", "name": "zqx',
        "unterminated.csv": 'user_id,name\nn1,"zqx\n',
        "keys.ndjson": '{"user_id": "n1", "colour": "zqx"}\n{"user_id": "n2", "phone": 13957240816}\nzqx\n',
        "inventory.csv": f"user_id,category,field,system,source,value\n{KEPT['user_id']},registration,note,crm,provided,zqxinv\n"
                         "nobody,zqx,f,zqx,zqx,zqxinv\n",
        "events.ndjson": '{"at": "zqx", "actor": "zqx", "user_id": "zqx", "categories": ["zqx"], "purpose": "zqx", '
                         '"action": "zqx", "basis": "zqx"}\n',
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "gbk.csv").write_bytes(f"user_id,name\nn1,{KEPT['name']}\n".encode("gbk"))
    return {name: folder / name for name in [*files, "gbk.csv"]}


def test_no_personal_value_on_stderr_whatever_the_command_and_its_outcome(marked, tmp_path):
    mk1, phone, email, id_number, name = KEPT["user_id"], KEPT["phone"], KEPT["email"], KEPT["id_number"], KEPT["name"]
    files = _bad_files(tmp_path)
    matrix = [
        # (expected exit code, arguments, stdin)
        (0, ["status", "--check"], None),
        (0, ["user", "show", mk1], None),
        (0, ["user", "show", phone, "--by", "phone"], None),
        (0, ["user", "show", email, "--by", "email", "--reveal"], None),
        (0, ["user", "show", "-", "--by", "id-number"], id_number + "\n"),
        (3, ["user", "show", "zqx-nobody"], None),
        (3, ["user", "show", "13957240817", "--by", "phone"], None),
        (3, ["user", "show", "zqxnobody@example.org", "--by", "email"], None),
        (3, ["user", "show", ERASED["phone"], "--by", "phone"], None),
        (4, ["user", "show", id_number[:-1] + "0", "--by", "id-number"], None),
        (4, ["user", "show", "zqxbad", "--by", "phone"], None),
        (0, ["user", "list", "--format", "table"], None),
        (0, ["user", "list", "--reveal", "--limit", "1"], None),
        (4, ["user", "add", mk1, "--name", name], None),
        (4, ["user", "add", "new1", "--phone", phone], None),
        (4, ["user", "add", "new1", "--email", email], None),
        (4, ["user", "add", "new1", "--id-number", id_number], None),
        (4, ["user", "add", "new1", "--id-number", id_number[:-1] + "0"], None),
        (4, ["user", "add", "new1", "--phone", phone[:7]], None),
        (4, ["user", "add", "new1", "--email", "zqx@@example.org"], None),
        (4, ["user", "add", "new1", "--birth-date", "zqx-1988"], None),
        (4, ["user", "add", "new1", "--gender", "zqx"], None),
        (4, ["user", "add", "new1", "--name", "zqx\x07"], None),
        (4, ["user", "add", "new1", "--name", "zqx" * 50], None),
        (4, ["user", "add", "new1", "--id-number", id_number, "--birth-date", "1988-06-16"], None),
        (4, ["user", "update", mk1, "--clear", "zqxfield"], None),
        (3, ["user", "update", "zqx-nobody", "--name", name], None),
        (4, ["user", "cancel", mk1, "--at", "zqx"], None),
        (4, ["user", "import", files["bad.csv"]], None),
        (4, ["user", "import", files["headerless.csv"]], None),
        (4, ["user", "import", files["broken.json"]], None),
        (4, ["user", "import", files["unterminated.csv"]], None),
        (4, ["user", "import", files["gbk.csv"]], None),
        (4, ["user", "import", files["keys.ndjson"]], None),
        (4, ["user", "import", "-", "--input-format", "csv"], f"{mk1},{name},{phone}\n"),
        (4, ["consent", "grant", mk1, "zqxpurpose"], None),
        (4, ["consent", "grant", "messaging", phone, "--by", "phone"], None),  # the arguments swapped
        (3, ["consent", "grant", "zqx-nobody", "messaging"], None),
        (4, ["consent", "grant", mk1, "messaging", "--at", "zqx"], None),
        (0, ["consent", "history", mk1], None),
        (5, ["consent", "check", mk1, "location"], None),
        (4, ["consent", "check", "-"], '{"user_id": "zqx-mk1", "purpose": "zqx"}\nzqx\n{"user_id": "zqx", "purpose": "messaging"}\n'),
        (0, ["data", "list", "--reveal"], None),
        (4, ["data", "add", mk1, "--category", "zqx", "--field", "f", "--system", "crm", "--value", "ZQXNEW"], None),
        (4, ["data", "import", files["inventory.csv"]], None),
        (4, ["data", "import", files["headerless.csv"]], None),
        (0, ["access", "list"], None),
        (5, ["access", "violations"], None),
        (4, ["access", "import", files["events.ndjson"]], None),
        (4, ["access", "import", files["headerless.csv"]], None),
        (4, ["access", "log", mk1, "--categories", "zqx", "--purpose", "zqx", "--action", "view", "--basis", "zqx"], None),
        (0, ["request", "show", "1"], None),
        (4, ["request", "open", mk1, "--kind", "deletion", "--ground", "zqx"], None),
        (4, ["request", "complete", "1"], None),
        (0, ["task", "pull", "--system", "crm", "--format", "ndjson"], None),
        (4, ["task", "done", name], None),
        (4, ["task", "done", "-"], "zqx\n"),
        (0, ["export", mk1, "--format", "md"], None),
        (3, ["export", "zqx-nobody"], None),
        (0, ["erase", mk1, "--dry-run"], None),
        (3, ["erase", "zqx-nobody", "--yes"], None),
        (0, ["backup", "list"], None),
        (0, ["retention", "sweep", "--dry-run"], None),
        (0, ["breach", "show", "1"], None),
        (4, ["breach", "affected", "1", "--users", "-"], f"zqx-nobody\n{name}\n"),
        (0, ["breach", "draft", "1", "--audience", "individuals", "--channel", "sms"], None),
        (4, ["breach", "mark-sent", "1", "--users", "-", "--channel", "sms"], f"{name}\n"),
        (0, ["audit", "verify"], None),
        (0, ["report", "--format", "json"], None),
        (4, ["config", "set", name, "x"], None),
        # typer's own usage errors quote what was typed
        (2, ["user", "add", "new1", name], None),  # the name without its --name
        (2, ["user", "show", mk1, phone], None),
        (2, ["user", "show", phone, "--by", "zqx"], None),
        (2, ["request", "show", name], None),
        (2, ["request", "show", "1", "--format", "zqx"], None),
        (2, ["access", "list", "--limit=zqx"], None),
        (2, ["user", name], None),
        (2, [name], None),
    ]
    outcomes = []
    for expected, args, stdin in matrix:
        result = marked.runner.invoke(app, [*map(str, args), "--db", str(marked.db)], input=stdin)
        outcomes.append((args, result.exit_code, markers_in(result.stderr), result.stderr))
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (args, result.stderr)
    assert [(args, code, found) for args, code, found, _ in outcomes if found] == []
    assert [(args, code) for args, code, *_ in outcomes] == [(args, expected) for expected, args, _ in matrix]


def test_usage_errors_keep_their_sense_without_the_value(marked):
    said = {tuple(args): marked.runner.invoke(app, [*args, "--db", str(marked.db)]).stderr for args in [
        ["user", "add", "new1", KEPT["name"]], ["user", "show", KEPT["phone"], "--by", "zqx"],
        ["request", "show", KEPT["name"]], ["user", "lst"], ["access", "list", "--limit", "0"],
    ]}
    assert "Got unexpected extra argument(s) (not shown" in said[("user", "add", "new1", KEPT["name"])]
    assert "Invalid value for '--by': the value given is not one of 'user-id', 'phone'" in said[("user", "show", KEPT["phone"], "--by", "zqx")]
    assert "Invalid value for 'ID': the value given is not a valid int" in said[("request", "show", KEPT["name"])]
    assert "No such command. Did you mean 'list'?" in said[("user", "lst")]
    assert "the value given is not in the range x>=1" in said[("access", "list", "--limit", "0")]


def test_a_headerless_csv_is_refused_naming_no_value(marked, tmp_path):
    result = marked.runner.invoke(app, ["user", "import", str(_bad_files(tmp_path)["headerless.csv"]), "--db", str(marked.db)])
    assert result.exit_code == 4
    assert "the CSV header names none of the fields" in result.stderr and "header row missing" in result.stderr


CRASH = r"""
import sys
kind, argv = sys.argv[1], sys.argv[2:]
from pipolicy_cli import users
from pipolicy_cli.cli import output


class Escaping(BaseException):
    pass


def failing(*args, **kwargs):
    held = {"name": "司马霁雯", "phone": "13957240816"}  # a local with values, for a traceback that shows locals
    raise (Escaping if kind == "base" else ValueError)(f"lookup failed for {held}")


users.find = failing
if kind == "report":  # reporting the failure fails too, with the value in its message
    output.Output.error = failing
sys.argv = ["pipolicy", *argv]
from pipolicy_cli.entry import main

main()
"""


@pytest.mark.parametrize("variable", ["TYPER_STANDARD_TRACEBACK", "_TYPER_STANDARD_TRACEBACK", "PIPOLICY_DEBUG"])
@pytest.mark.parametrize("kind", ["exception", "base", "report"])
def test_an_unexpected_failure_shows_no_value_in_any_traceback_mode(marked_folder, variable, kind):
    env = {**os.environ, "PIPOLICY_HOME": str(marked_folder / "home"), variable: "1"}
    result = subprocess.run([sys.executable, "-c", CRASH, kind, "user", "show", KEPT["user_id"], "--db", str(marked_folder / "register.db")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "internal error" in result.stderr and "Traceback" not in result.stderr
    assert markers_in(result.stdout + result.stderr) == []
    if variable == "PIPOLICY_DEBUG" and kind != "report":
        assert "in failing" in result.stderr  # the stack, without values


def test_typer_never_draws_a_traceback_with_locals():
    assert app.pretty_exceptions_enable is False and app.pretty_exceptions_show_locals is False


def test_audit_events_name_keys_and_fields_never_values(marked):
    listed = marked("audit", "list", "--format", "json").stdout
    assert len(json.loads(listed)) > 30
    assert markers_in(listed) == []
    with sqlite3.connect(marked.db) as conn:
        raw = "\n".join(" ".join(map(str, row)) for row in conn.execute("SELECT * FROM audit_events"))
    assert markers_in(raw) == []
    assert '"fields":["address","birth_date"' in raw  # the import's event names the fields


def _walk(command, path, found):
    found.append(path)
    if hasattr(command, "list_commands"):
        for name in command.list_commands(None):
            _walk(command.get_command(None, name), [*path, name], found)
    return found


def test_no_help_shows_a_value_from_the_register_or_the_config(marked, monkeypatch):
    for key, value in [("dpo", KEPT["name"]), ("contact", KEPT["phone"]), ("organisation", "ZQXORG")]:
        marked("config", "set", key, value)
    monkeypatch.setenv("PIPOLICY_DB", str(marked.db))
    monkeypatch.setenv("PIPOLICY_ACTOR", KEPT["name"])
    paths = _walk(typer.main.get_command(app), [], [])
    assert len(paths) > 90
    for path in paths:
        result = marked.runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, path
        assert markers_in(result.stdout + result.stderr) == [], path


def test_the_process_title_knows_every_command():
    root = typer.main.get_command(app)
    groups = {" ".join(path): set(command.list_commands(None)) for path in _walk(root, [], [])
              for command in [_resolve(root, path)] if hasattr(command, "list_commands")}
    assert groups == {group: set(words) for group, words in proctitle.COMMANDS.items()}


def _resolve(command, path):
    for name in path:
        command = command.get_command(None, name)
    return command


@pytest.mark.parametrize("argv, title", [
    (["user", "add", "U1", "--name", "张三"], "pipolicy user add [redacted]"),
    (["user", "show", "13812345678", "--by", "phone"], "pipolicy user show [redacted]"),
    (["policy", "version", "add", "2026-06"], "pipolicy policy version add [redacted]"),
    (["user", "show", "list"], "pipolicy user show [redacted]"),  # a user_id that is also a command word
    (["张三"], "pipolicy [redacted]"),
    (["status"], None),
    (["user", "add", "--help"], None),
    ([], None),
])
def test_process_titles(argv, title):
    assert proctitle.title(argv) == title


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_ps_shows_the_command_not_its_values(marked_folder):
    env = {**os.environ, "PIPOLICY_HOME": str(marked_folder / "home")}
    waiting = subprocess.Popen([*PYTHON, "user", "add", "zqx-new", "--name", KEPT["name"] + "二", "--email", "-",
                                "--db", str(marked_folder / "absent.db")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        cmdline = b""
        while time.monotonic() < deadline:  # until the title is set (the process then waits for stdin)
            cmdline = Path(f"/proc/{waiting.pid}/cmdline").read_bytes()
            if cmdline.startswith(b"pipolicy"):
                break
            time.sleep(0.05)
        comm = Path(f"/proc/{waiting.pid}/comm").read_text(encoding="utf-8", errors="replace")
    finally:
        waiting.communicate(b"zqx-new@example.org\n", timeout=60)
    assert cmdline.rstrip(b"\0").decode("utf-8") == "pipolicy user add [redacted]"
    assert comm.strip() == "pipolicy user a"  # the kernel keeps 15 characters of the name
    assert markers_in(cmdline.decode("utf-8", "replace") + comm) == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_every_file_written_is_private_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPOLICY_HOME", str(tmp_path / "home" / "deeper"))
    runner = CliRunner()
    db = tmp_path / "new" / "deeper" / "register.db"
    loose = {name: tmp_path / name for name in ("export.json", "report.md", "regulator.md", "notices.mbox")}

    def run(*args, input=None):
        result = runner.invoke(app, [*map(str, args), "--db", str(db)], input=input)
        assert result.exit_code == 0, (args, result.stderr)

    previous = os.umask(0)
    try:
        for path in loose.values():  # files already there, readable by all: the personal data must not inherit that
            path.write_text("old")
            path.chmod(0o644)
        run("init", "--key-file", tmp_path / "keys" / "deeper" / "register.key")
        run("config", "set", "backup-dir", tmp_path / "backups" / "deeper")
        run("config", "set", "contact", "hotline")
        run("config", "set", "notice-from", "privacy@demo.example")
        run("user", "add", "u1", "--name", "张三", "--email", "zhang@example.com", "--address", "北京市朝阳区1号")
        run("user", "add", "u2", "--name", "李四")
        run("system", "add", "crm")
        run("data", "add", "u1", "--category", "registration", "--field", "note", "--system", "crm")
        run("breach", "open", "--detected", "2026-11-30 20:00", "--summary", "s", "--cause", "c", "--harm", "h",
            "--measures", "m", "--advice", "a", "--categories", "registration")
        run("breach", "affected", "1", "--users", "-", input="u1\n")
        run("breach", "draft", "1", "--audience", "individuals", "--channel", "email", "--format", "eml",
            "--out", tmp_path / "drafts" / "deeper")
        run("breach", "draft", "1", "--audience", "individuals", "--channel", "email", "--format", "eml", "--out", loose["notices.mbox"])
        run("breach", "draft", "1", "--audience", "individuals", "--channel", "letter", "--out", tmp_path / "notices.zip")
        run("breach", "draft", "1", "--audience", "regulator", "--out", loose["regulator.md"])
        run("export", "u1", "--out", loose["export.json"])
        run("export", "u1", "--format", "csv", "--out", tmp_path / "export.zip")
        run("report", "--out", loose["report.md"])
        run("backup", "create")
        run("erase", "u2", "--yes")  # the tombstone journal beside the key
        run("retention", "sweep", "--yes")  # the sweep's lock file
        from pipolicy_cli.register import Register

        with Register.open(db) as register:  # -wal and -shm exist while a connection is open
            register.conn.execute("SELECT count(*) FROM users").fetchone()
            sides = [db.with_name(db.name + suffix) for suffix in ("-wal", "-shm")]
            assert all(side.exists() and _mode(side) == 0o600 for side in sides)
    finally:
        os.umask(previous)
    made = [path for path in tmp_path.rglob("*")]
    assert {path.name for path in made} >= {"register.db", "register.key", "register.key.tombstones", "register.db.sweep-lock",
                                            "notices.zip", "export.zip", ".pipolicy-draft"}
    assert len(list((tmp_path / "backups" / "deeper").iterdir())) == 1
    loose_modes = {str(path.relative_to(tmp_path)): oct(_mode(path)) for path in made
                   if _mode(path) != (0o700 if path.is_dir() else 0o600)}
    assert loose_modes == {}


def test_list_and_show_output_shows_no_more_than_the_masks(marked):
    person = json.loads(marked("user", "show", KEPT["user_id"], "--reveal", "--format", "json").stdout)
    shown = json.loads(marked("user", "show", KEPT["user_id"], "--format", "json").stdout)
    for field, mask in masking.MASKS.items():
        assert shown[field] == mask(person[field]), field
    [listed] = [row for row in json.loads(marked("user", "list", "--format", "json").stdout) if row["user_id"] == KEPT["user_id"]]
    assert {field: listed[field] for field in ("name", "phone", "email", "id_number")} == {
        field: shown[field] for field in ("name", "phone", "email", "id_number")}
    hidden = [KEPT["name"][1:], KEPT["phone"], KEPT["email"].split("@")[0][1:], KEPT["id_number"][6:14],
              "ZQXADDR", "zqxcontact", KEPT["birth_date"], "ZQXDATAVALUE", "ZQXGUARDIAN", "ZQXREQUESTER"]
    for args in [("user", "show", KEPT["user_id"]), ("user", "list"), ("data", "list"), ("consent", "history", KEPT["user_id"]),
                 ("consent", "list"), ("request", "list"), ("request", "show", "1"), ("task", "list")]:
        for fmt in ("json", "csv", "table"):
            out = marked(*args, "--format", fmt).stdout
            assert [part for part in hidden if part in out] == [], (args, fmt)
    assert [row["guardian_name"] for row in json.loads(marked("consent", "history", KEPT["user_id"], "--format", "json").stdout)
            if row["guardian_name"]] == [masking.name("ZQXGUARDIAN")]
    assert json.loads(marked("request", "show", "1", "--format", "json").stdout)["requester"] == masking.name("ZQXREQUESTER")
    # --reveal shows them, and each reveal is audited
    assert json.loads(marked("request", "show", "1", "--reveal", "--format", "json").stdout)["requester"] == "ZQXREQUESTER"
    assert "ZQXGUARDIAN" in marked("consent", "history", KEPT["user_id"], "--reveal", "--format", "json").stdout
    reveals = json.loads(marked("audit", "list", "--format", "json").stdout)
    assert [(event["command"], event["object"]) for event in reveals if event["action"] == "reveal"][-2:] == [
        ("request show --reveal", "requests"), ("consent history --reveal", "users")]
    exported = marked("export", KEPT["user_id"]).stdout  # the one unmasked output
    assert KEPT["phone"] in exported and "ZQXGUARDIAN" in exported


@given(st.text(min_size=1, max_size=40).filter(lambda value: "*" not in value))
def test_a_mask_never_shows_the_whole_value(value):
    for mask in (masking.name, masking.id_number, masking.email, masking.text):
        assert len(mask(value).replace("*", "")) < len(value), mask.__name__
    number = value.lstrip("+")
    assert len(number) - len(masking.phone(value).replace("*", "")) >= min(4, len(number))


@given(st.from_regex(r"\+?[0-9]{8,15}", fullmatch=True))
def test_a_phone_mask_hides_at_least_four_digits_in_the_middle(number):
    masked = masking.phone(number)
    digits = number.lstrip("+")
    shown = masked.replace("*", "")
    assert len(digits) - len(shown) >= 4 and masked.count("*") == 4
    assert digits.endswith(masked[-4:]) and digits[-11:].startswith(shown[:-4])
