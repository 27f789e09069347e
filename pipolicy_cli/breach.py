"""Security incidents (policy 4.(c); PIPL Art. 57; GDPR Art. 33-34; Civ. Code 1798.82): the record, its grade,
the clocks the profile starts, who was affected and who was told.

Grades and clocks are the profile's data (`[breach]` in `data/profiles/*.toml`):
a clock starts at detection, at closing, or at the first notice sent; it
applies to every incident, to critical-infrastructure operators only, from a
grade up, or above a number of people. Reporting to an authority stops its clock
(`report_sent`); individuals' clocks stop when everyone attached was told.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterator

from pipolicy_cli import catalog, dates, fields, settings, users
from pipolicy_cli.errors import InvalidInput, NotFound
from pipolicy_cli.register import Register

TEXT_FIELDS = ("summary", "cause", "harm", "measures", "advice", "remedies", "contact")
CHANNELS = ("email", "sms", "letter", "push")
COLUMNS = ("id", "summary", "cause", "categories", "affected_count", "harm", "measures", "advice", "remedies", "contact",
           "cii", "grade", "detected_at", "occurred_at", "status", "closed_at", "created_at", "updated_at")
LIST_COLUMNS = ["id", "status", "grade", "detected_at", "summary", "people", "notified", "next_clock", "next_due", "overdue"]
# How each channel reaches a person: the register's own field, or an app the inventory knows of.
REACH = {
    "email": "u.email IS NOT NULL",
    "sms": "u.phone IS NOT NULL",
    "letter": "u.address IS NOT NULL",
    "push": "EXISTS (SELECT 1 FROM data_items d WHERE d.user_key = u.id AND d.category IN ('device', 'mobile-account'))",
}


def profile(register: Register) -> dict[str, Any]:
    return catalog.load_profile(settings.jurisdiction(register))["breach"]


def _grades(register: Register) -> list[str]:
    """Highest first, the default (lowest) last."""
    rules = profile(register)
    return [grade["grade"] for grade in rules.get("grades", [])] + [rules["default_grade"]]


def _values(register: Register, raw: dict[str, Any], creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if raw.get(name) is not None:
            values[name] = fields.option_text(f"--{name}", raw[name])
    if creating and not values.get("summary"):
        raise InvalidInput("--summary: say what happened")
    if raw.get("categories") is not None:
        known = catalog.codes("categories", settings.policy_catalog(register))
        chosen = sorted({code.strip() for code in raw["categories"].split(",") if code.strip()})
        unknown = [code for code in chosen if code not in known]
        if unknown or not chosen:
            raise InvalidInput(f"--categories: must be among {', '.join(known)}")
        values["categories"] = ",".join(chosen)
    if raw.get("affected_count") is not None:
        if raw["affected_count"] < 0:
            raise InvalidInput("--affected-count: a number of people, 0 or more")
        values["affected_count"] = raw["affected_count"]
    if raw.get("cii") is not None:
        values["cii"] = int(bool(raw["cii"]))
    if raw.get("grade") is not None:
        if raw["grade"] not in _grades(register):
            raise InvalidInput(f"--grade: must be one of {', '.join(_grades(register))}")
        values["grade"] = raw["grade"]
    for name, option in (("detected_at", "--detected"), ("occurred_at", "--occurred")):
        if raw.get(name) is not None:
            moment = settings.time_option(register, raw[name], option)
            if moment > dates.now_text():
                raise InvalidInput(f"{option}: in the future")
            values[name] = moment
    if creating and "detected_at" not in values:
        raise InvalidInput("--detected: when the incident was found (the clocks start there)")
    return values


def open_breach(register: Register, raw: dict[str, Any], actor: str) -> dict[str, Any]:
    values = _values(register, raw, creating=True)
    with register.transaction(actor, "breach open") as tx:
        key = tx.insert("breaches", {**values, "status": "open", "created_at": tx.at})
    return show(register, key)


def update(register: Register, key: int, raw: dict[str, Any], actor: str) -> dict[str, Any]:
    _row(register, key)
    values = _values(register, raw, creating=False)
    if not values:
        raise InvalidInput("nothing to update: give at least one option")
    with register.transaction(actor, "breach update") as tx:
        tx.update("breaches", key, {**values, "updated_at": tx.at})
    return show(register, key)


def close(register: Register, key: int, actor: str, at: str | None = None) -> dict[str, Any]:
    row = _row(register, key)
    if row["status"] == "closed":
        raise InvalidInput(f"breach {key}: already closed")
    moment = settings.time_option(register, at, "--at")
    with register.transaction(actor, "breach close") as tx:
        tx.update("breaches", key, {"status": "closed", "closed_at": moment or tx.at})
    return show(register, key)


def _row(register: Register, key: int) -> dict[str, Any]:
    values = register.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM breaches WHERE id = ?", (key,)).fetchone()
    if values is None:
        raise NotFound(f"breach: no breach {key}")
    row = dict(zip(COLUMNS, values))
    row["categories"] = row["categories"].split(",") if row["categories"] else []
    row["cii"] = bool(row["cii"])
    return row


def people(register: Register, row: dict[str, Any]) -> int:
    """How many people: the larger of the count given and the people attached."""
    attached = register.conn.execute("SELECT count(*) FROM breach_users WHERE breach_id = ?", (row["id"],)).fetchone()[0]
    return max(row["affected_count"] or 0, attached)


def grade(register: Register, row: dict[str, Any], count: int) -> dict[str, Any]:
    """The grade the number of people reaches, or the officer's, whichever is higher."""
    rules = profile(register)
    order = _grades(register)
    reached = next((g for g in rules.get("grades", []) if count >= g["people"]), None)
    computed = reached["grade"] if reached else rules["default_grade"]
    chosen = min((computed, row["grade"] or computed), key=order.index)
    if chosen != computed:
        source = "the officer's grading (--grade)"
    else:
        source = reached["source"] if reached else rules.get("grading_source", "the profile")
    return {"grade": chosen, "by_people": computed, "source": source}


def _at_least(register: Register, grade_now: str, threshold: str) -> bool:
    order = _grades(register)
    return order.index(grade_now) <= order.index(threshold)


def clocks(register: Register, row: dict[str, Any], count: int, graded: str) -> list[dict[str, Any]]:
    reports = {clock: (sent_at, late_reason) for clock, sent_at, late_reason in register.conn.execute(
        "SELECT clock, sent_at, late_reason FROM breach_reports WHERE breach_id = ?", (row["id"],))}
    first_notice, last_notice, notified = register.conn.execute(
        "SELECT min(sent_at), max(sent_at), count(DISTINCT user_key) FROM notifications WHERE breach_id = ?", (row["id"],)
    ).fetchone()
    attached = register.conn.execute("SELECT count(user_key) FROM breach_users WHERE breach_id = ?", (row["id"],)).fetchone()[0]
    now = dates.now()
    found = []
    for rule in profile(register).get("clocks", []):
        if rule.get("if_cii") and not row["cii"]:
            continue
        if rule.get("from_grade") and not _at_least(register, graded, rule["from_grade"]):
            continue
        if rule.get("more_than_people") is not None and count <= rule["more_than_people"]:
            continue
        start = {"detected": row["detected_at"], "closed": row["closed_at"], "first-notice": first_notice}[rule["start"]]
        due = None
        if start:
            due = _parse(start) + timedelta(hours=rule.get("hours", 0), days=rule.get("days", 0))
        done_at, late_reason = reports.get(rule["code"], (None, None))
        if done_at is None and rule["code"] == "individuals" and attached and notified == attached:
            done_at = last_notice
        clock = {"clock": rule["code"], "to": rule["to"], "starts": rule["start"], "due_at": dates.to_text(due) if due else None,
                 "done_at": done_at, "state": "", "time_left": None, "late_reason": late_reason, "source": rule["source"]}
        if done_at:
            late = due is not None and _parse(done_at) > due
            clock["state"] = "late" if late else "done"
            if late and rule.get("late_needs_reasons") and not late_reason:
                clock["state"] = "late, reasons missing"
        elif due is None:
            clock["state"] = "not started"
        else:
            left = due - now
            clock["state"] = "overdue" if left.total_seconds() < 0 else "running"
            clock["time_left"] = _span(left)
        found.append(clock)
    return found


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{sign}{days}d {hours:02d}h {rest // 60:02d}m" if days else f"{sign}{hours}h {rest // 60:02d}m"


def missing_content(register: Register, row: dict[str, Any]) -> list[str]:
    """What the profile requires in a notice (PIPL Art. 57; GDPR Art. 33(3); Civ. Code 1798.82(d)) that is not there."""
    filled = {**row, "contact": row["contact"] or register.setting("contact")}
    return [name for name in profile(register)["required_content"] if filled.get(name) in (None, "", [])]


def progress(register: Register, key: int) -> dict[str, Any]:
    attached = register.conn.execute("SELECT count(user_key) FROM breach_users WHERE breach_id = ?", (key,)).fetchone()[0]
    notified = register.conn.execute("SELECT count(DISTINCT user_key) FROM notifications WHERE breach_id = ?",
                                     (key,)).fetchone()[0]
    by_channel = dict(register.conn.execute(
        "SELECT channel, count(*) FROM notifications WHERE breach_id = ? GROUP BY channel", (key,)))
    return {"attached": attached, "notified": notified, "not_yet": attached - notified,
            "by_channel": {channel: by_channel.get(channel, 0) for channel in CHANNELS}}


def show(register: Register, key: int) -> dict[str, Any]:
    row = _row(register, key)
    count = people(register, row)
    graded = grade(register, row, count)
    rules = profile(register)
    return {
        **row, "people": count, "grade": graded["grade"], "grade_by_people": graded["by_people"],
        "grade_source": graded["source"], "regulator": rules["regulator"],
        "clocks": clocks(register, row, count, graded["grade"]),
        "missing_content": missing_content(register, row), "required_source": rules["required_source"],
        "individual_notices": {"may_be_skipped": rules["individuals_may_be_skipped"],
                               "source": rules["individuals_skip_source"]},
        "notices": progress(register, key),
    }


def query(register: Register, *, overdue: bool = False, status: str | None = None) -> Iterator[dict[str, Any]]:
    sql = "SELECT id FROM breaches" + (" WHERE status = ?" if status else "") + " ORDER BY id"
    for (key,) in register.conn.execute(sql, (status,) if status else ()).fetchall():
        full = show(register, key)
        running = [c for c in full["clocks"] if c["state"] in ("running", "overdue")]
        late = [c for c in running if c["state"] == "overdue"]
        if overdue and not late:
            continue
        upcoming = min(running, key=lambda c: c["due_at"]) if running else None
        yield {"id": key, "status": full["status"], "grade": full["grade"], "detected_at": full["detected_at"],
               "summary": full["summary"], "people": full["people"], "notified": full["notices"]["notified"],
               "next_clock": upcoming["clock"] if upcoming else None, "next_due": upcoming["due_at"] if upcoming else None,
               "overdue": bool(late)}


def attach(register: Register, key: int, actor: str, *, users_path=None, category: str | None = None,
           accessed_between: tuple[str, str] | None = None) -> dict[str, Any]:
    """Attach the affected: a list of users, everyone the inventory holds a category of, or everyone whose data of
    that category was used in a window (the access log)."""
    row = _row(register, key)
    if (users_path is None) == (category is None):
        raise InvalidInput("--users/--category: give one of them")
    if accessed_between and category is None:
        raise InvalidInput("--accessed-between: goes with --category")
    if category is not None and category not in catalog.codes("categories", settings.policy_catalog(register)):
        raise InvalidInput("--category: not a category of the catalog")
    if users_path is not None:
        users.stage_list(register, users_path, "affected")
        source = "SELECT u.id, ? FROM temp.affected w JOIN users u ON u.user_id = w.user_id"
        params: tuple = (",".join(row["categories"]) or None,)
    elif accessed_between:
        source = ("SELECT DISTINCT a.user_key, ? FROM access_log a WHERE a.user_key IS NOT NULL AND a.at >= ? AND a.at < ? "
                  "AND (',' || a.categories || ',') LIKE ?")
        params = (category, *accessed_between, f"%,{category},%")
    else:
        source = "SELECT DISTINCT d.user_key, ? FROM data_items d WHERE d.user_key IS NOT NULL AND d.category = ?"
        params = (category, category)
    with register.transaction(actor, "breach affected") as tx:
        before = tx.execute("SELECT count(*) FROM breach_users WHERE breach_id = ?", (key,)).fetchone()[0]
        tx.execute(f"INSERT OR IGNORE INTO breach_users (breach_id, added_at, user_key, categories) "
                   f"SELECT ?, ?, picked.* FROM ({source}) AS picked", (key, tx.at, *params))
        after = tx.execute("SELECT count(*) FROM breach_users WHERE breach_id = ?", (key,)).fetchone()[0]
        tx.record("attach", "breach_users", key, detail={"added": after - before})
    return {"breach": key, "added": after - before, "attached": after, "reachable": reachability(register, key)}


def reachability(register: Register, key: int) -> dict[str, int]:
    """How many attached people each channel can reach, and how many none can."""
    columns = ", ".join(f"sum({condition})" for condition in REACH.values())
    none = " AND ".join(f"NOT ({condition})" for condition in REACH.values())
    values = register.conn.execute(
        f"SELECT {columns}, sum({none}) FROM breach_users b JOIN users u ON u.id = b.user_key WHERE b.breach_id = ?",
        (key,),
    ).fetchone()
    return {**dict(zip(REACH, (v or 0 for v in values[:-1]))), "none": values[-1] or 0}


def mark_sent(register: Register, key: int, actor: str, *, users_path, channel: str, at: str | None = None) -> dict[str, Any]:
    """Record that these attached people were told, by this channel, at this time."""
    _row(register, key)
    if channel not in CHANNELS:
        raise InvalidInput(f"--channel: must be one of {', '.join(CHANNELS)}")
    moment = settings.time_option(register, at, "--at")
    users.stage_list(register, users_path, "told")
    stray = [f"row {number}: user_id: not attached to breach {key}" for (number,) in register.conn.execute(
        """SELECT w.row_no FROM temp.told w JOIN users u ON u.user_id = w.user_id
           WHERE NOT EXISTS (SELECT 1 FROM breach_users b WHERE b.breach_id = ? AND b.user_key = u.id)
           ORDER BY w.row_no LIMIT 1000""", (key,))]
    if stray:
        raise InvalidInput(stray[0] if len(stray) == 1 else f"{len(stray)} rows are invalid; nothing was changed", problems=stray)
    with register.transaction(actor, "breach mark-sent") as tx:
        added = tx.execute(
            """INSERT OR IGNORE INTO notifications (breach_id, user_key, channel, sent_at, recorded_at)
               SELECT ?, u.id, ?, ?, ? FROM temp.told w JOIN users u ON u.user_id = w.user_id""",
            (key, channel, moment or tx.at, tx.at),
        ).rowcount
        tx.record("notify", "notifications", key, detail={"channel": channel, "added": added})
    return {"breach": key, "channel": channel, "recorded": added, "notices": progress(register, key)}


def report_sent(register: Register, key: int, clock: str, actor: str, *, at: str | None = None,
                late_reason: str | None = None) -> dict[str, Any]:
    """An authority (or the public, or the Attorney General) was told: the clock stops."""
    _row(register, key)
    known = [rule["code"] for rule in profile(register).get("clocks", [])]
    if clock not in known:
        raise InvalidInput(f"--clock: must be one of {', '.join(known) or '(the profile has no clocks)'}")
    moment = settings.time_option(register, at, "--at")
    reason = fields.option_text("--late-reason", late_reason)
    with register.transaction(actor, "breach mark-sent") as tx:
        tx.execute("DELETE FROM breach_reports WHERE breach_id = ? AND clock = ?", (key, clock))
        tx.insert("breach_reports", {"breach_id": key, "clock": clock, "sent_at": moment or tx.at, "late_reason": reason,
                                     "recorded_at": tx.at})
    return show(register, key)


def for_person(register: Register, user_key: int) -> Iterator[dict[str, Any]]:
    """The incidents that affected a person and the notices they were sent (export)."""
    cursor = register.conn.execute(
        """SELECT b.id, b.summary, b.detected_at, bu.categories, bu.added_at,
                  (SELECT group_concat(n.channel || ' ' || n.sent_at, '; ') FROM notifications n
                   WHERE n.breach_id = b.id AND n.user_key = bu.user_key)
           FROM breach_users bu JOIN breaches b ON b.id = bu.breach_id WHERE bu.user_key = ? ORDER BY b.id""",
        (user_key,),
    )
    for key, summary, detected_at, categories, added_at, notices in cursor:
        yield {"breach": key, "summary": summary, "detected_at": detected_at,
               "categories": categories.split(",") if categories else [], "attached_at": added_at,
               "notices": [dict(zip(("channel", "sent_at"), item.split(" ", 1))) for item in notices.split("; ")] if notices else []}


def overdue_attention(register: Register) -> list[str]:
    late = [row["id"] for row in query(register, overdue=True)]
    return [f"breach {', '.join(map(str, late))}: a reporting clock has run out"] if late else []
