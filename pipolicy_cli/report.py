"""`report`: one page for management or an auditor, built from what every other module already knows.

Each section is plain data (JSON keeps them as they are); Markdown renders
them as tables through tabulate. `attention` lists what needs a person, and
`--fail-on-attention` turns it into exit 5.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipolicy_cli import catalog, dates, settings
from pipolicy_cli.register import Register, audit


def consent_coverage(register: Register) -> list[dict[str, Any]]:
    """Per purpose and scope: how many active people have a consent in force now."""
    active = register.conn.execute("SELECT count(*) FROM users WHERE status = 'active'").fetchone()[0]
    granted = dict(register.conn.execute(
        """WITH latest AS (
               SELECT c.user_key, c.code, c.action,
                      row_number() OVER (PARTITION BY c.user_key, c.code ORDER BY c.at DESC, c.id DESC) AS n
               FROM consents c)
           SELECT l.code, count(*) FROM latest l JOIN users u ON u.id = l.user_key
           WHERE l.n = 1 AND l.action = 'grant' AND u.status = 'active' GROUP BY l.code"""))
    cat = settings.policy_catalog(register)
    codes = [p["code"] for p in cat["purposes"] if p.get("default_basis", "consent") == "consent"] + [s["code"] for s in cat["scopes"]]
    return [{"code": code, "active_people": active, "consenting": granted.get(code, 0),
             "share": round(granted.get(code, 0) / active, 4) if active else None} for code in codes]


def build(register: Register) -> dict[str, Any]:
    from pipolicy_cli import access, breach, consents, erasure, policy, provisions, requests, status, sweep, tasks

    profile_code = settings.jurisdiction(register)
    profile = catalog.load_profile(profile_code)
    stored = register.settings()
    request_rows = list(requests.query(register))
    task_rows = list(tasks.query(register))
    violations = Counter(reason for row in access.violations(register) for reason in row["reasons"])
    minors = list(consents.minors(register))
    last = next(sweep.history(register, limit=1), None)
    last_done = register.conn.execute("SELECT max(finished_at) FROM sweeps WHERE state = 'done'").fetchone()[0]
    incidents = list(breach.query(register))
    verification = audit.verify(register.conn)
    head = audit.head(register.conn)
    thresholds = provisions.thresholds(register)
    report = {
        "generated_at": dates.now_text(),
        "organisation": stored.get("organisation"),
        "jurisdiction": profile_code,
        "law": profile["law"],
        "counts": register.counts(),
        "consent_coverage": consent_coverage(register),
        "requests": {"open": sum(r["status"] in requests.OPEN for r in request_rows),
                     "overdue": sum(r["overdue"] for r in request_rows),
                     "by_status": dict(Counter(r["status"] for r in request_rows))},
        "tasks": {"open": sum(t["state"] in tasks.BLOCKING for t in task_rows), "overdue": sum(t["overdue"] for t in task_rows),
                  "by_state": dict(Counter(t["state"] for t in task_rows))},
        "violations": dict(sorted(violations.items())),
        "minors": {"without_guardian_consent": sum(m["violation"] for m in minors),
                   "age_unknown": sum(m["finding"] == "age-unknown" for m in minors)},
        "pending_reconsent": sum(1 for _ in policy.reconsent_list(register)),
        "erasures": {"total": register.conn.execute("SELECT count(*) FROM erasures").fetchone()[0],
                     "pending_in_backups": erasure.backups_holding(register), "scrub_pending": erasure.pending(register)},
        "sweeps": {"total": register.conn.execute("SELECT count(*) FROM sweeps").fetchone()[0], "last_done_at": last_done,
                   "last": {key: last[key] for key in ("id", "state", "as_of", "counts", "attention")} if last else None},
        "incidents": [{key: row[key] for key in ("id", "status", "grade", "people", "notified", "next_clock", "next_due", "overdue")}
                      for row in incidents],
        "transfers": thresholds,
        "pias": [{key: row[key] for key in ("id", "subject", "covers", "done_on")} for row in provisions.pias(register)],
        "audit": {"ok": verification.ok, "count": head.count, "hash": head.hash,
                  **({} if verification.ok else {"first_bad": verification.first_bad, "reason": verification.reason})},
        "policy_shortfalls": [{"clause": s["clause"], "issue": s["issue"], "source": s["source"]}
                              for s in profile.get("shortfalls", [])],
    }
    attention = [line for check in status.ATTENTION_CHECKS for line in check(register)]
    attention += sweep.last_success_attention(register, stored.get("sweep-max-age"))
    if violations:
        attention.append(f"{sum(violations.values())} findings in the access log (access violations)")
    if report["minors"]["without_guardian_consent"]:
        attention.append(f"{report['minors']['without_guardian_consent']} minors have no guardian's written consent")
    if not thresholds["sufficient"]:
        attention.append(f"transfers abroad in {thresholds['year']} need {thresholds['required']}; in use: "
                         f"{', '.join(thresholds['insufficient_mechanisms'])}")
    if not verification.ok:
        attention.append(f"audit chain broken at event {verification.first_bad}")
    report["attention"] = attention
    return report


def markdown(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
        if not rows:
            return "_none_\n"
        columns = columns or list(rows[0])
        body = [[_cell(row.get(column)) for column in columns] for row in rows]
        return tabulate(body, headers=columns, tablefmt="github", disable_numparse=True) + "\n"

    def pairs(mapping: dict[str, Any]) -> str:
        return table([{"item": key, "value": value} for key, value in mapping.items()])

    parts = [f"# Compliance report: {report['organisation'] or 'the register'}\n",
             f"Generated {report['generated_at']} under {report['law']} (profile `{report['jurisdiction']}`).\n",
             "## Needs attention\n", "".join(f"- {line}\n" for line in report["attention"]) or "Nothing.\n",
             "## Register\n", pairs(report["counts"]),
             "## Consent coverage (active people)\n", table(report["consent_coverage"]),
             "## Requests and tasks\n", pairs({"requests open": report["requests"]["open"],
                                               "requests overdue": report["requests"]["overdue"],
                                               "tasks open": report["tasks"]["open"], "tasks overdue": report["tasks"]["overdue"]}),
             "## Access log findings, by kind\n", pairs(report["violations"]) if report["violations"] else "None.\n",
             "## Minors and re-consent\n", pairs({**report["minors"], "pending_reconsent": report["pending_reconsent"]}),
             "## Erasures\n", pairs(report["erasures"]),
             "## Retention sweeps\n", pairs({"sweeps": report["sweeps"]["total"], "last finished": report["sweeps"]["last_done_at"],
                                             **({f"last: {k}": v for k, v in report["sweeps"]["last"]["counts"].items()}
                                                if report["sweeps"]["last"] else {})}),
             "## Security incidents\n", table(report["incidents"]),
             "## Transfers abroad\n", pairs({k: v for k, v in report["transfers"].items() if k != "insufficient_mechanisms"}),
             "## Impact assessments\n", table(report["pias"]),
             "## Audit chain\n", pairs(report["audit"]),
             "## Where the policy falls short of the law (the law's profile applies)\n", table(report["policy_shortfalls"])]
    return "\n".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value).replace("|", "\\|").replace("\n", " ")
