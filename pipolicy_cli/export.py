"""`export`: everything held about one person (policy 5.1; PIPL Art. 45), unmasked.

The one output that shows personal values. Sections: who answers for the data
(policy 9), the person's record, the inventory with systems and sources, the
consent history, every use of their data, and their requests. Each section is
streamed from the register, so a long access history keeps memory flat.
JSON follows `data/schemas/export.schema.json`; csv is a zip of one CSV per
section; md is written for the person to read.
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Any, Callable, Iterator

from pipolicy_cli import breach, catalog, consents, dates, provisions, requests, settings, tasks, users
from pipolicy_cli.register import Register

FORMAT_VERSION = 1
FORMATS = ("json", "csv", "md")
PERSON_FIELDS = ("user_id", "name", "gender", "birth_date", "age", "address", "phone", "email", "id_number", "contact",
                 "status", "created_at", "updated_at", "cancelled_at")
INVENTORY_FIELDS = ("category", "field", "system", "system_kind", "system_country", "processor_contract", "source",
                    "collected_at", "value")
CONSENT_FIELDS = ("code", "action", "at", "method", "evidence", "signal", "guardian_name", "guardian_relation",
                  "written_consent", "policy_version", "source", "event_id")
ACCESS_FIELDS = ("at", "actor", "categories", "purpose", "action", "basis", "source")
REQUEST_FIELDS = ("id", "kind", "ground", "status", "received_at", "via", "due_on", "extended_due_on",
                  "extension_reason", "verified_at", "closed_at", "reason")
TASK_FIELDS = ("id", "request_id", "system", "action", "state", "created_at", "closed_at", "payload")
BREACH_FIELDS = ("breach", "summary", "detected_at", "categories", "attached_at", "notices")
PROVIDED_FIELDS = ("kind", "at", "recipient", "recipient_kind", "country", "mechanism", "categories", "purpose")


def about(register: Register, user: dict[str, Any]) -> dict[str, Any]:
    stored = register.settings()
    code = settings.jurisdiction(register)
    return {
        "format_version": FORMAT_VERSION,
        "generated_at": dates.now_text(),
        "organisation": stored.get("organisation"),
        "contact": stored.get("contact"),
        "protection_officer": stored.get("dpo"),
        "jurisdiction": code,
        "law": catalog.load_profile(code)["law"],
        "user_id": user["user_id"],
    }


def person(register: Register, user: dict[str, Any]) -> dict[str, Any]:
    shown = users.view(user, users.today(register), reveal=True, full=True)
    return {field: shown.get(field) for field in PERSON_FIELDS}


def inventory(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cursor = register.conn.execute(
        """SELECT d.category, d.field, s.name, s.kind, s.country, s.contract, d.source, d.collected_at, d.value
           FROM data_items d JOIN systems s ON s.id = d.system_key WHERE d.user_key = ? ORDER BY d.id""",
        (user["id"],),
    )
    for values in cursor:
        yield dict(zip(INVENTORY_FIELDS, values))


def consent_history(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for row in consents.history(register, user):
        yield {field: row[field] for field in CONSENT_FIELDS}


def access(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cursor = register.conn.execute(
        "SELECT at, actor, categories, purpose, action, basis, source FROM access_log WHERE user_key = ? ORDER BY at, id",
        (user["id"],),
    )
    for at, actor, categories, purpose, action, basis, source in cursor:
        yield {"at": at, "actor": actor, "categories": categories.split(","), "purpose": purpose, "action": action,
               "basis": basis, "source": source}


def access_json(register: Register, user: dict[str, Any]) -> Iterator[str]:
    """The access section as JSON text made by SQLite itself: a long history is the bulk of an export.
    Category codes are catalog codes (letters and hyphens), so the array is spelled out directly."""
    cursor = register.conn.execute(
        """SELECT json_object('at', at, 'actor', actor,
                              'categories', json('["' || replace(categories, ',', '","') || '"]'),
                              'purpose', purpose, 'action', action, 'basis', basis, 'source', source)
           FROM access_log WHERE user_key = ? ORDER BY at, id""",
        (user["id"],),
    )
    for (text,) in cursor:
        yield text


def request_history(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for row in requests.query(register, user_key=user["id"]):
        yield {field: row[field] for field in REQUEST_FIELDS}


def task_history(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """What each system was asked to do for the person's requests, with what it was sent while open."""
    return tasks.for_person(register, user["id"])


def breach_history(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Security incidents that affected the person, and each notice sent to them."""
    return breach.for_person(register, user["id"])


def provided(register: Register, user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Who the person's data was provided to (shared, transferred abroad, disclosed), when and why (PIPL Art. 45)."""
    return provisions.for_person(register, user["id"])


SECTIONS = (("inventory", inventory, INVENTORY_FIELDS), ("consents", consent_history, CONSENT_FIELDS),
            ("access", access, ACCESS_FIELDS), ("requests", request_history, REQUEST_FIELDS),
            ("tasks", task_history, TASK_FIELDS), ("breaches", breach_history, BREACH_FIELDS),
            ("provided", provided, PROVIDED_FIELDS))


_dumps = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every row: an access history can be long


def write_json(register: Register, user: dict[str, Any], out: IO[str]) -> None:
    out.write('{\n"about": ' + _dumps(about(register, user)) + ',\n"person": ' + _dumps(person(register, user)))
    for name, rows, _ in SECTIONS:
        out.write(f',\n"{name}": [')
        texts = access_json(register, user) if name == "access" else map(_dumps, rows(register, user))
        for index, text in enumerate(texts):
            out.write(("\n  " if index == 0 else ",\n  ") + text)
        out.write("\n]")
    out.write("\n}\n")


def write_csv_zip(register: Register, user: dict[str, Any], out: IO[bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        def table(name: str, fields: tuple[str, ...], rows) -> None:
            with archive.open(f"{name}.csv", "w") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(fields)
                for row in rows:
                    writer.writerow([_csv_cell(row[field]) for field in fields])

        meta = about(register, user)
        table("about", tuple(meta), [meta])
        details = person(register, user)
        table("person", PERSON_FIELDS, [details])
        for name, rows, fields in SECTIONS:
            table(name, fields, rows(register, user))


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_markdown(register: Register, user: dict[str, Any], out: IO[str]) -> None:
    meta, details = about(register, user), person(register, user)
    out.write("# Your personal information · 您的个人信息\n\n")
    out.write(f"Prepared for {meta['user_id']} on {meta['generated_at']} by {meta['organisation'] or 'the organisation'}, "
              f"under {meta['law']}.\n\n")
    out.write("## Who to contact · 联系我们\n\n")
    out.write(f"- Contact: {meta['contact'] or '—'}\n- Personal information protection officer: {meta['protection_officer'] or '—'}\n\n")
    out.write("## What we hold about you · 我们持有的信息\n\n")
    for field in PERSON_FIELDS:
        if details[field] not in (None, ""):
            out.write(f"- **{field.replace('_', ' ')}**: {_md(details[field])}\n")
    titles = {"inventory": "Where your data is kept · 信息存放位置", "consents": "Your consents · 您的授权记录",
              "access": "Who used your data, why and on what basis · 使用记录", "requests": "Your requests · 您的请求",
              "tasks": "What our systems were asked to do · 各系统的处理任务",
              "breaches": "Security incidents that affected you · 涉及您的安全事件",
              "provided": "Who your data was provided to · 向他人提供的记录"}
    for name, rows, fields in SECTIONS:
        out.write(f"\n## {titles[name]}\n\n| {' | '.join(f.replace('_', ' ') for f in fields)} |\n|{'---|' * len(fields)}\n")
        empty = True
        for row in rows(register, user):
            empty = False
            out.write("| " + " | ".join(_md(row[field]) for field in fields) + " |\n")
        if empty:
            out.write(f"| {' | '.join('—' for _ in fields)} |\n")


def _md(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        value = ", ".join(json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else str(item) for item in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def record(register: Register, user: dict[str, Any], fmt: str, actor: str, request_id: int | None,
           deliver: Callable[[], None] | None = None) -> list[str]:
    """Every export is audited; an export answering an access, copy or portability request completes it,
    unless systems are still sending their part: then it stays open and their names are returned.

    `deliver` writes the export inside the same transaction (it reads the request as completed): an export
    that fails to be written is neither audited nor counted as the answer."""
    from pipolicy_cli.errors import InvalidInput

    request = None
    if request_id is not None:
        request = requests.show(register, request_id)
        if request["user_id"] != user["user_id"]:
            raise InvalidInput(f"--request: request {request_id} is not this person's")
        if request["kind"] not in ("access", "copy", "portability"):
            raise InvalidInput(f"--request: request {request_id} is a {request['kind']} request, not access, copy or portability")
        if request["status"] != "verified":
            raise InvalidInput(f"--request: request {request_id} is {request['status']}; verify the requester first")
    waiting = sorted({row["system"] for row in tasks.blocking(register, request_id)}) if request is not None else []
    with register.transaction(actor, "export") as tx:
        tx.record("export", "users", user["id"], detail={"format": fmt, **({"request": request_id} if request_id else {})})
        if request is not None and not waiting:
            requests.complete(register, request_id, actor, f"answered with a {fmt} export", tx=tx)
        if deliver is not None:
            deliver()
    return waiting
