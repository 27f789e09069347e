"""Free-text fields: the checks every command shares, with nothing heavy to import.

Reasons describe the fault, never the value, so they are safe in messages.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
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
