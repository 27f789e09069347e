"""Breaches: grading, clocks, who is affected and reachable, drafting for each audience, channel and language."""

import email
import email.policy
import json
import mailbox
import sqlite3
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

HOSTILE = "{{ 7*7 }} {% raw %}x{% endraw %} [bold]red[/bold] <script>alert(1)</script> & \"q\""


def hours_ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


COMPLETE = ["--cause", "接口缺少访问控制。", "--harm", "可能被用于诈骗。", "--measures", "已关闭接口。",
            "--advice", "警惕自称客服的来电。", "--categories", "registration,order"]


@pytest.fixture
def reg(cli, db):
    cli.json("config", "set", "organisation", "示例物联网有限公司", "--db", db)
    cli.json("config", "set", "contact", "客服热线 10086-0000", "--db", db)
    cli.json("config", "set", "notice-from", "privacy@demo.example", "--db", db)
    cli.json("user", "add", "u1", "--name", "张三", "--email", "zhang@example.com", "--phone", "13812345678", "--db", db)
    cli.json("user", "add", "u2", "--name", "李四", "--address", "北京市朝阳区1号", "--db", db)
    cli.json("user", "add", "u3", "--db", db)
    cli.json("system", "add", "app", "--db", db)
    cli.json("data", "add", "u3", "--category", "device", "--field", "push_token", "--system", "app", "--db", db)
    cli.json("data", "add", "u1", "--category", "location", "--field", "last_position", "--system", "app", "--db", db)
    return db


def opened(cli, db, *extra, detected=None):
    return cli.json("breach", "open", "--detected", detected or hours_ago(1), "--summary", "接口被未授权访问。", *extra,
                    "--db", db)["id"]


def attach_all(cli, db, key):
    return cli.json("breach", "affected", str(key), "--users", "-", "--db", db, input="u1\nu2\nu3\n")


def test_grading_and_the_pipl_clocks(cli, reg):
    small = cli.json("breach", "show", str(opened(cli, reg)), "--db", reg)
    assert small["grade"] == "general" and small["clocks"] == []
    big = opened(cli, reg, "--affected-count", "1000000", detected=hours_ago(5))
    shown = cli.json("breach", "show", str(big), "--db", reg)
    assert shown["grade"] == "relatively major" and "1 million" in shown["grade_source"]
    clocks = {c["clock"]: c for c in shown["clocks"]}
    assert clocks["cac-report"]["state"] == "overdue" and clocks["cac-report"]["time_left"].startswith("-")
    assert clocks["summary-report"]["state"] == "not started"  # it starts when the incident is closed
    assert "cii-report" not in clocks
    assert cli("breach", "list", "--overdue", "--db", reg).exit_code == 5
    assert cli("status", "--check", "--db", reg).exit_code == 5
    cli.json("breach", "mark-sent", str(big), "--clock", "cac-report", "--db", reg)
    assert {c["clock"]: c["state"] for c in cli.json("breach", "show", str(big), "--db", reg)["clocks"]}["cac-report"] == "late"
    assert cli("breach", "list", "--overdue", "--db", reg).exit_code == 0
    cii = opened(cli, reg, "--cii", "--grade", "major", detected=hours_ago(0.5))
    shown = cli.json("breach", "show", str(cii), "--db", reg)
    running = {c["clock"]: c for c in shown["clocks"]}
    assert shown["grade"] == "major" and "officer" in shown["grade_source"]
    assert running["cii-report"]["state"] == "running" and running["cii-report"]["time_left"].startswith("0h")
    closed = cli.json("breach", "close", str(cii), "--db", reg)
    assert {c["clock"]: c["state"] for c in closed["clocks"]}["summary-report"] == "running"


def test_gdpr_72_hours_and_late_reasons(cli, reg):
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    key = str(opened(cli, reg, detected=hours_ago(80)))
    [clock] = cli.json("breach", "show", key, "--db", reg)["clocks"]
    assert clock["clock"] == "authority" and clock["state"] == "overdue"
    cli.json("breach", "mark-sent", key, "--clock", "authority", "--db", reg)
    [clock] = cli.json("breach", "show", key, "--db", reg)["clocks"]
    assert clock["state"] == "late, reasons missing"
    cli.json("breach", "mark-sent", key, "--clock", "authority", "--late-reason", "forensics took four days", "--db", reg)
    assert cli.json("breach", "show", key, "--db", reg)["clocks"][0]["state"] == "late"
    assert cli("breach", "mark-sent", key, "--clock", "cac-report", "--db", reg).exit_code == 4


def test_california_30_days_and_the_attorney_general_above_500(cli, reg):
    cli.json("config", "set", "jurisdiction", "ccpa", "--db", reg)
    key = str(opened(cli, reg, "--affected-count", "501", detected=hours_ago(24 * 31)))
    clocks = {c["clock"]: c for c in cli.json("breach", "show", key, "--db", reg)["clocks"]}
    assert clocks["individuals"]["state"] == "overdue" and clocks["attorney-general"]["state"] == "not started"
    attach_all(cli, reg, key)
    cli.json("breach", "mark-sent", key, "--users", "-", "--channel", "email", "--db", reg, input="u1\nu2\nu3\n")
    clocks = {c["clock"]: c for c in cli.json("breach", "show", key, "--db", reg)["clocks"]}
    assert clocks["individuals"]["state"] == "late" and clocks["attorney-general"]["state"] == "running"
    few = str(opened(cli, reg, "--affected-count", "500"))
    assert [c["clock"] for c in cli.json("breach", "show", few, "--db", reg)["clocks"]] == ["individuals"]


def test_attach_from_a_list_the_inventory_or_the_access_log_and_reachability(cli, reg):
    key = str(opened(cli, reg))
    result = attach_all(cli, reg, key)
    assert result["added"] == 3 and result["reachable"] == {"email": 1, "sms": 1, "letter": 1, "push": 1, "none": 0}
    assert attach_all(cli, reg, key)["added"] == 0
    bad = cli("breach", "affected", key, "--users", "-", "--db", reg, input="u1\nnobody\n")
    assert bad.exit_code == 4 and "row 2: user_id: no such user" in bad.stderr
    by_inventory = str(opened(cli, reg))
    assert cli.json("breach", "affected", by_inventory, "--category", "location", "--db", reg)["added"] == 1
    cli.json("access", "log", "u2", "--categories", "order", "--purpose", "service", "--action", "view", "--basis", "contract",
             "--at", "2026-11-20 10:00", "--db", reg)
    by_log = str(opened(cli, reg))
    window = cli.json("breach", "affected", by_log, "--category", "order", "--accessed-between", "2026-11-19..2026-11-21",
                      "--db", reg)
    assert window["added"] == 1 and window["reachable"]["letter"] == 1
    assert cli.json("breach", "affected", by_log, "--category", "order", "--accessed-between", "2026-11-21..2026-11-22",
                    "--db", reg)["added"] == 0
    assert cli("breach", "affected", by_log, "--db", reg).exit_code == 4


def test_a_draft_missing_required_content_is_refused_or_marked(cli, reg):
    key = str(opened(cli, reg))
    attach_all(cli, reg, key)
    refused = cli("breach", "draft", key, "--audience", "regulator", "--db", reg)
    assert refused.exit_code == 5 and "PIPL Art. 57" in refused.stderr and "cause, harm, measures, advice" in refused.stderr
    marked = cli("breach", "draft", key, "--audience", "public", "--allow-incomplete", "--db", reg)
    assert marked.exit_code == 0 and "草稿" in marked.stdout and "marked DRAFT" in marked.stderr
    cli.json("breach", "update", key, *COMPLETE, "--db", reg)
    assert cli("breach", "draft", key, "--audience", "regulator", "--db", reg).exit_code == 0


@pytest.fixture
def ready(cli, reg):
    key = str(opened(cli, reg, *COMPLETE))
    attach_all(cli, reg, key)
    return reg, key


def test_email_notices_are_real_messages(cli, ready, tmp_path):
    reg, key = ready
    out = tmp_path / "mails"
    result = cli("breach", "draft", key, "--audience", "individuals", "--channel", "email", "--out", out, "--db", reg)
    assert result.exit_code == 0 and "1 notice written" in result.stderr and "2 affected people have no email" in result.stderr
    [path] = [p for p in out.rglob("*.eml")]
    assert path.stat().st_mode & 0o777 == 0o600
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "zhang@example.com" and parsed["From"].addresses[0].addr_spec == "privacy@demo.example"
    assert parsed["From"].addresses[0].display_name == "示例物联网有限公司" and parsed["Message-ID"].endswith("@demo.example>")
    assert "关于您个人信息安全事件的通知" in parsed["Subject"]
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "张三，您好" in text and "【您可以采取的措施】" in text and "警惕自称客服的来电" in text and "<h3>" in html
    again = cli("breach", "draft", key, "--audience", "individuals", "--out", out, "--db", reg)
    assert again.exit_code == 0 and len(list(out.rglob("*.eml"))) == 1  # replaced, not duplicated
    box = tmp_path / "notices.mbox"
    cli("breach", "draft", key, "--audience", "individuals", "--lang", "en", "--out", box, "--db", reg)
    [mail] = list(mailbox.mbox(str(box), factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default)))
    assert mail["Subject"] == "示例物联网有限公司: notice of a security incident involving your personal information"
    assert "What You Can Do" in mail.get_body(("plain",)).get_content()
    archive = tmp_path / "notices.zip"
    cli("breach", "draft", key, "--audience", "individuals", "--out", archive, "--db", reg)
    with zipfile.ZipFile(archive) as opened_zip:
        assert [name.endswith(".eml") for name in opened_zip.namelist()] == [True]


def test_a_non_ascii_address_goes_through_the_email_package(cli, ready, tmp_path):
    reg, key = ready
    cli.json("user", "add", "u4", "--name", "王五", "--email", "王五@例子.中国", "--db", reg)
    cli.json("breach", "affected", key, "--users", "-", "--db", reg, input="u4\n")
    box = tmp_path / "all.mbox"
    assert cli("breach", "draft", key, "--audience", "individuals", "--out", box, "--db", reg).exit_code == 0
    mails = list(mailbox.mbox(str(box), factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default)))
    assert [m["To"] for m in mails] == ["zhang@example.com", "王五@例子.中国"]
    assert all("【您可以采取的措施】" in m.get_body(("plain",)).get_content() for m in mails)
    assert mails[0]["Subject"] == mails[1]["Subject"] and mails[0]["From"] == mails[1]["From"]


def test_each_channel_and_language(cli, ready):
    reg, key = ready
    sms = cli("breach", "draft", key, "--audience", "individuals", "--channel", "sms", "--db", reg)
    assert sms.exit_code == 0 and len(sms.stdout.strip()) <= 70 and "【示例物联网有限公司】" in sms.stdout
    sms_en = cli("breach", "draft", key, "--audience", "individuals", "--channel", "sms", "--lang", "en", "--db", reg)
    assert sms_en.exit_code == 4 and "one SMS holds 70" in sms_en.stderr  # the Chinese name makes it UCS-2
    cli.json("config", "set", "organisation", "Demo IoT", "--db", reg)
    sms_en = cli("breach", "draft", key, "--audience", "individuals", "--channel", "sms", "--lang", "en", "--db", reg)
    assert sms_en.exit_code == 0 and len(sms_en.stdout.strip()) <= 160
    letter = cli("breach", "draft", key, "--audience", "individuals", "--channel", "letter", "--db", reg)
    assert "北京市朝阳区1号" in letter.stdout and "# 关于您个人信息安全事件的通知" in letter.stdout
    push = cli("breach", "draft", key, "--audience", "individuals", "--channel", "push", "--format", "json", "--db", reg)
    [notice] = [json.loads(line) for line in push.stdout.splitlines()]
    assert notice["user_id"] == "u3" and notice["channel"] == "push"
    for lang, heading in (("zh", "公告"), ("en", "announcement")):
        assert heading in cli("breach", "draft", key, "--audience", "public", "--lang", lang, "--db", reg).stdout
    report = cli.json("breach", "draft", key, "--audience", "regulator", "--db", reg)
    assert report["grade"] == "general" and report["categories"] == ["order", "registration"] and report["people"] == 3
    zh = cli("breach", "draft", key, "--audience", "regulator", "--lang", "zh", "--format", "md", "--db", reg).stdout
    assert "| 事件分级 | 一般" in zh and "| 涉及人数 | 3 |" in zh and "本事件无须按时限报告" in zh


def test_hostile_text_is_printed_as_written(cli, reg, tmp_path):
    cli.json("user", "add", "evil", "--name", "<b>{{ name }}</b>", "--email", "evil@example.com", "--db", reg)
    key = str(cli.json("breach", "open", "--detected", hours_ago(1), "--summary", HOSTILE, *COMPLETE, "--measures", HOSTILE,
                       "--db", reg)["id"])
    cli.json("breach", "affected", key, "--users", "-", "--db", reg, input="evil\n")
    text = cli("breach", "draft", key, "--audience", "public", "--format", "txt", "--db", reg).stdout
    assert HOSTILE in text and "49" not in text
    table = cli("breach", "show", key, "--format", "table", "--db", reg).stdout
    assert "[bold]red[/bold]" in table
    out = tmp_path / "evil"
    cli("breach", "draft", key, "--audience", "individuals", "--out", out, "--db", reg)
    [path] = list(out.rglob("*.eml"))
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html and "&lt;b&gt;{{ name }}&lt;/b&gt;" in html
    assert "<b>{{ name }}</b>" in parsed.get_body(("plain",)).get_content()


def test_a_company_template_comes_first(cli, ready, tmp_path):
    reg, key = ready
    (tmp_path / "own" / "breach").mkdir(parents=True)
    (tmp_path / "own" / "breach" / "public.en.md.j2").write_text("OUR OWN: {{ breach.summary }}\n", encoding="utf-8")
    result = cli("breach", "draft", key, "--audience", "public", "--lang", "en", "--template-dir", tmp_path / "own", "--db", reg)
    assert result.stdout.strip() == "OUR OWN: 接口被未授权访问。"
    (tmp_path / "own" / "breach" / "public.en.md.j2").write_text("{{ nothing_of_the_kind }}\n", encoding="utf-8")
    broken = cli("breach", "draft", key, "--audience", "public", "--lang", "en", "--template-dir", tmp_path / "own", "--db", reg)
    assert broken.exit_code == 4 and "UndefinedError" in broken.stderr


def test_mark_sent_progress_export_and_erasure(cli, ready):
    reg, key = ready
    assert cli("breach", "mark-sent", key, "--users", "-", "--channel", "email", "--db", reg, input="nobody\n").exit_code == 4
    cli.json("user", "add", "outsider", "--db", reg)
    stray = cli("breach", "mark-sent", key, "--users", "-", "--channel", "email", "--db", reg, input="outsider\n")
    assert stray.exit_code == 4 and "not attached" in stray.stderr
    done = cli.json("breach", "mark-sent", key, "--users", "-", "--channel", "email", "--at", "2026-11-30 21:00", "--db", reg,
                    input="u1\n")
    assert done["recorded"] == 1 and done["notices"]["notified"] == 1 and done["notices"]["not_yet"] == 2
    exported = json.loads(cli("export", "u1", "--db", reg).stdout)
    assert exported["breaches"] == [{"breach": int(key), "summary": "接口被未授权访问。", "detected_at": exported["breaches"][0]["detected_at"],
                                     "categories": ["order", "registration"], "attached_at": exported["breaches"][0]["attached_at"],
                                     "notices": [{"channel": "email", "sent_at": "2026-11-30T13:00:00Z"}]}]
    cli.json("erase", "u1", "--yes", "--db", reg)
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0
    assert conn.execute("SELECT count(*), count(user_key) FROM breach_users").fetchone() == (3, 2)
    assert cli.json("breach", "show", key, "--db", reg)["people"] == 3  # the incident's count stays


def test_the_sweep_covers_breach_records(cli, ready):
    reg, key = ready
    cli.json("breach", "mark-sent", key, "--users", "-", "--channel", "letter", "--db", reg, input="u2\n")
    result = cli("retention", "sweep", "--yes", "--as-of", "2031-01-01", "--db", reg, "--format", "json")
    counts = json.loads(result.stdout)["counts"]
    assert counts["table breach_users: deidentify"] == 3 and counts["table notifications: deidentify"] == 1
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT count(user_key) FROM breach_users").fetchone()[0] == 0
