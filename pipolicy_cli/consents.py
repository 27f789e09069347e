"""Consents: append-only proof of every permission (PIPL Art. 14-15, 28-31; policy 1.3, 2, 6).

`check` answers whether a use is allowed at a time, and why not: no consent,
withdrawn, superseded by a policy version that needs fresh consent, a minor's
consent without a guardian's written consent, or a cancelled account. A
purpose whose default basis is not consent (`service` rests on the contract)
needs none, until the account is cancelled.

One check (`check_event`) serves `consent grant|withdraw` and `consent import`,
which takes the grants and withdrawals other systems pipe in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from pipolicy_cli import dates, fields, policy, settings, users
from pipolicy_cli.errors import InvalidInput
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size
from pipolicy_cli.staging import IMPORT_CACHE_KIB, ImportResult, Staging, checked_records, jobs_for

ACTIONS = ("grant", "withdraw")
# An event as a command's options or an import's records give it ...
IMPORT_FIELDS = ("user_id", "action", "purpose", "at", "method", "evidence", "by_guardian", "relation", "written_consent",
                 "signal", "source", "event_id")
# ... and as the consents table stores it (`code` is the purpose or scope).
EVENT_COLUMNS = ("user_id", "code", "action", "at", "method", "evidence", "signal", "guardian_name", "guardian_relation",
                 "written_consent", "source", "event_id")
_GUARDIAN = ("by_guardian", "relation", "written_consent")
_OPTIONS = {"at": "--at", "method": "--method", "evidence": "--evidence", "signal": "--signal",
            "by_guardian": "--by-guardian", "relation": "--relation", "written_consent": "--written-consent"}


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


class Rules:
    """What a consent event is checked against, loaded once; picklable for worker processes."""

    def __init__(self, register: Register):
        self.codes = Codes.of(register)
        self.signals = {s["code"]: tuple(s["withdraws"]) for s in settings.policy_catalog(register)["signals"]}
        self.zone = settings.local_zone(register)


def check_event(raw: dict[str, Any], rules: Rules) -> tuple[tuple, list[tuple[str, str]]]:
    """Normalise one grant or withdrawal given by IMPORT_FIELDS; returns (values in EVENT_COLUMNS order, problems).

    The checks of `consent grant|withdraw` and of `consent import` alike. A missing `at` stays None: the
    event is recorded at the time it is written.
    """
    problems: list[tuple[str, str]] = fields.unknown_fields(raw, IMPORT_FIELDS)
    out: dict[str, Any] = {}
    for name in IMPORT_FIELDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            problems.append((name, "must be text"))
            value = None
        elif value is not None:
            try:
                value = fields.text(name, value)
            except fields.FieldError as exc:
                problems.append((name, exc.reason))
                value = None
        out[name] = value or None
    for name in ("user_id", "action", "purpose"):
        if out[name] is None and not any(problem[0] == name for problem in problems):
            problems.append((name, "required"))
    action, code, signal = out["action"], out["purpose"], out["signal"]
    if action and action not in ACTIONS:
        problems.append(("action", "must be grant or withdraw"))
    if code and not rules.codes.known(code):
        problems.append(("purpose", "neither a purpose nor a consent scope of the policy (see `pipolicy policy purposes`)"))
    if out["at"]:
        try:
            moment = dates.parse_time(out["at"], rules.zone, "at")
        except InvalidInput as exc:
            problems.append(("at", str(exc).split(": ", 1)[-1]))
        else:
            if moment > dates.now():
                problems.append(("at", "a consent cannot be recorded for the future"))
            out["at"] = dates.to_text(moment)
    if signal:
        if signal not in rules.signals:
            problems.append(("signal", f"must be one of {', '.join(rules.signals)}"))
        elif action == "grant":
            problems.append(("signal", "only a withdrawal comes from a signal"))
        elif code and code not in rules.signals[signal]:
            problems.append(("signal", f"{signal} withdraws only {' or '.join(rules.signals[signal])}"))
    given = [name for name in _GUARDIAN if out[name]]
    if given and action == "withdraw":
        problems.append((given[0], "a guardian's written consent goes with a grant"))
    elif given and len(given) < len(_GUARDIAN):
        missing = next(name for name in _GUARDIAN if not out[name])
        problems.append((missing, "required: a guardian's consent names the guardian, the relation and the written consent"))
    if out["event_id"] and not out["source"]:
        problems.append(("source", "required with event_id (duplicates are recognised by the pair)"))
    return (out["user_id"], code, action, out["at"], out["method"], out["evidence"], signal, out["by_guardian"],
            out["relation"], out["written_consent"], out["source"], out["event_id"]), problems


def age_at(born: str | None, at: str, zone) -> int | None:
    """A person's age at a stored time, on the register's calendar."""
    if not born:
        return None
    return users.age({"born": born}, datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(zone).date())


def record(register: Register, row: dict[str, Any], code: str, action: str, actor: str, **given: str | None) -> dict[str, Any]:
    """Append one grant or withdrawal; `given`: the other IMPORT_FIELDS (at, method, by_guardian, signal, ...).
    Returns it with a warning when it will not count."""
    rules = Rules(register)
    values, problems = check_event({"user_id": row["user_id"], "action": action, "purpose": code, **given}, rules)
    if problems:
        lines = [f"{_OPTIONS.get(name, name)}: {reason}" for name, reason in problems]
        raise InvalidInput(lines[0], lines)
    event = dict(zip(EVENT_COLUMNS, values))
    event["at"] = event["at"] or dates.now_text()
    with register.transaction(actor, f"consent {action}") as tx:
        stored = {**event, "policy_version": policy.version_in_force(register, event["at"]), "recorded_at": tx.at}
        del stored["user_id"]
        key = tx.insert("consents", {"user_key": row["id"], **{k: v for k, v in stored.items() if v is not None}})
    warning = None
    age = age_at(row.get("born"), event["at"], rules.zone) if action == "grant" and not event["written_consent"] else None
    limit = settings.guardian_age(register)[0]
    if age is not None and age < limit:
        warning = f"the person was {age} at that time: this consent counts only with a guardian's written consent (under {limit})"
    return {"id": key, "user_id": row["user_id"], **stored, "warning": warning}


def import_consents(register: Register, path: Path, fmt: str, actor: str, *, skip_invalid: bool = False,
                    batch_size: int = 10_000, max_problems: int = 1000, jobs: int | None = None) -> ImportResult:
    """Grants and withdrawals from other systems, each checked as `consent grant|withdraw` checks one, the
    whole file first; then appended in atomic batches, each event with the policy version in force at its
    time. A resent (source, event_id) is skipped."""
    result = ImportResult()
    conn = register.conn
    rules = Rules(register)
    with cache_size(conn, IMPORT_CACHE_KIB), Staging(EVENT_COLUMNS) as staging:
        staging.load(checked_records(path, fmt, check_event, rules, jobs_for(path, jobs), fields=IMPORT_FIELDS), result)
        staging.index_events()
        with staging.attached(conn):
            Staging.check_events(conn, result, max_problems, "consents")
            if result.invalid and not skip_invalid:
                return result
            limit = settings.guardian_age(register)[0]
            young = _grants_under(conn, rules.zone, limit)
            if young:
                result.notes.append(f"{young} {'grant' if young == 1 else 'grants'} given under {limit} without a guardian's "
                                    "written consent: a minor's consent counts only with one (see `pipolicy consent minors`)")
            columns = EVENT_COLUMNS[1:]
            # An event without a time happened when it is written; its policy version is the one in force then.
            at = "coalesce(s.at, :now)"
            values = ", ".join(at if column == "at" else f"s.{column}" for column in columns)
            for first, final, count in Staging.batches(conn, None, batch_size):
                with register.transaction(actor, "consent import") as tx:
                    first_key = (conn.execute("SELECT max(id) FROM main.consents").fetchone()[0] or 0) + 1
                    # Other processes write between the checks and this batch: the consents of a person erased
                    # meanwhile go with the person, and one another import stored meanwhile is not stored twice.
                    inserted = conn.execute(
                        f"""INSERT INTO main.consents (user_key, {', '.join(columns)}, policy_version, recorded_at)
                            SELECT u.id, {values}, ({policy.IN_FORCE_SQL.format(at=at)}), :now
                            FROM spool.staged s JOIN main.users u ON u.user_id = s.user_id
                            WHERE s.outcome IS NULL AND s.row_no BETWEEN :first AND :final ORDER BY s.row_no
                            ON CONFLICT (source, event_id) WHERE event_id IS NOT NULL DO NOTHING""",
                        {"now": tx.at, "first": first, "final": final},
                    ).rowcount
                    if inserted:
                        tx.record("import", "consents", fields=(*columns, "policy_version"),
                                  detail={"inserted": inserted, "keys": [first_key, first_key + inserted - 1]})
                result.inserted += inserted
                result.skipped += count - inserted
                result.written = result.written or bool(inserted)
    return result


def _grants_under(conn, zone, limit: int) -> int:
    """Valid staged grants given under `limit` years of age without a guardian's written consent (attached)."""
    rows = conn.execute(
        """SELECT coalesce(s.at, :now), u.born FROM spool.staged s JOIN main.users u ON u.user_id = s.user_id
           WHERE s.outcome IS NULL AND s.action = 'grant' AND s.written_consent IS NULL
             AND u.born > date(coalesce(s.at, :now), :span)""",
        {"now": dates.now_text(), "span": f"-{limit + 1} years"},
    )
    return sum(1 for at, born in rows if age_at(born, at, zone) < limit)


def history(register: Register, row: dict[str, Any], code: str | None = None) -> list[dict[str, Any]]:
    sql = ("SELECT id, code, action, at, method, evidence, signal, guardian_name, guardian_relation, written_consent, "
           "policy_version, source, event_id, recorded_at FROM consents WHERE user_key = ?")
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
        age = age_at(row.get("born"), given_at, self.zone)
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
