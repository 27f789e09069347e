"""Free-text fields: the checks every command shares, with nothing heavy to import.

Reasons describe the fault, never the value, so they are safe in messages.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}\Z")
MAX_LENGTH = {"user_id": 64, "name": 100, "address": 300, "contact": 200, "email": 254, "summary": 500, "cause": 2000,
              "harm": 2000, "measures": 2000, "advice": 2000, "remedies": 2000, "late_reason": 2000}


class FieldError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def option_text(option: str, value: str | None, *, required: bool = False) -> str | None:
    """A free-text option or field of a command: stripped and checked, None when empty; a fault is invalid input
    naming `option` (its length limit is the field's: `--late-reason` -> `late_reason`)."""
    from pipolicy_cli.errors import InvalidInput

    try:
        checked = text(option.lstrip("-").replace("-", "_"), value) if value is not None else ""
    except FieldError as exc:
        raise InvalidInput(f"{option}: {exc.reason}") from None
    if required and not checked:
        raise InvalidInput(f"{option}: required")
    return checked or None


def text(field: str, value: str) -> str:
    value = value.strip()
    if len(value) > MAX_LENGTH.get(field, 200):
        raise FieldError(field, f"longer than {MAX_LENGTH.get(field, 200)} characters")
    if _CONTROL.search(value):
        raise FieldError(field, "contains control characters")
    return value


def unknown_fields(names, known) -> list[tuple[str, str]]:
    """(field, reason) for each name of a record not in `known`. Only a name that reads like a field name
    is shown: a CSV file without its header line makes the first person's values the column names."""
    names = list(names)
    unknown = [name for name in names if name not in known]
    if unknown and len(unknown) == len(names):
        return [("row", "no known field (is the header line missing?)")]
    return [(name if _FIELD_NAME.match(name) else "field", "unknown field") for name in unknown]
