"""When a request is due, by the profile's rule and calendar.

PIPL sets no deadline ("timely"); the profile uses 15 working days on China's
calendar: the day of receipt is not counted, make-up working days count, and
the due date is the local date of the 15th working day. GDPR: one month (+2
once). CCPA: 45 days (+45 once), acknowledged within 10 business days.
China publishes its holiday arrangement a year at a time: for a year the
calendar library has no official data for (no make-up working days listed),
the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from pipolicy_cli import catalog


@dataclass(frozen=True)
class Due:
    due_on: date
    acknowledge_by: date | None
    rule: str
    note: str | None


@lru_cache(maxsize=8)
def _calendar(code: str, first_year: int):
    import holidays

    years = range(first_year, first_year + 3)
    country, _, subdivision = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None, years=years)


def _unofficial_years(code: str, start: date, end: date) -> list[int]:
    if code != "CN":
        return []
    calendar = _calendar(code, start.year)
    listed = {day.year for day in calendar.weekend_workdays}
    return [year for year in range(start.year, end.year + 1) if year not in listed]


def working_day(code: str, start: date, n: int) -> date:
    """The n-th working day after `start` (which is not counted)."""
    return _calendar(code, start.year).get_nth_working_day(start, n)


def due(profile_code: str, received_on: date) -> Due:
    rules = catalog.load_profile(profile_code)
    rule, calendar = rules["requests"], rules.get("calendar", "")
    acknowledge_by = None
    if "working_days" in rule:
        due_on = working_day(calendar, received_on, int(rule["working_days"]))
    elif "months" in rule:
        from dateutil.relativedelta import relativedelta

        due_on = received_on + relativedelta(months=int(rule["months"]))
    else:
        due_on = received_on + timedelta(days=int(rule["days"]))
    if "acknowledge_business_days" in rule:
        acknowledge_by = working_day(calendar, received_on, int(rule["acknowledge_business_days"]))
    note = None
    missing = _unofficial_years(calendar, received_on, due_on) if calendar else []
    if missing:
        years = ", ".join(str(year) for year in missing)
        note = (f"the calendar library has no official holiday arrangement for {years}: "
                "the due date counts weekends and statutory holidays only; check it when the arrangement is published")
    return Due(due_on, acknowledge_by, f"{rule['deadline']} ({rule['source']})", note)


def extended(profile_code: str, due_on: date) -> date | None:
    """The due date after the one extension the profile allows, or None if it allows none."""
    rule = catalog.load_profile(profile_code)["requests"]
    if "extension_months" in rule:
        from dateutil.relativedelta import relativedelta

        return due_on + relativedelta(months=int(rule["extension_months"]))
    if "extension_days" in rule:
        return due_on + timedelta(days=int(rule["extension_days"]))
    return None
