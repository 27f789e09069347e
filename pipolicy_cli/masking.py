"""Masks for personal values in list and show output.

name 张*, phone 138****5678, ID 110101********1234, e-mail a***@example.com.
A mask never shows more than these patterns, whatever the input's length.
"""

from __future__ import annotations


def name(value: str | None) -> str | None:
    if not value:
        return value
    return value[0] + "*" * min(max(len(value) - 1, 1), 3)


def phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = value.lstrip("+")
    if len(digits) < 8:
        return "*" * len(digits)
    national = digits[-11:] if len(digits) >= 11 else digits
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
    return local[0] + "***@" + domain


def text(value: str | None) -> str | None:
    """Free text such as an address: only its first two characters."""
    if not value:
        return value
    return value[:2] + "***"


MASKS = {
    "name": name,
    "phone": phone,
    "id_number": id_number,
    "email": email,
    "address": text,
    "contact": text,
    "birth_date": lambda value: value[:4] + "-**-**" if value else value,
}


def mask_row(row: dict, fields=MASKS) -> dict:
    return {key: fields[key](value) if key in fields else value for key, value in row.items()}
