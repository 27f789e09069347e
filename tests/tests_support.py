"""Helpers shared by the tests: fixed valid ID numbers and synthetic import files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from synthetic import check_digit, people

ID_1949_F = "11010519491231002X"
_first17 = "11010120150601003"
ID_2015_M = _first17 + check_digit(_first17)

FIELDS = ["user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact"]


def people_file(folder: Path, count: int, fmt: str, bad: dict | None = None, name: str | None = None) -> Path:
    """`count` synthetic people as csv, json or ndjson; `bad` overrides fields of row N (1-based)."""
    rows = list(people(count, seed=11))
    for number, override in (bad or {}).items():
        rows[number - 1].update(override)
    path = folder / (name or f"people.{fmt}")
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif fmt == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path

_first17 = "11010120080601004"
ID_2008_F = _first17 + check_digit(_first17)  # turned 18 on 2026-06-01

# Planted in personal values by the hostile-input and fault tests: it must never reach stderr. Upper case
# and a hyphen: no error message may show it, not even as the name of an unknown field.
MARK = "Zq-MARK"


def populated_register(folder: Path) -> Path:
    """A small register with a little of everything (people with MARK in their names and addresses, systems,
    inventory, a consent, an access event, a recipient, a verified copy request with its two tasks, an incident
    with two people attached), for tests that try to break one. Built once and copied: about a second."""
    from typer.testing import CliRunner

    from pipolicy_cli.cli.app import app

    runner = CliRunner()
    db = folder / "register.db"
    env = {"PIPOLICY_HOME": str(folder / "home")}

    def run(*args, input=None):
        result = runner.invoke(app, [*map(str, args), "--db", str(db)], input=input, env=env)
        assert result.exit_code == 0, (args, result.stderr)

    run("init", "--key-file", folder / "register.key")
    for key, value in (("organisation", "Demo Co"), ("contact", "hotline 10086"), ("dpo", "Wang Fang"),
                       ("notice-from", "privacy@demo.example")):
        run("config", "set", key, value)
    rows = [{**row, "name": MARK + row["name"], "address": MARK + row["address"]} for row in people(6, seed=11)]
    (folder / "people.ndjson").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    run("user", "import", folder / "people.ndjson")
    run("system", "add", "crm")
    run("system", "add", "sms-gateway", "--kind", "processor", "--contract", "DPA-1")
    run("data", "add", "U00000001", "--category", "device", "--field", "imei", "--system", "crm")
    run("data", "add", "U00000002", "--category", "order", "--field", "orders", "--system", "crm")
    run("data", "add", "U00000002", "--category", "registration", "--field", "phone", "--system", "sms-gateway")
    run("consent", "grant", "U00000001", "messaging", "--at", "2026-01-10 09:00")
    run("access", "log", "U00000001", "--categories", "order", "--purpose", "messaging", "--action", "use")
    run("recipient", "add", "Partner Co", "--kind", "partner", "--agreement", "NDA-7", "--agreement-date", "2026-01-05")
    run("request", "open", "U00000002", "--kind", "copy")
    run("request", "verify", "1", "--method", "ID card at the counter")
    run("breach", "open", "--detected", "2026-11-01 10:00", "--summary", "An API was open.", "--cause", "No access control.",
        "--harm", "Fraud calls.", "--measures", "Closed the API.", "--advice", "Beware of calls.", "--categories", "registration,order")
    run("breach", "affected", "1", "--users", "-", input="U00000001\nU00000002\n")
    return db


def copy_register(template: Path, folder: Path) -> Path:
    """A copy of `populated_register`'s register in `folder`, with its own key file (erasures append to the
    tombstone journal beside it)."""
    import shutil
    import sqlite3

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "register.db"
    shutil.copyfile(template, db)
    key = folder / "register.key"
    shutil.copyfile(template.parent / "register.key", key)
    key.chmod(0o600)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE config SET value = ? WHERE key = 'key-file'", (str(key),))
    conn.close()
    return db


def snapshot(db: Path) -> dict:
    """Rows per table and the audit chain's last hash: equal before and after, nothing was written."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        names = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
        counts["audit head"] = conn.execute("SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()[0]
        counts["config values"] = conn.execute("SELECT group_concat(key || '=' || value, ';') FROM config").fetchone()[0]
        return counts
    finally:
        conn.close()
