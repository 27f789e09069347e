"""Validation of a person's fields, with maintained libraries doing the real work.

Each validator returns the normalised value or raises `FieldError(field,
reason)`. Reasons describe the fault, never the value, so they are safe in
error messages and logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# The three libraries load once, with this module: they are called per row.
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.cn import ric
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

from pipolicy_cli.fields import FieldError, text, unknown_fields  # noqa: F401  (validators raise and use these)

USER_FIELDS = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact")
IMPORT_FIELDS = (*USER_FIELDS, "status", "created_at", "cancelled_at")
STATUSES = ("active", "cancelled")
GENDERS = {"male": "male", "female": "female", "m": "male", "f": "female", "男": "male", "女": "female"}


def user_id(value: str) -> str:
    value = text("user_id", value)
    if not value:
        raise FieldError("user_id", "required")
    if value == "-" or value.startswith("--"):
        raise FieldError("user_id", "must not start with '-'")
    return value


def gender(value: str) -> str:
    try:
        return GENDERS[value.strip().lower()]
    except KeyError:
        raise FieldError("gender", "must be male or female") from None


def birth_date(value: str, today: date) -> str:
    try:
        born = date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError("birth_date", "not a date (YYYY-MM-DD)") from None
    if born > today:
        raise FieldError("birth_date", "in the future")
    if born.year < 1900:
        raise FieldError("birth_date", "before 1900")
    return born.isoformat()


def phone(value: str, region: str = "CN") -> str:
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise FieldError("phone", "not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise FieldError("phone", "not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value: str) -> str:
    value = text("email", value)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise FieldError("email", "not a valid e-mail address") from None


@dataclass(frozen=True)
class ResidentId:
    number: str
    birth_date: str
    gender: str


def id_number(value: str, today: date) -> ResidentId:
    try:
        number = ric.validate(value)  # checks the check digit, the birth date and the birth place
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except InvalidChecksum:
        raise FieldError("id_number", "check digit does not match") from None
    except InvalidComponent:
        raise FieldError("id_number", "birth date or birth place code is not valid") from None
    except (ValidationError, ValueError):
        raise FieldError("id_number", "not a valid resident ID number (18 characters, with birth date)") from None
    if born > today:
        raise FieldError("id_number", "birth date in the future")
    # The 17th character is odd for men and even for women (GB 11643).
    sex = "male" if int(number[16]) % 2 else "female"
    return ResidentId(number.upper(), born.isoformat(), sex)


def time_text(field: str, value: str, zone) -> str:
    from pipolicy_cli import dates
    from pipolicy_cli.errors import InvalidInput

    try:
        return dates.to_text(dates.parse_time(value, zone, field))
    except InvalidInput:
        raise FieldError(field, "not a date or time") from None


def user(raw: dict, today: date, zone) -> dict:
    """Validate one person's fields; returns normalised values (empty fields as None).

    Raises `UserErrors` naming every bad field.
    """
    errors = [FieldError(field, reason) for field, reason in unknown_fields(raw, IMPORT_FIELDS)]
    out: dict = {}
    for field, value in raw.items():
        if field not in IMPORT_FIELDS:
            continue
        if value is None:
            out[field] = None
            continue
        if not isinstance(value, str):
            errors.append(FieldError(field, "must be text"))
            continue
        if not value.strip():
            out[field] = None
            continue
        try:
            out[field] = _one(field, value, today, zone)
        except FieldError as exc:
            errors.append(exc)
    if not out.get("user_id") and not any(e.field == "user_id" for e in errors):
        errors.append(FieldError("user_id", "required"))
    resident = out.get("id_number")
    if isinstance(resident, ResidentId):
        out["id_number"] = resident.number
        if out.get("birth_date") and out["birth_date"] != resident.birth_date:
            errors.append(FieldError("birth_date", "contradicts the ID number"))
        if out.get("gender") and out["gender"] != resident.gender:
            errors.append(FieldError("gender", "contradicts the ID number"))
    if out.get("status") == "cancelled" and not out.get("cancelled_at"):
        errors.append(FieldError("cancelled_at", "required when status is cancelled"))
    if out.get("cancelled_at") and out.get("status") != "cancelled":
        errors.append(FieldError("status", "must be cancelled when cancelled_at is given"))
    if errors:
        raise UserErrors(errors)
    return out


def _one(field: str, value: str, today: date, zone):
    if field == "user_id":
        return user_id(value)
    if field == "gender":
        return gender(value)
    if field == "birth_date":
        return birth_date(value, today)
    if field == "phone":
        return phone(value)
    if field == "email":
        return email(value)
    if field == "id_number":
        return id_number(value, today)
    if field == "status":
        if value.strip() not in STATUSES:
            raise FieldError("status", "must be active or cancelled")
        return value.strip()
    if field in ("created_at", "cancelled_at"):
        return time_text(field, value, zone)
    return text(field, value) or None


class UserErrors(ValueError):
    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors
