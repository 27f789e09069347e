"""Consents: append-only proof of every permission (PIPL Art. 14-15, 28-31; policy 1.3, 2, 6).

`check` answers whether a use is allowed at a time, and why not: no consent,
withdrawn, superseded by a policy version that needs fresh consent, a minor's
consent without a guardian's written consent, or a cancelled account. A
purpose whose default basis is not consent (`service` rests on the contract)
needs none, until the account is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from pipolicy_cli import dates, fields, policy, settings, users
from pipolicy_cli.errors import InvalidInput
from pipolicy_cli.register import Register

TEXT_FIELDS = ("method", "evidence", "guardian_name", "guardian_relation", "written_consent")


@dataclass(frozen=True)
class Codes:
    purposes: dict[str, str]  # code -> default basis
    scopes: frozenset[str]

    @classmethod
    def of(cls, register: Register) -> "Codes":
        catalog = settings.policy_catalog(register)
        return cls({p["code"]: p["default_basis"] for p in catalog["purposes"]}, frozenset(s["code"] for s in catalog["scopes"]))

    def known(self, code: str) -> bool:
        return code in self.purposes or code in self.scopes

    def require(self, code: str) -> str:
        if not self.known(code):
            raise InvalidInput("purpose: neither a purpose nor a consent scope of the policy (see `pipolicy policy purposes`)")
        return code


def _text(details: dict[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in details.items():
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = fields.text(key, value) or None
        except fields.FieldError as exc:
            raise InvalidInput(str(exc)) from None
    return out


def record(register: Register, row: dict[str, Any], code: str, action: str, actor: str, *, at: str | None = None,
           signal: str | None = None, **details: str | None) -> dict[str, Any]:
    """Append one grant or withdrawal; returns it with a warning when it will not count."""
    Codes.of(register).require(code)
    zone = settings.local_zone(register)
    moment = dates.parse_time(at, zone, "--at") if at else dates.now()
    if moment > dates.now():
        raise InvalidInput("--at: a consent cannot be recorded for the future")
    if signal is not None:
        signals = {s["code"]: s["withdraws"] for s in settings.policy_catalog(register)["signals"]}
        if signal not in signals:
            raise InvalidInput(f"--signal: must be one of {', '.join(signals)}")
        if action != "withdraw" or code not in signals[signal]:
            raise InvalidInput(f"--signal: {signal} withdraws only {' or '.join(signals[signal])}")
    details = _text(details)
    guardian = [details.get("guardian_name"), details.get("guardian_relation"), details.get("written_consent")]
    if any(guardian) and not all(guardian):
        raise InvalidInput("--by-guardian: needs --relation and --written-consent too")
    when = dates.to_text(moment)
    with register.transaction(actor, f"consent {action}") as tx:
        values = {"user_key": row["id"], "code": code, "action": action, "at": when, "signal": signal,
                  "policy_version": policy.version_in_force(register, when), "recorded_at": tx.at, **details}
        key = tx.insert("consents", {k: v for k, v in values.items() if v is not None})
    event = {"id": key, "user_id": row["user_id"], **values}
    event.pop("user_key")
    warning = None
    if action == "grant" and not all(guardian):
        age = users.age(row, moment.astimezone(zone).date())
        limit = settings.guardian_age(register)[0]
        if age is not None and age < limit:
            warning = f"the person was {age} at that time: this consent counts only with a guardian's written consent (under {limit})"
    return {**event, "warning": warning}


def history(register: Register, row: dict[str, Any], code: str | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT id, code, action, at, method, evidence, signal, guardian_name, guardian_relation, written_consent, "
           "policy_version, recorded_at FROM consents WHERE user_key = ?")
    params: list[Any] = [row["id"]]
    if code:
        sql += " AND code = ?"
        params.append(code)
    cursor = register.conn.execute(sql + " ORDER BY at, id", params)
    names = [column[0] for column in cursor.description]
    return [{"user_id": row["user_id"], **dict(zip(names, values))} for values in cursor]


class Checker:
    """Answers many questions against one register, loading the fixed parts once."""

    def __init__(self, register: Register):
        self.register = register
        self.codes = Codes.of(register)
        self.zone = settings.local_zone(register)
        self.guardian_age = settings.guardian_age(register)[0]
        self.superseding = [
            (row["effective_at"], row["version"]) for row in policy.versions(register) if row["needs_reconsent"]
        ]

    def check(self, row: dict[str, Any] | None, code: str, at: datetime, user_id: str | None = None) -> dict[str, Any]:
        when = dates.to_text(at)
        answer = {"user_id": row["user_id"] if row else user_id, "purpose": code, "at": when}
        if row is None:
            return {**answer, "allowed": False, "reason": "unknown-user", "why": "no such user"}
        if row["status"] == "cancelled" and row["cancelled_at"] and row["cancelled_at"] <= when:
            return {**answer, "allowed": False, "reason": "cancelled", "why": f"the account was cancelled at {row['cancelled_at']}"}
        if not self.codes.known(code):
            return {**answer, "allowed": False, "reason": "unknown-purpose", "why": "not a purpose of the policy (policy 1.3)"}
        basis = self.codes.purposes.get(code, "consent")
        if basis != "consent":
            return {**answer, "allowed": True, "basis": basis, "reason": "allowed", "why": f"rests on {basis}, not consent"}
        last = self.register.conn.execute(
            """SELECT action, at, written_consent, signal FROM consents
               WHERE user_key = ? AND code = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1""",
            (row["id"], code, when),
        ).fetchone()
        if last is None:
            return {**answer, "allowed": False, "reason": "no-consent", "why": "no consent on record"}
        action, given_at, written_consent, signal = last
        if action == "withdraw":
            by = f" by a {signal.upper()} signal" if signal else ""
            return {**answer, "allowed": False, "reason": "withdrawn", "why": f"withdrawn{by} at {given_at}"}
        for effective_at, version in self.superseding:
            if given_at < effective_at <= when:
                return {**answer, "allowed": False, "reason": "superseded",
                        "why": f"given before policy version {version} (effective {effective_at}), which needs fresh consent"}
        age = users.age(row, datetime.fromisoformat(given_at.replace("Z", "+00:00")).astimezone(self.zone).date())
        if age is not None and age < self.guardian_age and not written_consent:
            return {**answer, "allowed": False, "reason": "minor-without-guardian",
                    "why": f"given at age {age} without a guardian's written consent"}
        return {**answer, "allowed": True, "basis": "consent", "reason": "allowed", "why": f"consent given at {given_at}"}


def minors(register: Register) -> Iterator[dict[str, Any]]:
    """Active users under the guardian age without a guardian's written consent, then users of unknown age."""
    on = users.today(register)
    limit = settings.guardian_age(register)[0]
    cursor = register.conn.execute(
        """SELECT u.id, u.user_id, u.born, u.status,
                  EXISTS (SELECT 1 FROM consents c WHERE c.user_key = u.id AND c.action = 'grant'
                          AND c.written_consent IS NOT NULL) AS has_guardian
           FROM users u
           WHERE u.status = 'active' AND (u.born > ? OR u.born IS NULL)
           ORDER BY u.born IS NULL, u.id""",
        (users.cutoff(on, limit),),
    )
    for key, user_id, born, status, has_guardian in cursor:
        if born is None:
            yield {"user_id": user_id, "age": None, "finding": "age-unknown", "violation": False}
        elif not has_guardian:
            age = users.age({"born": born}, on)
            yield {"user_id": user_id, "age": age, "finding": "no-guardian-consent", "violation": True}



def standing(register: Register, code: str | None, state: str | None, limit: int | None) -> Iterator[dict[str, Any]]:
    """The latest event per person and purpose or scope."""
    clauses, params = [], []
    if code:
        clauses.append("c.code = ?")
        params.append(code)
    sql = f"""WITH latest AS (
                 SELECT c.*, row_number() OVER (PARTITION BY c.user_key, c.code ORDER BY c.at DESC, c.id DESC) AS n
                 FROM consents c {'WHERE ' + ' AND '.join(clauses) if clauses else ''})
              SELECT u.user_id, l.code, l.action, l.at, l.policy_version, l.written_consent IS NOT NULL
              FROM latest l JOIN users u ON u.id = l.user_key WHERE l.n = 1"""
    if state:
        sql += " AND l.action = ?"
        params.append("grant" if state == "granted" else "withdraw")
    sql += " ORDER BY u.id, l.code"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for user_id, code_, action, at, version, guardian in register.conn.execute(sql, params):
        yield {"user_id": user_id, "code": code_, "state": "granted" if action == "grant" else "withdrawn",
               "at": at, "policy_version": version, "guardian": bool(guardian)}
