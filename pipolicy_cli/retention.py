"""Retention rules (policy 1.2, 4.(b); PIPL Art. 19, 47): how long each kind of record is kept, and then what.

A `category` rule applies to inventory items of that category by collection
time; a `table` rule to that table's rows by their own time. The action is
`delete`, `deidentify` (the person's link and direct identifiers go, the record
stays: still personal information under PIPL Art. 73, so it stays under the
rules) or `restrict` (kept, for storage only, where a legal duty remains).
A rule shorter than a floor of the jurisdiction profile is refused, naming the
floor's source; the sweep (`pipolicy_cli.sweep`) skips and reports any rule a
later change of profile put under a floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipolicy_cli import catalog, dates, fields, settings
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register

ACTIONS = ("delete", "deidentify", "restrict")


@dataclass(frozen=True)
class Target:
    """How a rule finds and treats the rows of one table."""

    table: str
    time: str  # the column whose age counts
    scope: str  # the rows a rule may touch at all
    deidentify: str  # SET clause; `:at` is the sweep's time
    identified: str  # rows not yet de-identified
    restrict: bool  # has restricted_at

    def pending(self, action: str) -> str:
        """Rows the action has not reached yet: a batch never counts a row twice."""
        if action == "deidentify":
            return self.identified
        if action == "restrict":
            return "restricted_at IS NULL"
        return "1"


TABLES = {
    "access_log": Target("access_log", "at", "1", "user_key = NULL", "user_key IS NOT NULL", True),
    "requests": Target("requests", "closed_at", "status IN ('completed', 'rejected')",
                       "user_key = NULL, requester = NULL, relation = NULL",
                       "(user_key IS NOT NULL OR requester IS NOT NULL OR relation IS NOT NULL)", True),
    "tasks": Target("tasks", "closed_at", "state IN ('done', 'cancelled')", "payload = NULL", "payload IS NOT NULL", False),
    "breach_users": Target("breach_users", "added_at", "1", "user_key = NULL", "user_key IS NOT NULL", True),
    "notifications": Target("notifications", "sent_at", "1", "user_key = NULL", "user_key IS NOT NULL", True),
    **{table: Target(table, "at", "1", "user_key = NULL", "user_key IS NOT NULL", True)
       for table in ("shares", "transfers", "disclosures")},
    "pias": Target("pias", "done_on", "1", "file_path = NULL", "file_path IS NOT NULL", False),
}
ITEMS = Target("data_items", "collected_at", "category = :category", "user_key = NULL, value = NULL, deidentified_at = :at",
               "(user_key IS NOT NULL OR value IS NOT NULL)", True)
COLUMNS = ("id", "category", "table", "keep", "action", "basis", "floor", "floor_source")


def target_of(rule: dict[str, Any]) -> Target:
    return ITEMS if rule["target_kind"] == "category" else TABLES[rule["target"]]


def floor_for(register: Register, kind: str, target: str) -> dict[str, str] | None:
    """The profile's floor for this table or category, if it has one."""
    for floor in catalog.load_profile(settings.jurisdiction(register)).get("retention_floors", []):
        if floor.get(kind) == target:
            return floor
    return None


def under_floor(register: Register, rule: dict[str, Any]) -> dict[str, str] | None:
    floor = floor_for(register, rule["target_kind"], rule["target"])
    if floor and dates.approx_days(dates.parse_duration(rule["keep"])) < dates.approx_days(dates.parse_duration(floor["keep"])):
        return floor
    return None


def _checked(register: Register, category: str | None, table: str | None, keep: str, action: str,
             basis: str | None) -> dict[str, Any]:
    if (category is None) == (table is None):
        raise InvalidInput("--category/--table: give exactly one")
    if category is not None:
        known = catalog.codes("categories", settings.policy_catalog(register))
        if category not in known:
            raise InvalidInput(f"--category: must be one of {', '.join(known)}")
        kind, target = "category", category
    else:
        if table not in TABLES:
            raise InvalidInput(f"--table: must be one of {', '.join(TABLES)}")
        kind, target = "table", table
    if action not in ACTIONS:
        raise InvalidInput(f"--action: must be one of {', '.join(ACTIONS)}")
    if action == "restrict" and not target_of({"target_kind": kind, "target": target}).restrict:
        raise InvalidInput(f"--action: {target} rows cannot be restricted; delete or deidentify them")
    span = dates.parse_duration(keep, "--keep")
    if dates.approx_days(span) <= 0:
        raise InvalidInput("--keep: must be longer than nothing")
    basis = fields.option_text("--basis", basis)
    rule = {"target_kind": kind, "target": target, "keep": keep.strip(), "action": action, "basis": basis}
    floor = under_floor(register, rule)
    if floor:
        raise InvalidInput(f"--keep: {keep.strip()} is shorter than the {settings.jurisdiction(register)} profile's floor "
                           f"for {target} ({floor['keep']}: {floor['source']})")
    return rule


def set_rule(register: Register, actor: str, *, category: str | None = None, table: str | None = None, keep: str,
             action: str, basis: str | None = None) -> dict[str, Any]:
    """Add a rule, or replace the one for the same category or table."""
    rule = _checked(register, category, table, keep, action, basis)
    with register.transaction(actor, "retention rule set") as tx:
        found = tx.execute("SELECT id FROM retention_rules WHERE target_kind = ? AND target = ?",
                           (rule["target_kind"], rule["target"])).fetchone()
        if found:
            key = found[0]
            tx.update("retention_rules", key, {"keep": rule["keep"], "action": rule["action"], "basis": rule["basis"],
                                               "updated_at": tx.at})
        else:
            key = tx.insert("retention_rules", {**rule, "created_at": tx.at})
    return show(register, key)


def load_defaults(register: Register, actor: str) -> int:
    """The catalog's default rules, into a register that has none yet (`init`)."""
    if register.conn.execute("SELECT 1 FROM retention_rules LIMIT 1").fetchone():
        return 0
    defaults = settings.policy_catalog(register).get("retention_defaults", [])
    rules = [_checked(register, entry.get("category"), entry.get("table"), entry["keep"], entry["action"],
                      f"{entry['basis']} (policy {entry['clause']})") for entry in defaults]
    with register.transaction(actor, "init") as tx:
        for rule in rules:
            tx.insert("retention_rules", {**rule, "created_at": tx.at})
    return len(rules)


def rules(register: Register) -> list[dict[str, Any]]:
    cursor = register.conn.execute(
        "SELECT id, target_kind, target, keep, action, basis FROM retention_rules ORDER BY target_kind, target")
    return [_view(register, dict(zip(("id", "target_kind", "target", "keep", "action", "basis"), values)))
            for values in cursor]


def _view(register: Register, rule: dict[str, Any]) -> dict[str, Any]:
    floor = floor_for(register, rule["target_kind"], rule["target"])
    return {"id": rule["id"], "category": rule["target"] if rule["target_kind"] == "category" else None,
            "table": rule["target"] if rule["target_kind"] == "table" else None, "keep": rule["keep"],
            "action": rule["action"], "basis": rule["basis"], "floor": floor["keep"] if floor else None,
            "floor_source": floor["source"] if floor else None}


def show(register: Register, key: int) -> dict[str, Any]:
    for rule in rules(register):
        if rule["id"] == key:
            return rule
    raise NotFound(f"rule: no retention rule {key}")


def stored(register: Register) -> list[dict[str, Any]]:
    """The rules as the sweep reads them."""
    cursor = register.conn.execute("SELECT id, target_kind, target, keep, action FROM retention_rules ORDER BY id")
    return [dict(zip(("id", "target_kind", "target", "keep", "action"), values)) for values in cursor]


def remove_rule(register: Register, actor: str, *, key: int | None = None, category: str | None = None,
                table: str | None = None) -> dict[str, Any]:
    if sum(value is not None for value in (key, category, table)) != 1:
        raise InvalidInput("rule: name it by ID, --category or --table (one of them)")
    if key is not None:
        row = register.conn.execute("SELECT id FROM retention_rules WHERE id = ?", (key,)).fetchone()
    else:
        kind, target = ("category", category) if category is not None else ("table", table)
        row = register.conn.execute("SELECT id FROM retention_rules WHERE target_kind = ? AND target = ?",
                                    (kind, target)).fetchone()
    if row is None:
        raise NotFound("rule: no such retention rule")
    removed = show(register, row[0])
    with register.transaction(actor, "retention rule remove") as tx:
        tx.delete("retention_rules", row[0])
    return removed
