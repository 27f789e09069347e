import csv
import io
import json
import zipfile

import jsonschema
import pytest

from pipolicy_cli.catalog import data_path
from pipolicy_cli.export import SECTIONS
from tests_support import ID_1949_F

SCHEMA = json.loads(data_path("schemas", "export.schema.json").read_text(encoding="utf-8"))


@pytest.fixture
def reg(cli, db):
    cli.json("config", "set", "organisation", "Demo IoT Co., Ltd.", "--db", db)
    cli.json("config", "set", "contact", "hotline 10086-0000", "--db", db)
    cli.json("config", "set", "dpo", "Wang Fang <dpo@demo.example>", "--db", db)
    cli.json("user", "add", "u1", "--name", "张三", "--id-number", ID_1949_F, "--phone", "13812345678",
             "--email", "zhang@example.com", "--address", "北京市 | 朝阳区", "--db", db)
    cli.json("user", "add", "u2", "--name", "李四", "--db", db)
    cli.json("system", "add", "crm", "--db", db)
    cli.json("system", "add", "sms", "--kind", "processor", "--contract", "DPA-1", "--country", "CN", "--db", db)
    cli.json("data", "add", "u1", "--category", "device", "--field", "imei", "--system", "crm", "--source", "automatic", "--db", db)
    cli.json("data", "add", "u1", "--category", "third-party", "--field", "credit_tier", "--system", "sms",
             "--source", "third-party:Partner Co", "--value", "A", "--db", db)
    cli.json("consent", "grant", "u1", "messaging", "--at", "2026-01-01", "--evidence", "log-1", "--db", db)
    cli.json("access", "log", "u1", "--categories", "registration,device", "--purpose", "messaging", "--action", "use",
             "--at", "2026-02-01", "--used-by", "campaign-bot", "--db", db)
    cli.json("access", "log", "u2", "--categories", "registration", "--purpose", "service", "--action", "view",
             "--basis", "contract", "--db", db)
    return db


def test_json_export_has_everything_and_follows_the_schema(cli, reg):
    result = cli("export", "u1", "--db", reg)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["about"]["contact"] == "hotline 10086-0000"
    assert document["about"]["protection_officer"] == "Wang Fang <dpo@demo.example>"
    person = document["person"]
    assert (person["name"], person["phone"], person["id_number"]) == ("张三", "+8613812345678", ID_1949_F)
    assert [(i["system"], i["source"]) for i in document["inventory"]] == [("crm", "automatic"), ("sms", "third-party:Partner Co")]
    assert document["inventory"][1]["processor_contract"] == "DPA-1"
    assert [c["evidence"] for c in document["consents"]] == ["log-1"]
    assert document["access"] == [{"at": "2026-01-31T16:00:00Z", "actor": "campaign-bot", "categories": ["device", "registration"],
                                   "purpose": "messaging", "action": "use", "basis": "consent", "source": None}]
    assert document["requests"] == []
    events = [e for e in cli.json("audit", "list", "--db", reg) if e["action"] == "export"]
    assert events[0]["key"] == 1 and events[0]["detail"] == {"format": "json"}


def test_an_export_answers_a_verified_request(cli, reg, tmp_path):
    request = cli.json("request", "open", "u1", "--kind", "portability", "--db", reg)
    key = str(request["id"])
    refused = cli("export", "u1", "--request", key, "--db", reg)
    assert refused.exit_code == 4 and "verify" in refused.stderr
    cli.json("request", "verify", key, "--method", "logged in", "--db", reg)
    # the crm and the sms processor send their part first (tests/cli/test_tasks.py has the waiting)
    cli.json("task", "done", "-", "--db", reg, input="".join(f"{t['id']}\n" for t in cli.json("task", "list", "--db", reg)))
    assert cli("export", "u2", "--request", key, "--db", reg).exit_code == 4
    out = tmp_path / "u1.json"
    assert cli("export", "u1", "--request", key, "--out", out, "--db", reg).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    document = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    assert cli.json("request", "show", key, "--db", reg)["status"] == "completed"
    deletion = cli.json("request", "open", "u1", "--kind", "correction", "--db", reg)
    cli.json("request", "verify", str(deletion["id"]), "--method", "x", "--db", reg)
    assert cli("export", "u1", "--request", str(deletion["id"]), "--db", reg).exit_code == 4


def test_csv_export_is_a_zip_of_one_csv_per_section(cli, reg, tmp_path):
    out = tmp_path / "u1.zip"
    assert cli("export", "u1", "--format", "csv", "--out", out, "--db", reg).exit_code == 0
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted(["about.csv", "person.csv", *(f"{name}.csv" for name, *_ in SECTIONS)])
        assert {"inventory.csv", "access.csv", "tasks.csv", "breaches.csv", "provided.csv"} <= set(archive.namelist())
        person = list(csv.DictReader(io.StringIO(archive.read("person.csv").decode("utf-8-sig"))))
        access = list(csv.DictReader(io.StringIO(archive.read("access.csv").decode("utf-8-sig"))))
    assert person[0]["name"] == "张三" and person[0]["address"] == "北京市 | 朝阳区"
    assert access[0]["categories"] == "device,registration"


def test_markdown_export_is_for_the_person(cli, reg):
    result = cli("export", "u1", "--format", "md", "--db", reg)
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("# Your personal information")
    assert "hotline 10086-0000" in text and "张三" in text and "北京市 \\| 朝阳区" in text
    assert "campaign-bot" in text and "李四" not in text


def test_export_of_nobody(cli, reg):
    assert cli("export", "ghost", "--db", reg).exit_code == 3
    assert cli("export", "+86 138 1234 5678", "--by", "phone", "--db", reg).exit_code == 0
