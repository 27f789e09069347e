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
