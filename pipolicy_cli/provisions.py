"""Providing data to others (policy 3; PIPL Art. 21-25, 38-40, 55-56): recipients, sharing, transfers abroad,
public disclosure, assignment in a merger, and impact assessments.

Every provision is recorded, never refused for what it lacks: one row here and
one access event (action `share`, `transfer` or `disclose`) in the same
transaction. `access violations` judges the event at query time (`Judge`
below), so a consent or an assessment recorded late clears it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

from pipolicy_cli import catalog, dates, fields, settings
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register

RECIPIENT_KINDS = ("affiliate", "partner", "processor", "acquirer", "authority")
MECHANISMS = ("security-assessment", "standard-contract", "certification", "exempt")
COVERS = ("sharing", "entrusting", "transfer", "disclosure", "sensitive", "automated-decision", "other")
REASONS = ("merger", "acquisition", "bankruptcy")
KINDS = {"share": "shares", "transfer": "transfers", "disclose": "disclosures"}
# The consent scope each kind of provision needs (PIPL Art. 23, 39, 25).
SCOPES = {"share": "sharing", "transfer": "cross-border", "disclose": "disclosure"}
RECIPIENT_COLUMNS = ("id", "name", "kind", "agreement", "agreement_date", "country", "contact", "created_at")
PIA_COLUMNS = ("id", "subject", "covers", "conclusion", "file_path", "file_sha256", "done_on", "created_at")


def add_recipient(register: Register, actor: str, *, name: str, kind: str, agreement: str | None = None,
                  agreement_date: str | None = None, country: str | None = None, contact: str | None = None) -> dict[str, Any]:
    name = fields.option_text("--name", name, required=True)
    if kind not in RECIPIENT_KINDS:
        raise InvalidInput(f"--kind: must be one of {', '.join(RECIPIENT_KINDS)}")
    if agreement_date is not None:
        agreement_date = dates.parse_date(agreement_date, "--agreement-date").isoformat()
    if country is not None and not (len(country.strip()) == 2 and country.strip().isalpha()):
        raise InvalidInput("--country: a two-letter country code, e.g. CN, SG, DE")
    row = {"name": name, "kind": kind, "agreement": fields.option_text("--agreement", agreement), "agreement_date": agreement_date,
           "country": country.strip().upper() if country else None, "contact": fields.option_text("--contact", contact)}
    with register.transaction(actor, "recipient add") as tx:
        if tx.execute("SELECT 1 FROM recipients WHERE name = ?", (name,)).fetchone():
            raise InvalidInput(f"name: a recipient named {name!r} is already registered")
        key = tx.insert("recipients", {**{k: v for k, v in row.items() if v is not None}, "created_at": tx.at})
    return recipient(register, key)


def recipients(register: Register) -> list[dict[str, Any]]:
    cursor = register.conn.execute(f"SELECT {', '.join(RECIPIENT_COLUMNS)} FROM recipients ORDER BY name")
    return [dict(zip(RECIPIENT_COLUMNS, values)) for values in cursor]


def recipient(register: Register, key_or_name: int | str) -> dict[str, Any]:
    column = "id" if isinstance(key_or_name, int) else "name"
    values = register.conn.execute(f"SELECT {', '.join(RECIPIENT_COLUMNS)} FROM recipients WHERE {column} = ?",
                                   (key_or_name,)).fetchone()
    if values is None:
        raise NotFound(f"recipient: no recipient {key_or_name!r} (see `pipolicy recipient list`)")
    return dict(zip(RECIPIENT_COLUMNS, values))


def add_pia(register: Register, actor: str, *, subject: str, covers: str, conclusion: str, file: Path | None = None,
            done_on: str | None = None) -> dict[str, Any]:
    chosen = sorted({code.strip() for code in covers.split(",") if code.strip()})
    if not chosen or any(code not in COVERS for code in chosen):
        raise InvalidInput(f"--covers: among {', '.join(COVERS)}")
    digest = None
    if file is not None:
        if not file.is_file():
            raise NotFound(f"--file: no such file {file}")
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    row = {"subject": fields.option_text("--subject", subject, required=True), "covers": ",".join(chosen),
           "conclusion": fields.option_text("--conclusion", conclusion, required=True), "file_path": str(file.resolve()) if file else None,
           "file_sha256": digest,
           "done_on": (dates.parse_date(done_on, "--done-on") if done_on else dates.now().date()).isoformat()}
    with register.transaction(actor, "pia add") as tx:
        key = tx.insert("pias", {**{k: v for k, v in row.items() if v is not None}, "created_at": tx.at})
    return pia(register, key)


def pias(register: Register) -> list[dict[str, Any]]:
    cursor = register.conn.execute(f"SELECT {', '.join(PIA_COLUMNS)} FROM pias ORDER BY id")
    return [_pia_row(values) for values in cursor]


def pia(register: Register, key: int) -> dict[str, Any]:
    values = register.conn.execute(f"SELECT {', '.join(PIA_COLUMNS)} FROM pias WHERE id = ?", (key,)).fetchone()
    if values is None:
        raise NotFound(f"--pia: no impact assessment {key}")
    return _pia_row(values)


def _pia_row(values: tuple) -> dict[str, Any]:
    row = dict(zip(PIA_COLUMNS, values))
    row["covers"] = row["covers"].split(",")
    return row


def _people(register: Register, user: dict[str, Any] | None, users_path: Path | None) -> list[tuple[int, str]]:
    """(user key, user_id) of one person, or of everyone in a file of users."""
    if user is not None:
        return [(user["id"], user["user_id"])]
    from pipolicy_cli import users

    users.stage_list(register, users_path, "listed")
    return register.conn.execute(
        "SELECT u.id, u.user_id FROM temp.listed w JOIN users u ON u.user_id = w.user_id ORDER BY w.row_no").fetchall()


def log(register: Register, kind: str, actor: str, *, user: dict[str, Any] | None = None, users_path: Path | None = None,
        categories: str, purpose: str, basis: str = "consent", recipient_name: str | None = None, pia_id: int | None = None,
        at: str | None = None, country: str | None = None, mechanism: str | None = None, sensitive: bool = False,
        channel: str | None = None) -> dict[str, Any]:
    """Record one provision per person, each with its access event; returns what was recorded and what is wrong."""
    from pipolicy_cli import access

    words = access.Vocabulary(register)
    chosen = sorted({code.strip() for code in categories.split(",") if code.strip()})
    if not chosen or any(code not in words.categories for code in chosen):
        raise InvalidInput("--categories: among the catalog's categories (pipolicy policy categories)")
    purpose = fields.option_text("--purpose", purpose, required=True)  # a purpose outside the policy is flagged, not refused
    if basis != "consent" and basis not in words.bases:
        raise InvalidInput("--basis: consent, or a basis code (pipolicy policy bases)")
    row: dict[str, Any] = {"categories": ",".join(chosen), "purpose": purpose}
    if kind in ("share", "transfer"):
        row["recipient_id"] = recipient(register, recipient_name)["id"]
    if pia_id is not None:
        pia(register, pia_id)
        row["pia_id"] = pia_id
    if kind == "transfer":
        if mechanism not in MECHANISMS:
            raise InvalidInput(f"--mechanism: must be one of {', '.join(MECHANISMS)}")
        if not country or not (len(country.strip()) == 2 and country.strip().isalpha()):
            raise InvalidInput("--country: a two-letter country code, e.g. SG")
        sensitive_codes = set(catalog.load_profile(settings.jurisdiction(register)).get("transfers", {})
                              .get("sensitive_categories", []))
        row.update(country=country.strip().upper(), mechanism=mechanism,
                   sensitive=int(sensitive or bool(sensitive_codes & set(chosen))))
    if kind == "disclose":
        row["channel"] = fields.option_text("--channel", channel)
    moment = settings.time_option(register, at, "--at")
    people = _people(register, user, users_path)
    action = kind
    with register.transaction(actor, f"{kind} log") as tx:
        when = moment or tx.at
        first = None
        for user_key, _ in people:
            access_id = tx.execute(
                "INSERT INTO access_log (at, actor, user_key, categories, purpose, action, basis, source, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pipolicy', ?)",
                (when, actor, user_key, row["categories"], purpose, action, basis, tx.at)).lastrowid
            values = {**{k: v for k, v in row.items() if v is not None}, "access_id": access_id, "user_key": user_key,
                      "at": when, "recorded_at": tx.at}
            key = tx.execute(f"INSERT INTO {KINDS[kind]} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                             tuple(values.values())).lastrowid
            first = first or key
        tx.record("insert", KINDS[kind], first, fields=tuple(values), detail={"rows": len(people)})
    judged = {}
    for user_key, user_id in people:
        for found in access.violations(register, user_key=user_key, since=when):
            if found["action"] == action and found["at"] == when:
                judged[user_id] = found["reasons"]
    return {"kind": kind, "recorded": len(people), "at": when, "flagged": len(judged),
            "findings": [{"user_id": user_id, "reasons": reasons} for user_id, reasons in judged.items()]}


def entries(register: Register, kind: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    table = KINDS[kind]
    extra = {"shares": ", r.name, r.kind", "transfers": ", r.name, r.kind, p.country, p.mechanism, p.sensitive",
             "disclosures": ", p.channel"}[table]
    join = " LEFT JOIN recipients r ON r.id = p.recipient_id" if table != "disclosures" else ""
    sql = (f"SELECT p.id, p.at, u.user_id, p.categories, p.purpose, p.pia_id{extra} FROM {table} p "
           f"LEFT JOIN users u ON u.id = p.user_key{join} ORDER BY p.at, p.id" + (" LIMIT ?" if limit else ""))
    names = ["id", "at", "user_id", "categories", "purpose", "pia_id"] + {
        "shares": ["recipient", "recipient_kind"], "transfers": ["recipient", "recipient_kind", "country", "mechanism", "sensitive"],
        "disclosures": ["channel"]}[table]
    for values in register.conn.execute(sql, (limit,) if limit else ()):
        row = dict(zip(names, values))
        row["categories"] = row["categories"].split(",")
        if "sensitive" in row:
            row["sensitive"] = bool(row["sensitive"])
        yield row


def for_person(register: Register, user_key: int) -> Iterator[dict[str, Any]]:
    """Every provision of the person's data (export)."""
    sql = """SELECT 'share', s.at, r.name, r.kind, r.country, NULL, s.categories, s.purpose FROM shares s
                 JOIN recipients r ON r.id = s.recipient_id WHERE s.user_key = :key
             UNION ALL
             SELECT 'transfer', t.at, r.name, r.kind, t.country, t.mechanism, t.categories, t.purpose FROM transfers t
                 JOIN recipients r ON r.id = t.recipient_id WHERE t.user_key = :key
             UNION ALL
             SELECT 'disclose', d.at, d.channel, 'public', NULL, NULL, d.categories, d.purpose FROM disclosures d
                 WHERE d.user_key = :key
             ORDER BY 2"""
    names = ("kind", "at", "recipient", "recipient_kind", "country", "mechanism", "categories", "purpose")
    for values in register.conn.execute(sql, {"key": user_key}):
        row = dict(zip(names, values))
        row["categories"] = row["categories"].split(",")
        yield row


def assign(register: Register, actor: str, acquirer: str, reason: str, keeps_policy: bool) -> dict[str, Any]:
    """A merger, acquisition or bankruptcy hands the register's data to another: who must be told, who re-asked.

    Policy 3.2: everyone is told the recipient's name and contact; if the recipient does not keep to this policy,
    everyone's consents must be sought again. The profile names the law's rule (`[provisions.assignment]`)."""
    target = recipient(register, acquirer)
    if target["kind"] != "acquirer":
        raise InvalidInput(f"ACQUIRER: {acquirer!r} is registered as {target['kind']}, not acquirer")
    if reason not in REASONS:
        raise InvalidInput(f"--reason: must be one of {', '.join(REASONS)}")
    with register.transaction(actor, "recipient assign") as tx:
        key = tx.insert("assignments", {"recipient_id": target["id"], "reason": reason, "keeps_policy": int(keeps_policy),
                                        "at": tx.at, "recorded_at": tx.at})
    return {"assignment": key, "acquirer": target["name"], "reason": reason, "keeps_policy": keeps_policy,
            "source": catalog.load_profile(settings.jurisdiction(register))["provisions"]["assignment"]["source"]}


def assignment_list(register: Register, keeps_policy: bool) -> Iterator[dict[str, Any]]:
    """Every person held: all are to be told; re-asked for consent when the acquirer does not keep the policy."""
    cursor = register.conn.execute(
        """SELECT u.user_id, u.status, u.email IS NOT NULL, u.phone IS NOT NULL,
                  (SELECT group_concat(DISTINCT c.code) FROM consents c WHERE c.user_key = u.id AND c.action = 'grant')
           FROM users u ORDER BY u.id""")
    for user_id, status, email, phone, granted in cursor:
        yield {"user_id": user_id, "status": status, "notify": True, "reask": not keeps_policy and bool(granted),
               "consents_to_reask": sorted(granted.split(",")) if granted and not keeps_policy else [],
               "reachable_by": [name for name, ok in (("email", email), ("sms", phone)) if ok]}


def thresholds(register: Register, year: int | None = None) -> dict[str, Any]:
    """People whose data went abroad this calendar year against the profile's thresholds, and whether the
    mechanisms in use suffice."""
    rules = catalog.load_profile(settings.jurisdiction(register)).get("transfers")
    year = year or dates.now().astimezone(settings.local_zone(register)).year
    start, end = f"{year:04d}-01-01", f"{year + 1:04d}-01-01"
    # An erased person's transfers keep counting (their link is gone, the row stays): -id stands in for them.
    people, plain_people, sensitive_people = register.conn.execute(
        """SELECT count(DISTINCT coalesce(user_key, -id)),
                  count(DISTINCT CASE WHEN sensitive = 0 THEN coalesce(user_key, -id) END),
                  count(DISTINCT CASE WHEN sensitive = 1 THEN coalesce(user_key, -id) END)
           FROM transfers WHERE at >= ? AND at < ?""", (start, end)).fetchone()
    in_use = sorted({m for (m,) in register.conn.execute(
        "SELECT DISTINCT mechanism FROM transfers WHERE at >= ? AND at < ?", (start, end))})
    result = {"year": year, "people": people, "people_without_sensitive_data": plain_people,
              "sensitive_people": sensitive_people, "mechanisms_in_use": in_use}
    if not rules:
        return {**result, "required": None, "sufficient": True,
                "source": f"the {settings.jurisdiction(register)} profile sets no volume thresholds"}
    if sensitive_people >= rules["assessment_sensitive_people"] or plain_people >= rules["assessment_people"]:
        required = "security-assessment"
    elif sensitive_people >= rules["contract_sensitive_people"] or plain_people >= rules["contract_people"]:
        required = "standard-contract or certification"
    else:
        required = "exempt"
    enough = {"security-assessment": {"security-assessment"},
              "standard-contract or certification": {"security-assessment", "standard-contract", "certification"},
              "exempt": set(MECHANISMS)}[required]
    short = [m for m in in_use if m not in enough]
    return {**result, "required": required, "sufficient": not short, "insufficient_mechanisms": short,
            "source": rules["source"]}
