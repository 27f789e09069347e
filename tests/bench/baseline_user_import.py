"""Baseline for bench_user_import.py: validate NDJSON users and insert them with raw sqlite3.

Each row is checked with the libraries pipolicy uses (python-stdnum's `cn.ric`,
`phonenumbers`, `email_validator`) and inserted by one `executemany` fed from a
generator, in one transaction, into a fresh file with the pragmas of a register.
`--no-validate` skips the libraries and inserts the rows as read.

    python tests/bench/baseline_user_import.py USERS.ndjson OUT.db [--no-validate]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from datetime import datetime, timezone

COLUMNS = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact",
           "status", "created_at")
TABLE = """CREATE TABLE users (
    id INTEGER PRIMARY KEY, user_id TEXT NOT NULL UNIQUE, name TEXT, gender TEXT, birth_date TEXT, address TEXT,
    phone TEXT UNIQUE, email TEXT UNIQUE, id_number TEXT UNIQUE, contact TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL)"""
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA secure_delete = ON")


def rows(path: str, validate: bool, created_at: str):
    if validate:
        import phonenumbers
        from email_validator import validate_email
        from stdnum.cn import ric

        e164 = phonenumbers.PhoneNumberFormat.E164
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            r = json.loads(line)
            phone, email, id_number, birth_date = r["phone"], r["email"], r["id_number"], r["birth_date"]
            if validate:
                id_number = ric.validate(id_number)
                birth_date = ric.get_birth_date(id_number).isoformat()
                parsed = phonenumbers.parse(phone, "CN")
                if not phonenumbers.is_valid_number(parsed):
                    raise ValueError(f"invalid phone in {r['user_id']}")
                phone = phonenumbers.format_number(parsed, e164)
                email = validate_email(email, check_deliverability=False).normalized
            yield (r["user_id"], r["name"], r["gender"], birth_date, r["address"], phone, email, id_number,
                   r["contact"] or None, "active", created_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ndjson")
    parser.add_argument("db")
    parser.add_argument("--no-validate", action="store_true", help="insert the rows as read, without the libraries")
    args = parser.parse_args()

    conn = sqlite3.connect(args.db, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute(TABLE)
    created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sql = f"INSERT INTO users ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(sql, rows(args.ndjson, not args.no_validate, created_at))
    conn.execute("COMMIT")
    print(json.dumps({"inserted": conn.execute("SELECT count(*) FROM users").fetchone()[0]}))
    conn.close()


if __name__ == "__main__":
    main()
