"""The policy: its catalog, its versions, and who must be told or asked again.

A version that reduces rights, or changes purposes, methods or categories,
needs fresh consent (PIPL Art. 14): from its effective time, consents given
before it stop counting until renewed. "Continuing to use the service means
you agree" (policy section 8) is not consent under PIPL.
"""

from __future__ import annotations

from typing import Any, Iterator

from pipolicy_cli import catalog, dates, fields, masking, settings
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register

CHANGE_KINDS = ("purposes", "methods", "categories")


def purposes(register: Register) -> list[dict[str, Any]]:
    return [
        {"code": p["code"], "title": p["title"], "default_basis": p["default_basis"], "clause": p["clause"]}
        for p in settings.policy_catalog(register)["purposes"]
    ]


def categories(register: Register) -> list[dict[str, Any]]:
    return [{"code": c["code"], "title": c["title"], "clause": c["clause"]} for c in settings.policy_catalog(register)["categories"]]


def scopes(register: Register) -> list[dict[str, Any]]:
    return [{"code": c["code"], "title": c["title"], "clause": c["clause"]} for c in settings.policy_catalog(register)["scopes"]]


def bases(register: Register) -> list[dict[str, Any]]:
    """The policy's no-authorization cases with their counterpart in the profile's law."""
    code = settings.jurisdiction(register)
    mapping = catalog.load_profile(code)["bases"]
    rows = []
    for basis in settings.policy_catalog(register)["bases"]:
        law = mapping.get(basis["code"], {})
        rows.append({
            "code": basis["code"],
            "title": basis["title"],
            "clause": basis["clause"],
            "law": law.get("law") or None,
            "flagged": not law.get("law"),
            "source": law.get("source", f"profile {code} does not map this basis"),
        })
    return rows


def versions(register: Register) -> list[dict[str, Any]]:
    rows = register.conn.execute(
        "SELECT id, version, effective_at, changes, reduces_rights, summary, created_at FROM policy_versions ORDER BY effective_at, id"
    ).fetchall()
    return [
        {
            "id": key, "version": version, "effective_at": effective, "changes": changes.split(",") if changes else [],
            "reduces_rights": bool(reduces), "needs_reconsent": bool(reduces or changes), "summary": summary,
            "created_at": created,
        }
        for key, version, effective, changes, reduces, summary, created in rows
    ]


def add_version(register: Register, version: str, effective: str, changes: list[str], reduces_rights: bool,
                summary: str | None, actor: str) -> dict[str, Any]:
    try:
        version = fields.text("version", version)
        summary = fields.text("summary", summary) if summary else None
    except fields.FieldError as exc:
        raise InvalidInput(str(exc)) from None
    if not version:
        raise InvalidInput("version: required")
    unknown = [kind for kind in changes if kind not in CHANGE_KINDS]
    if unknown:
        raise InvalidInput(f"--changes: {unknown[0]}: must be among {', '.join(CHANGE_KINDS)}")
    effective_at = dates.to_text(dates.parse_time(effective, settings.local_zone(register), "--effective"))
    with register.transaction(actor, "policy version add") as tx:
        if tx.execute("SELECT 1 FROM policy_versions WHERE version = ?", (version,)).fetchone():
            raise InvalidInput(f"version: {version} is already recorded")
        key = tx.insert("policy_versions", {
            "version": version, "effective_at": effective_at, "changes": ",".join(sorted(set(changes))),
            "reduces_rights": int(reduces_rights), "summary": summary, "created_at": tx.at,
        })
    return next(row for row in versions(register) if row["id"] == key)


# The version in force at `{at}`: a parameter, or an SQL expression where an import looks it up per row.
IN_FORCE_SQL = "SELECT version FROM policy_versions WHERE effective_at <= {at} ORDER BY effective_at DESC, id DESC LIMIT 1"


def version_in_force(register: Register, at: str) -> str | None:
    row = register.conn.execute(IN_FORCE_SQL.format(at="?"), (at,)).fetchone()
    return row[0] if row else None


def notify_list(register: Register, version: str | None) -> Iterator[dict[str, Any]]:
    """Active users to tell about a version (policy section 8), with how they can be reached."""
    known = versions(register)
    if not known:
        raise NotFound("policy version: none recorded; add one with `pipolicy policy version add`")
    chosen = known[-1] if version is None else next((row for row in known if row["version"] == version), None)
    if chosen is None:
        raise NotFound(f"policy version: {version} is not recorded")
    cursor = register.conn.execute(
        "SELECT user_id, name, phone, email, address FROM users WHERE status = 'active' ORDER BY id"
    )
    for user_id, name, phone, email, address in cursor:
        channels = [channel for channel, value in (("email", email), ("sms", phone), ("letter", address)) if value]
        yield {
            "user_id": user_id, "name": masking.name(name), "phone": masking.phone(phone), "email": masking.email(email),
            "channels": channels, "version": chosen["version"], "needs_reconsent": chosen["needs_reconsent"],
        }


def reconsent_list(register: Register) -> Iterator[dict[str, Any]]:
    """Active users whose standing consent predates a version that needs fresh consent (PIPL Art. 14)."""
    cursor = register.conn.execute(
        """WITH latest AS (
               SELECT c.user_key, c.code, c.action, c.at,
                      row_number() OVER (PARTITION BY c.user_key, c.code ORDER BY c.at DESC, c.id DESC) AS n
               FROM consents c)
           SELECT u.user_id, l.code, l.at,
                  (SELECT v.version FROM policy_versions v
                   WHERE v.effective_at > l.at AND (v.reduces_rights = 1 OR v.changes != '')
                   ORDER BY v.effective_at DESC, v.id DESC LIMIT 1) AS version
           FROM latest l JOIN users u ON u.id = l.user_key
           WHERE l.n = 1 AND l.action = 'grant' AND u.status = 'active' AND version IS NOT NULL
           ORDER BY u.id, l.code"""
    )
    for user_id, code, granted_at, version in cursor:
        yield {"user_id": user_id, "code": code, "granted_at": granted_at, "superseded_by": version}
