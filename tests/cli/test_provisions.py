"""Sharing, transfers abroad, disclosure, assignment, impact assessments, and the compliance report."""

import json
import sqlite3
from pathlib import Path

import pytest

from pipolicy_cli import provisions
from pipolicy_cli.register import Register

EXPECTED = Path(__file__).parents[1] / "expected" / "demo-report.json"


@pytest.fixture
def reg(cli, db):
    for user in ("u1", "u2", "u3"):
        cli.json("user", "add", user, "--db", db)
    cli.json("recipient", "add", "Sister Co", "--kind", "affiliate", "--db", db)
    cli.json("recipient", "add", "Partner Co", "--kind", "partner", "--agreement", "NDA-7", "--db", db)
    cli.json("recipient", "add", "Loose Partner", "--kind", "partner", "--db", db)
    cli.json("recipient", "add", "Mailer Inc", "--kind", "processor", "--agreement", "DPA-1", "--db", db)
    cli.json("recipient", "add", "Shadow Processor", "--kind", "processor", "--db", db)
    cli.json("recipient", "add", "Police", "--kind", "authority", "--db", db)
    cli.json("recipient", "add", "Cloud SG", "--kind", "processor", "--agreement", "SCC-1", "--country", "SG", "--db", db)
    cli.json("recipient", "add", "NewCo", "--kind", "acquirer", "--contact", "dpo@newco.example", "--db", db)
    return db


def reasons(cli, db, kind, *args, expect_flagged=True):
    result = cli.json(kind, "log", *args, "--db", db)
    assert result["recorded"] >= 1 and bool(result["flagged"]) == expect_flagged, result
    return result["findings"][0]["reasons"] if result["findings"] else []


def test_sharing_needs_separate_consent_an_agreement_and_an_assessment(cli, reg):
    base = ["--categories", "order", "--purpose", "service", "--at", "2026-11-01 10:00"]
    assert reasons(cli, reg, "share", "u1", "--recipient", "Sister Co", *base) == ["no-consent", "sharing-no-consent", "no-pia"]
    cli.json("pia", "add", "--subject", "affiliates", "--covers", "sharing,entrusting", "--conclusion", "ok", "--db", reg)
    cli.json("consent", "grant", "u2", "sharing", "--at", "2026-10-01", "--db", reg)
    cli.json("consent", "grant", "u2", "service", "--at", "2026-10-01", "--db", reg)
    assert reasons(cli, reg, "share", "u2", "--recipient", "Sister Co", "--pia", "1", *base, expect_flagged=False) == []
    contract = ["--categories", "order", "--purpose", "service", "--basis", "contract", "--pia", "1"]
    assert reasons(cli, reg, "share", "u2", "--recipient", "Loose Partner", *contract) == ["partner-without-agreement"]
    assert reasons(cli, reg, "share", "u3", "--recipient", "Partner Co", *contract, expect_flagged=False) == []
    # entrusting a processor under a contract is not sharing: no sharing consent needed, but the contract is
    assert reasons(cli, reg, "share", "u3", "--recipient", "Mailer Inc", *base[:4], "--basis", "consent", "--pia", "1")[-1:] != ["sharing-no-consent"]
    assert "processor-without-contract" in reasons(cli, reg, "share", "u3", "--recipient", "Shadow Processor", *contract)
    assert reasons(cli, reg, "share", "u3", "--recipient", "Police", "--categories", "order", "--purpose", "service",
                   "--basis", "operations-security", "--pia", "1")[-1] == "authority-without-legal-basis"
    found = {row["id"]: row["reasons"] for row in json.loads(cli("access", "violations", "--db", reg, "--format", "json").stdout)}
    assert any("partner-without-agreement" in r for r in found.values())


def test_a_late_consent_clears_the_finding(cli, reg):
    assert "sharing-no-consent" in reasons(cli, reg, "share", "u1", "--recipient", "Sister Co", "--categories", "order",
                                           "--purpose", "service", "--at", "2026-11-01 10:00")
    cli.json("consent", "grant", "u1", "sharing", "--at", "2026-10-15", "--db", reg)  # recorded late, given before
    rows = json.loads(cli("access", "violations", "--db", reg, "--format", "json").stdout)
    assert all("sharing-no-consent" not in row["reasons"] for row in rows)


def test_many_users_from_a_file_and_unknown_ones_refuse_all(cli, reg):
    before = cli.json("access", "list", "--db", reg)
    bad = cli("share", "log", "--users", "-", "--recipient", "Sister Co", "--categories", "order", "--purpose", "service",
              "--db", reg, input="u1\nnobody\n")
    assert bad.exit_code == 4 and "row 2: user_id: no such user" in bad.stderr
    assert cli.json("access", "list", "--db", reg) == before
    done = cli.json("share", "log", "--users", "-", "--recipient", "Sister Co", "--categories", "order", "--purpose", "service",
                    "--db", reg, input="u1\nu2\nu3\n")
    assert done["recorded"] == 3 and len(cli.json("share", "list", "--db", reg)) == 3
    assert cli("share", "log", "u1", "--recipient", "Nobody Inc", "--categories", "order", "--purpose", "x", "--db", reg).exit_code == 3
    assert cli("share", "log", "u1", "--recipient", "Sister Co", "--categories", "dreams", "--purpose", "x", "--db", reg).exit_code == 4


def test_transfers_need_cross_border_consent_and_disclosure_its_own(cli, reg):
    found = reasons(cli, reg, "transfer", "u1", "--country", "SG", "--recipient", "Cloud SG", "--mechanism", "standard-contract",
                    "--categories", "location", "--basis", "contract")
    assert "no-pia" in found and "cross-border-no-consent" not in found  # a contract is a legal basis (PIPL Art. 13(2))
    assert cli.json("transfer", "list", "--db", reg)[0]["sensitive"] is True  # location is sensitive (PIPL Art. 28)
    assert reasons(cli, reg, "transfer", "u2", "--country", "SG", "--recipient", "Cloud SG", "--mechanism", "exempt",
                   "--categories", "order", "--purpose", "messaging")[:2] == ["no-consent", "cross-border-no-consent"]
    assert reasons(cli, reg, "disclose", "u3", "--categories", "registration", "--purpose", "service",
                   "--channel", "annual report") == ["no-consent", "disclosure-no-consent", "no-pia"]
    assert cli("transfer", "log", "u1", "--country", "Singapore", "--recipient", "Cloud SG", "--mechanism", "exempt",
               "--categories", "order", "--db", reg).exit_code == 4


def seed_transfers(db: Path, plain: int, sensitive: int, mechanism: str, year: int = 2026) -> None:
    conn = sqlite3.connect(db)
    conn.executemany(
        "INSERT INTO transfers (categories, purpose, at, recorded_at, recipient_id, country, mechanism, sensitive) "
        "VALUES ('order', 'service', ?, ?, 7, 'SG', ?, ?)",
        [(f"{year}-03-01T00:00:00Z", f"{year}-03-01T00:00:00Z", mechanism, 0) for _ in range(plain)]
        + [(f"{year}-03-01T00:00:00Z", f"{year}-03-01T00:00:00Z", mechanism, 1) for _ in range(sensitive)])
    conn.commit()
    conn.close()


@pytest.mark.parametrize("plain, sensitive, required", [
    (99_999, 0, "exempt"), (100_000, 0, "standard-contract or certification"), (0, 1, "standard-contract or certification"),
    (999_999, 9_999, "standard-contract or certification"), (1_000_000, 0, "security-assessment"),
    (0, 10_000, "security-assessment")])
def test_thresholds_at_their_edges(reg, plain, sensitive, required):
    seed_transfers(reg, plain, sensitive, "standard-contract")
    with Register.open(reg) as register:
        result = provisions.thresholds(register, 2026)
    assert result["required"] == required and result["people"] == plain + sensitive
    assert result["sufficient"] is (required != "security-assessment")


def test_thresholds_exit_5_when_the_mechanism_does_not_suffice(cli, reg):
    seed_transfers(reg, 0, 1, "exempt")
    result = cli("transfer", "thresholds", "--year", "2026", "--db", reg, "--format", "json")
    assert result.exit_code == 5 and json.loads(result.stdout)["insufficient_mechanisms"] == ["exempt"]
    assert cli("transfer", "thresholds", "--year", "2025", "--db", reg).exit_code == 0


def test_assignment_lists_everyone_to_tell_or_reask(cli, reg):
    cli.json("consent", "grant", "u1", "messaging", "--db", reg)
    kept = cli.json("recipient", "assign", "NewCo", "--reason", "merger", "--db", reg)
    assert [row["user_id"] for row in kept] == ["u1", "u2", "u3"] and not any(row["reask"] for row in kept)
    new = cli.json("recipient", "assign", "NewCo", "--reason", "acquisition", "--new-policy", "--db", reg)
    assert [(row["user_id"], row["reask"], row["consents_to_reask"]) for row in new][0] == ("u1", True, ["messaging"])
    assert cli("recipient", "assign", "Sister Co", "--reason", "merger", "--db", reg).exit_code == 4
    assert "PIPL Art. 22" in cli("recipient", "assign", "NewCo", "--reason", "merger", "--db", reg).stderr
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    assert "GDPR Art. 13(3)" in cli("recipient", "assign", "NewCo", "--reason", "merger", "--db", reg).stderr


def test_pias_keep_the_report_hash(cli, reg, tmp_path):
    report = tmp_path / "pia.pdf"
    report.write_bytes(b"%PDF assessment")
    row = cli.json("pia", "add", "--subject", "transfer to SG", "--covers", "transfer", "--conclusion", "ok",
                   "--file", report, "--done-on", "2026-11-01", "--db", reg)
    assert len(row["file_sha256"]) == 64 and row["done_on"] == "2026-11-01"
    assert cli("pia", "add", "--subject", "x", "--covers", "vibes", "--conclusion", "ok", "--db", reg).exit_code == 4
    rule = cli("retention", "rule", "set", "--table", "pias", "--keep", "2 years", "--action", "delete", "--db", reg)
    assert rule.exit_code == 4 and "PIPL Art. 56" in rule.stderr


def test_export_erase_and_sweep_cover_provisions(cli, reg):
    cli.json("share", "log", "u1", "--recipient", "Sister Co", "--categories", "order", "--purpose", "service",
             "--at", "2026-01-05 10:00", "--db", reg)
    cli.json("transfer", "log", "u1", "--country", "SG", "--recipient", "Cloud SG", "--mechanism", "exempt",
             "--categories", "order", "--at", "2026-01-05 10:00", "--db", reg)
    exported = json.loads(cli("export", "u1", "--db", reg).stdout)
    assert [(p["kind"], p["recipient"]) for p in exported["provided"]] == [("share", "Sister Co"), ("transfer", "Cloud SG")]
    assert [a["action"] for a in exported["access"]] == ["share", "transfer"]
    plan = {row["table"]: row for row in cli.json("erase", "u1", "--dry-run", "--db", reg)}
    assert plan["shares"]["rows"] == 1 and "3 years" in plan["shares"]["why"]
    cli.json("erase", "u1", "--yes", "--db", reg)
    conn = sqlite3.connect(reg)
    assert conn.execute("SELECT user_key, restricted_at IS NOT NULL FROM shares").fetchone() == (None, 1)
    cli.json("share", "log", "u2", "--recipient", "Sister Co", "--categories", "order", "--purpose", "service",
             "--at", "2026-01-05 10:00", "--db", reg)
    swept = json.loads(cli("retention", "sweep", "--yes", "--as-of", "2029-02-01", "--db", reg, "--format", "json").stdout)
    assert swept["counts"]["table shares: deidentify"] == 1 and swept["counts"]["table transfers: deidentify"] == 0


VOLATILE = {("generated_at",), ("audit", "hash"), ("sweeps", "last_done_at"), ("transfers",)}


def normalised(report: dict) -> dict:
    for path in VOLATILE:
        node = report
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = "<varies>"
    return report


def test_the_report_on_the_demo_register_matches_the_stored_one(cli, tmp_path):
    assert cli("quickstart", "--dir", tmp_path / "demo").exit_code == 0
    db = tmp_path / "demo" / "register.db"
    result = cli("report", "--format", "json", "--db", db)
    assert result.exit_code == 0
    report = normalised(json.loads(result.stdout))
    assert report == json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert cli("report", "--fail-on-attention", "--db", db).exit_code == 5
    markdown = cli("report", "--db", db).stdout
    assert "| partner-without-agreement" in markdown and "## Where the policy falls short of the law" in markdown


def test_the_profile_decides_what_providing_data_needs(cli, reg):
    """GDPR asks for a lawful basis, not a separate consent or an assessment per provision; the policy's own
    confidentiality agreement still applies."""
    cli.json("config", "set", "jurisdiction", "gdpr", "--db", reg)
    assert reasons(cli, reg, "share", "u1", "--recipient", "Sister Co", "--categories", "order", "--purpose", "service",
                   "--basis", "contract", expect_flagged=False) == []
    assert reasons(cli, reg, "share", "u1", "--recipient", "Loose Partner", "--categories", "order", "--purpose", "service",
                   "--basis", "contract") == ["partner-without-agreement"]
