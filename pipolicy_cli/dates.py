"""Times and durations.

Stored times are UTC ISO 8601 with a `Z`. Input without a zone is read in the
register's zone. ISO 8601 goes through the standard library first (about 30x
faster than dateutil); dateutil only for what it cannot read.

Times given are taken from the years 1900 to 7999 and durations up to 1000
years, so adding or subtracting one never leaves what `datetime` can hold.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone, tzinfo
from functools import lru_cache

from pipolicy_cli.errors import InvalidInput

UTC = timezone.utc
FIRST_YEAR, LAST_YEAR = 1900, 7999
MAX_DURATION_DAYS = 1000 * 366


def now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """UTC ISO 8601 with `Z`, whole seconds unless sub-second precision matters."""
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    # isoformat, unlike strftime, always writes four digits of year: stored times compare as text.
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds") + "Z"


def now_text() -> str:
    return to_text(now())


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"timezone: unknown zone {name!r}") from None


def parse_time(text: str, local_zone: tzinfo, field: str = "time") -> datetime:
    """Read a time; a date alone is its local midnight; no zone means `local_zone`."""
    value = text.strip()
    if not value:
        raise InvalidInput(f"{field}: empty")
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        from dateutil import parser as date_parser

        try:
            moment = date_parser.parse(value)
        except (ValueError, OverflowError):
            raise InvalidInput(f"{field}: not a date or time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone)
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(f"{field}: out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return moment.astimezone(UTC)


def parse_date(text: str, field: str = "date") -> date:
    value = text.strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: not an ISO date (YYYY-MM-DD)") from None


_SHORT = re.compile(r"^\s*(\d+)\s*(min|mins|minute|minutes|d|w|m|y|h|day|days|week|weeks|month|months|year|years|hour|hours)\s*$", re.I)
_UNITS = {
    "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
    "m": "months", "month": "months", "months": "months",
    "y": "years", "year": "years", "years": "years",
}
_ISO = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?)?$")


def parse_duration(text: str, field: str = "duration"):
    """`90d`, `6 months`, `P3Y`, `P1Y6M` -> a dateutil relativedelta, at most 1000 years long."""
    from dateutil.relativedelta import relativedelta

    value = text.strip()
    match = _SHORT.match(value)
    if match:
        parts = {_UNITS[match.group(2).lower()]: match.group(1)}
    else:
        match = _ISO.match(value.upper())
        if not match or not any(match.groups()):
            raise InvalidInput(f"{field}: not a duration (examples: 90d, 6 months, P3Y)")
        parts = {unit: digits for unit, digits in zip(("years", "months", "weeks", "days", "hours"), match.groups()) if digits}
    # A dozen digits is already far past the limit: longer numbers are refused before int() reads them.
    if any(len(digits) > 12 for digits in parts.values()):
        raise InvalidInput(f"{field}: longer than 1000 years")
    span = relativedelta(**{unit: int(digits) for unit, digits in parts.items()})
    if approx_days(span) > MAX_DURATION_DAYS:
        raise InvalidInput(f"{field}: longer than 1000 years")
    return span


def approx_days(span) -> float:
    """A duration's length for comparing against a floor or a limit (a month counts 30.44 days)."""
    return span.years * 365.25 + span.months * 30.44 + span.days + span.hours / 24 + span.minutes / 1440  # weeks are in days
