"""`status`: what the register holds and what needs a person.

`ATTENTION_CHECKS` is the list later capabilities extend: each check returns
the lines a person must act on (overdue requests, a sweep that has not run,
scrubs pending, ...). `status --check` exits 5 when any returns something.
"""

from __future__ import annotations

from typing import Callable

from pipolicy_cli import settings
from pipolicy_cli.register import Register, audit

AttentionCheck = Callable[[Register], list[str]]


def _overdue_requests(register: Register) -> list[str]:
    from pipolicy_cli.requests import overdue_attention

    return overdue_attention(register)


def _scrubs_pending(register: Register) -> list[str]:
    from pipolicy_cli.erasure import pending

    count = pending(register)
    return [f"{count} erasures wait for a scrub: a reader blocked the WAL checkpoint; it is retried by every command"] if count else []


def _overdue_tasks(register: Register) -> list[str]:
    from pipolicy_cli.tasks import overdue_attention

    return overdue_attention(register)


def _breach_clocks(register: Register) -> list[str]:
    from pipolicy_cli.breach import overdue_attention

    return overdue_attention(register)


ATTENTION_CHECKS: list[AttentionCheck] = [_overdue_requests, _overdue_tasks, _breach_clocks, _scrubs_pending]


def _scrubs(register: Register) -> int:
    from pipolicy_cli.erasure import pending

    return pending(register)


def _in_backups(register: Register) -> int:
    from pipolicy_cli.erasure import backups_holding

    return backups_holding(register)


def status(register: Register, source: str, check: bool) -> dict:
    head = audit.head(register.conn)
    report = {
        "register": str(register.path),
        "register_source": source,
        "schema_version": register.schema_version(),
        "jurisdiction": settings.jurisdiction(register),
        "timezone": settings.timezone_name(register)[0],
        "counts": register.counts(),
        "audit": {"count": head.count, "hash": head.hash, "verified": None},
        "erasures_pending_in_backups": _in_backups(register),
        "scrub_pending": _scrubs(register),
        "attention": [],
    }
    if check:
        verification = audit.verify(register.conn)
        report["audit"]["verified"] = verification.ok
        if not verification.ok:
            report["attention"].append(
                f"audit chain broken at event {verification.first_bad}: {verification.reason}"
            )
        report["attention"] += [line for run in ATTENTION_CHECKS for line in run(register)]
        from pipolicy_cli.sweep import last_success_attention

        report["attention"] += last_success_attention(register, register.setting("sweep-max-age"))
    return report
