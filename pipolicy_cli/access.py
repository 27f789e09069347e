"""The access log: every use of a person's data, and the violations found in it.

An event is never refused for lacking a basis: the log must be complete, so a
use without consent is stored and found by `violations`, which is computed at
query time, so a consent recorded late or a new policy version counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from pipolicy_cli import catalog, dates, fields, settings, users
from pipolicy_cli.consents import Codes
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size
from pipolicy_cli.staging import ImportResult, Staging, checked_records, jobs_for

ACTIONS = ("view", "use", "modify", "share", "transfer", "disclose", "export")
EVENT_FIELDS = ("at", "actor", "user_id", "categories", "purpose", "action", "basis", "source", "event_id")
_FIELD_SET = frozenset(EVENT_FIELDS)
_ACTION_SET = frozenset(ACTIONS)
_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
MAX_TEXT = 200
ACCESS_CACHE_KIB = 96 * 1024  # three indexes on a log of millions; still well under 256 MB in all
# Rows per INSERT ... SELECT within a batch's transaction. A statement in an open
# transaction keeps a statement journal, a copy of every existing page it changes,
# and with temp_store = MEMORY that copy is in RAM. A batch's 50,000 events land on
# random pages of two indexes (~2 pages an event), so one statement per batch held
# ~175 MB more than the page cache at 3M stored events, growing with the log (peak
# 496 MB at 10M). 2,000 rows hold ~30 MB; a batch is still one transaction, one audit event.
STATEMENT_ROWS = 2_000


class Vocabulary:
    """The codes an event may use, from the register's catalog; picklable for worker processes."""

    def __init__(self, register: Register):
        cat = settings.policy_catalog(register)
        self.categories = frozenset(c["code"] for c in cat["categories"])
        self.bases = frozenset(["consent", *(b["code"] for b in cat["bases"])])
        self.zone = settings.local_zone(register)
        self._stored_form: dict[str, bool] = {}

    def in_stored_form(self, categories: str) -> bool:
        """Known codes, sorted, each once, no spaces: as stored. Remembered, since a log repeats a few sets."""
        known = self._stored_form.get(categories)
        if known is None:
            parts = categories.split(",")
            known = parts == sorted(set(parts)) and self.categories.issuperset(parts)
            if len(self._stored_form) < 10_000:
                self._stored_form[categories] = known
        return known


def _plain(raw: dict[str, Any], words: Vocabulary) -> tuple | None:
    """The values of an event that needs no normalising at all, else None (then `check_event` looks closer)."""
    if not raw.keys() <= _FIELD_SET:
        return None
    values = tuple(raw.get(name) for name in EVENT_FIELDS)
    for value in values[:7]:
        if type(value) is not str or not value or len(value) > MAX_TEXT or value != value.strip():
            return None
    for value in values[7:]:
        if value is not None and (type(value) is not str or not value or len(value) > MAX_TEXT or value != value.strip()):
            return None
    at, _, _, categories, _, action, basis, source, event_id = values
    if (not _CANONICAL_TIME.match(at) or not words.in_stored_form(categories) or action not in _ACTION_SET
            or basis not in words.bases or (event_id and not source)):
        return None
    try:
        datetime.fromisoformat(at[:-1])
    except ValueError:
        return None
    return values


def check_event(raw: dict[str, Any], words: Vocabulary) -> tuple[tuple, list[tuple[str, str]]]:
    """Normalise one event; returns (values in EVENT_FIELDS order, problems). A night's log runs
    through here millions of times, so an event already in canonical form takes the short way."""
    plain = _plain(raw, words)
    if plain is not None:
        return plain, []
    problems: list[tuple[str, str]] = []
    if not raw.keys() <= _FIELD_SET:
        problems += fields.unknown_fields(raw, _FIELD_SET)
    values = []
    for name in EVENT_FIELDS:
        value = raw.get(name)
        if isinstance(value, str):
            value = value.strip()
            if len(value) > MAX_TEXT:
                problems.append((name, f"longer than {MAX_TEXT} characters"))
        elif value is not None and not (name == "categories" and isinstance(value, list)):
            problems.append((name, "must be text"))
            value = None
        values.append(value or None)
    at, actor, user_id, categories, purpose, action, basis, source, event_id = values
    if None in (at, actor, user_id, categories, purpose, action, basis):
        for name, value in (("at", at), ("actor", actor), ("user_id", user_id), ("categories", categories),
                            ("purpose", purpose), ("action", action), ("basis", basis)):
            if value is None and not any(p[0] == name for p in problems):
                problems.append((name, "required"))
    if at:
        try:
            if _CANONICAL_TIME.match(at):
                datetime.fromisoformat(at[:-1])  # a real calendar time
            else:
                at = dates.to_text(dates.parse_time(at, words.zone, "at"))
        except (ValueError, InvalidInput):
            problems.append(("at", "not a date or time"))
    if categories:
        parts = categories if isinstance(categories, list) else categories.split(",")
        if not all(isinstance(part, str) for part in parts):
            problems.append(("categories", "must be codes"))
        else:
            codes = sorted({part.strip() for part in parts if part.strip()})
            if not codes or not words.categories.issuperset(codes):
                problems.append(("categories", "not categories of the policy (see `pipolicy policy categories`)"))
            categories = ",".join(codes)
    if action and action not in ACTIONS:
        problems.append(("action", f"must be one of {', '.join(ACTIONS)}"))
    if basis and basis not in words.bases:
        problems.append(("basis", "must be consent or a basis code (see `pipolicy policy bases`)"))
    if event_id and not source:
        problems.append(("source", "required with event_id (duplicates are recognised by the pair)"))
    return (at, actor, user_id, categories, purpose, action, basis, source, event_id), problems


def log(register: Register, raw: dict[str, Any], actor: str) -> dict[str, Any]:
    values, problems = check_event(raw, Vocabulary(register))
    if problems:
        lines = [f"{name}: {reason}" for name, reason in problems]
        raise InvalidInput(lines[0], lines)
    event = dict(zip(EVENT_FIELDS, values))
    user = register.conn.execute("SELECT id FROM users WHERE user_id = ?", (event["user_id"],)).fetchone()
    if not user:
        raise NotFound("user: no such user")
    with register.transaction(actor, "access log") as tx:
        if event["event_id"] and tx.execute(
            "SELECT 1 FROM access_log WHERE source = ? AND event_id = ?", (event["source"], event["event_id"])
        ).fetchone():
            return {"id": None, "skipped": "already logged", **event}
        row = {k: v for k, v in event.items() if k != "user_id" and v is not None}
        key = tx.insert("access_log", {**row, "user_key": user[0], "recorded_at": tx.at})
    return {"id": key, **event}


def import_events(register: Register, path: Path, fmt: str, actor: str, *, skip_invalid: bool = False,
                  batch_size: int = 50_000, max_problems: int = 1000, jobs: int | None = None) -> ImportResult:
    """A night's log: validated in full, then written in atomic batches; known (source, event_id) skipped."""
    result = ImportResult()
    conn = register.conn
    with cache_size(conn, ACCESS_CACHE_KIB), Staging(EVENT_FIELDS) as staging:
        staging.load(checked_records(path, fmt, check_event, Vocabulary(register), jobs_for(path, jobs), fields=EVENT_FIELDS), result)
        staging.index_events()
        with staging.attached(conn):
            Staging.check_events(conn, result, max_problems, "access_log")
            if result.invalid and not skip_invalid:
                return result
            for first, final, count in Staging.batches(conn, None, batch_size):
                with register.transaction(actor, "access import") as tx:
                    first_key = (conn.execute("SELECT max(id) FROM main.access_log").fetchone()[0] or 0) + 1
                    inserted = sum(_insert_rows(conn, tx.at, low, min(low + STATEMENT_ROWS - 1, final))
                                   for low in range(first, final + 1, STATEMENT_ROWS))
                    if inserted:
                        detail = {"inserted": inserted, "keys": [first_key, first_key + inserted - 1]}
                        (restricted,) = conn.execute("SELECT count(*) FROM main.access_log WHERE id >= ? AND user_key IS NULL",
                                                     (first_key,)).fetchone()
                        if restricted:
                            detail["restricted"] = restricted
                        tx.record("import", "access_log", fields=("at", "actor", "categories", "purpose", "action", "basis"),
                                  detail=detail)
                result.inserted += inserted
                result.skipped += count - inserted
                result.written = result.written or bool(inserted)
    return result


def _insert_rows(conn, at: str, first: int, final: int) -> int:
    """Copy staged rows first..final into the log; how many were stored.

    Other processes write between the checks and this batch. An event another import stored meanwhile (the
    same source and id: a retried cron job) is skipped, as the checks would have skipped it. An event whose
    person was erased meanwhile is kept the way the erasure keeps that person's events: unlinked, restricted.
    """
    return conn.execute(
        """INSERT INTO main.access_log
               (at, actor, user_key, categories, purpose, action, basis, source, event_id, recorded_at, restricted_at)
           SELECT s.at, s.actor, u.id, s.categories, s.purpose, s.action, s.basis, s.source, s.event_id, :at,
                  CASE WHEN u.id IS NULL THEN :at END
           FROM spool.staged s LEFT JOIN main.users u ON u.user_id = s.user_id
           WHERE s.outcome IS NULL AND s.row_no BETWEEN :first AND :final ORDER BY s.row_no
           ON CONFLICT (source, event_id) WHERE event_id IS NOT NULL DO NOTHING""",
        {"at": at, "first": first, "final": final},
    ).rowcount


def events(register: Register, *, user_key: int | None = None, since: str | None = None, until: str | None = None,
           purpose: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    clauses, params = [], []
    for clause, value in (("a.user_key = ?", user_key), ("a.at >= ?", since), ("a.at < ?", until), ("a.purpose = ?", purpose)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    sql = ("SELECT a.id, a.at, a.actor, u.user_id, a.categories, a.purpose, a.action, a.basis, a.source, a.event_id "
           "FROM access_log a LEFT JOIN users u ON u.id = a.user_key")
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    sql += " ORDER BY a.at, a.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    cursor = register.conn.execute(sql, params)
    for key, at, actor, user_id, categories, purpose_, action, basis, source, event_id in cursor:
        yield {"id": key, "at": at, "actor": actor, "user_id": user_id, "categories": categories.split(","),
               "purpose": purpose_, "action": action, "basis": basis, "source": source, "event_id": event_id}


# The query behind `violations`: each event with the person's state and the
# latest consent event, at the event's time, for its purpose and for the
# scopes its categories need. Evaluated in Python, row by row, streaming.
_LATEST = """(SELECT c.action || '|' || c.at || '|' || coalesce(c.written_consent, '') || '|' || coalesce(c.signal, '')
              FROM consents c WHERE c.user_key = a.user_key AND c.code = {code} AND c.at <= a.at
              ORDER BY c.at DESC, c.id DESC LIMIT 1)"""
# A provision of data (`pipolicy_cli.provisions`): its kind, the recipient's kind and agreement, and what its
# impact assessment covers.
_PROVISION = """(SELECT p.kind || '|' || coalesce(r.kind, '') || '|' || coalesce(r.agreement, '') || '|' || coalesce(i.covers, '')
                 FROM (SELECT 'share' AS kind, recipient_id, pia_id FROM shares WHERE access_id = a.id
                       UNION ALL SELECT 'transfer', recipient_id, pia_id FROM transfers WHERE access_id = a.id
                       UNION ALL SELECT 'disclose', NULL, pia_id FROM disclosures WHERE access_id = a.id) p
                 LEFT JOIN recipients r ON r.id = p.recipient_id LEFT JOIN pias i ON i.id = p.pia_id)"""
VIOLATIONS_SQL = f"""
SELECT a.id, a.at, a.actor, u.user_id, a.categories, a.purpose, a.action, a.basis,
       u.status, u.cancelled_at, u.born,
       CASE WHEN a.basis = 'consent' THEN {_LATEST.format(code='a.purpose')} END,
       CASE WHEN instr(',' || a.categories || ',', ',location,') THEN {_LATEST.format(code="'location'")} END,
       CASE WHEN instr(',' || a.categories || ',', ',tracking,') THEN {_LATEST.format(code="'tracking'")} END,
       CASE WHEN a.action IN ('share', 'transfer', 'disclose') THEN {_PROVISION} END,
       CASE a.action WHEN 'share' THEN {_LATEST.format(code="'sharing'")}
                     WHEN 'transfer' THEN {_LATEST.format(code="'cross-border'")}
                     WHEN 'disclose' THEN {_LATEST.format(code="'disclosure'")} END
FROM access_log a JOIN users u ON u.id = a.user_key
"""


class Judge:
    """Finds what is wrong with one access event; the fixed parts are loaded once."""

    def __init__(self, register: Register):
        cat = settings.policy_catalog(register)
        self.codes = Codes.of(register)
        self.statutory = frozenset(b["code"] for b in cat["bases"] if b.get("statutory"))
        self.scoped = {c["code"]: c["scope"] for c in cat["categories"] if c.get("scope")}
        profile_code = settings.jurisdiction(register)
        mapping = catalog.load_profile(profile_code)["bases"]
        self.no_counterpart = frozenset(code for code, rule in mapping.items() if not rule.get("law"))
        self.provisions = catalog.load_profile(profile_code).get("provisions", {})
        self.sharing = cat.get("sharing", {})
        self.profile = profile_code
        self.zone = settings.local_zone(register)
        self.guardian_age = settings.guardian_age(register)[0]
        from pipolicy_cli import policy

        self.superseding = [(v["effective_at"], v["version"]) for v in policy.versions(register) if v["needs_reconsent"]]

    def consent_fault(self, latest: str | None, at: str, born: str | None, code: str) -> tuple[str, str] | None:
        if latest is None:
            return "no-consent", f"no {code} consent in force"
        action, given_at, written, signal = latest.split("|")
        if action == "withdraw":
            by = f" ({signal.upper()} signal)" if signal else ""
            return "after-withdrawal", f"{code} consent withdrawn at {given_at}{by}"
        for effective_at, version in self.superseding:
            if given_at < effective_at <= at:
                return "superseded", f"{code} consent predates policy version {version}, which needs fresh consent"
        if born and not written:
            moment = datetime.fromisoformat(given_at.replace("Z", "+00:00")).astimezone(self.zone).date()
            age = users.age({"born": born}, moment)
            if age is not None and age < self.guardian_age:
                return "minor-without-guardian", f"{code} consent given at age {age} without a guardian's written consent"
        return None

    def faults(self, row: tuple) -> list[tuple[str, str]]:
        (_, at, _, _, categories, purpose, _, basis, status, cancelled_at, born, purpose_latest,
         location_latest, tracking_latest, provision, scope_latest) = row
        found = []
        statutory = basis in self.statutory
        if not self.codes.known(purpose):
            found.append(("purpose-not-in-policy", f"purpose {purpose} is not in the policy (policy 1.3: ask first)"))
        elif basis == "consent":
            fault = self.consent_fault(purpose_latest, at, born, purpose)
            if fault:
                found.append(fault)
        if status == "cancelled" and cancelled_at and cancelled_at <= at and not statutory:
            found.append(("after-cancellation", f"used after the account was cancelled at {cancelled_at} (policy 1.1.a)"))
        if basis in self.no_counterpart:
            found.append(("basis-without-legal-counterpart", f"basis {basis} has no counterpart in the {self.profile} profile"))
        if not statutory:
            for category, latest in (("location", location_latest), ("tracking", tracking_latest)):
                scope = self.scoped.get(category)
                if scope and f",{category}," in f",{categories},":
                    fault = self.consent_fault(latest, at, born, scope)
                    if fault:
                        found.append((f"{category}-{fault[0]}", fault[1]))
        if provision:
            # Another legal basis makes consent, separate consent included, unnecessary (PIPL Art. 13, second paragraph).
            lawful = basis != "consent" and basis not in self.no_counterpart
            found += self.provision_faults(provision, scope_latest, at, born, lawful)
        return found

    def provision_faults(self, provision: str, latest: str | None, at: str, born: str | None,
                         lawful: bool) -> list[tuple[str, str]]:
        """What providing data lacks under the profile's `[provisions]` and the policy's `[sharing]`: a separate
        consent unless another legal basis applies, a processor's contract (entrusting is not sharing), a
        partner's confidentiality agreement, an authority's legal basis, an impact assessment."""
        kind, recipient_kind, agreement, covers = provision.split("|")
        if kind == "share" and recipient_kind == "processor":
            rule = self.provisions.get("entrust", {})
            found = [] if agreement else [("processor-without-contract",
                                           f"entrusted to a processor with no contract on file ({rule.get('contract_source')})")]
        else:
            rule, found = self.provisions.get(kind, {}), []
            if recipient_kind == "authority":
                if not lawful:
                    found.append(("authority-without-legal-basis",
                                  f"provided to an authority without a legal basis ({self.provisions['authority']['source']})"))
            elif not lawful and rule.get("scope"):
                fault = self.consent_fault(latest, at, born, rule["scope"])
                if fault:
                    found.append((f"{rule['scope']}-{fault[0]}", f"{fault[1]} ({rule['scope_source']})"))
            if recipient_kind == "partner" and not agreement and self.sharing.get("partner_agreement"):
                found.append(("partner-without-agreement",
                              f"shared with a partner with no confidentiality agreement on file (policy {self.sharing['clause']})"))
        needed = rule.get("assessment")
        if needed and needed not in covers.split(","):
            found.append(("no-pia", f"no impact assessment covering {needed} ({rule['assessment_source']})"))
        return found


def violations(register: Register, *, since: str | None = None, user_key: int | None = None) -> Iterator[dict[str, Any]]:
    """One row per event with something wrong, with every reason; streams."""
    judge = Judge(register)
    clauses, params = [], []
    if since:
        clauses.append("a.at >= ?")
        params.append(since)
    if user_key is not None:
        clauses.append("a.user_key = ?")
        params.append(user_key)
    sql = VIOLATIONS_SQL + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY a.at, a.id"
    for row in register.conn.execute(sql, params):
        found = judge.faults(row)
        if found:
            yield {
                "id": row[0], "at": row[1], "actor": row[2], "user_id": row[3], "categories": row[4].split(","),
                "purpose": row[5], "action": row[6], "basis": row[7],
                "reasons": [code for code, _ in found], "why": "; ".join(text for _, text in found),
            }

