"""Masks for personal values in list and show output.

name 张*, phone 138****5678, ID 110101********1234, e-mail a***@example.com.
A mask never shows more than these patterns, whatever the input's length, and
never the whole value: a one-character name or e-mail local part is all stars,
and a phone number keeps at least four digits hidden (a short number shows its
last four digits only).
"""

from __future__ import annotations


def name(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) == 1:
        return "*"
    return value[0] + "*" * min(len(value) - 1, 3)


def phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = value.lstrip("+")
    if len(digits) < 8:
        return "*" * len(digits)
    if len(digits) < 11:  # 138****5678 would leave fewer than four digits hidden
        return "****" + digits[-4:]
    national = digits[-11:]
    return national[:3] + "****" + national[-4:]


def id_number(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) < 12:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def email(value: str | None) -> str | None:
    if not value:
        return value
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return "***"
    return (local[0] if len(local) > 1 else "") + "***@" + domain


def text(value: str | None) -> str | None:
    """Free text such as an address: only its first two characters."""
    if not value:
        return value
    return (value[:2] if len(value) > 2 else "") + "***"


MASKS = {
    "name": name,
    "phone": phone,
    "id_number": id_number,
    "email": email,
    "address": text,
    "contact": text,
    "birth_date": lambda value: value[:4] + "-**-**" if value else value,
}


# Names of other people that rows about a person carry: the guardian who consented for a minor, the relative who
# asks for a deceased person. Shown masked wherever those rows are, unless `--reveal` (audited).
OTHERS = {"guardian_name": name, "requester": name}


def mask_row(row: dict, fields=MASKS) -> dict:
    return {key: fields[key](value) if key in fields else value for key, value in row.items()}
