"""`config show|set`: the register's settings and the user config file.

Settings about the organisation and the register live in the register's
`config` table (changes are audited like any other). Only `db`, the register's
own location, lives in the user config file, since it is needed to find the
register at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipolicy_cli import catalog, dates, keyfile, paths
from pipolicy_cli.errors import InvalidInput
from pipolicy_cli.register import Register

MAX_TEXT = 500


def _text(key: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        value = value.strip()
        if not value:
            raise InvalidInput(f"{key}: empty")
        if len(value) > MAX_TEXT:
            raise InvalidInput(f"{key}: longer than {MAX_TEXT} characters")
        if any(ord(ch) < 32 for ch in value):
            raise InvalidInput(f"{key}: control characters are not allowed")
        return value

    return validate


def _path(key: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        if not value.strip() or "\0" in value:
            raise InvalidInput(f"{key}: not a path")
        return str(Path(value).expanduser().absolute())

    return validate


def _timezone(value: str) -> str:
    dates.zone(value.strip())
    return value.strip()


def _jurisdiction(value: str) -> str:
    catalog.load_profile(value.strip())
    return value.strip()


def _guardian_age(value: str) -> str:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 2 and 1 <= int(value) <= 21):
        raise InvalidInput("guardian-age: a whole number of years from 1 to 21")
    return str(int(value))


def _catalog_file(value: str) -> str:
    path = _path("catalog-file")(value)
    catalog.load_catalog(path)  # refuse a file that does not load
    return path


def _duration(key: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        dates.parse_duration(value, key)
        return value.strip()

    return validate


def _address(value: str) -> str:
    from pipolicy_cli import validate

    try:
        return validate.email(value)
    except validate.FieldError as exc:
        raise InvalidInput(f"notice-from: {exc.reason}") from None


def _key_file(value: str) -> str:
    path = Path(_path("key-file")(value))
    keyfile.check(path)
    return str(path)


@dataclass(frozen=True)
class Setting:
    key: str
    description: str
    validate: Callable[[str], str]
    in_file: bool = False


SETTINGS: dict[str, Setting] = {
    setting.key: setting
    for setting in (
        Setting("organisation", "the organisation that handles the data, named in notices and exports", _text("organisation")),
        Setting("contact", "how people reach the organisation about their data (policy section 9)", _text("contact")),
        Setting("dpo", "the personal information protection officer and how to reach them (PIPL Art. 52)", _text("dpo")),
        Setting("timezone", "the zone for times given without one (PIPOLICY_TZ overrides)", _timezone),
        Setting("jurisdiction", "the law profile whose rules win over the policy: " + "|".join(catalog.profile_codes()), _jurisdiction),
        Setting("guardian-age", "below this age a guardian's written consent is needed (policy: 18; PIPL minimum: 14)", _guardian_age),
        Setting("catalog-file", "the register's own policy catalog (TOML shaped like data/catalog.toml)", _catalog_file),
        Setting("backup-dir", "where `backup create` writes backups", _path("backup-dir")),
        Setting("key-file", "the 0600 file with the HMAC key for tombstones, kept outside the register", _key_file),
        Setting("sweep-max-age", "`status --check` exits 5 when the last finished retention sweep is older (e.g. 36h)",
                _duration("sweep-max-age")),
        Setting("notice-from", "the sender address of breach notices drafted as e-mail", _address),
        Setting("db", "the register used when neither --db nor PIPOLICY_DB is given (user config file)", _path("db"), in_file=True),
    )
}


def _setting(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError:
        raise InvalidInput(f"key: not a setting (known: {', '.join(SETTINGS)})") from None


def jurisdiction(register: Register) -> str:
    return register.setting("jurisdiction") or "pipl"


def timezone_name(register: Register | None) -> tuple[str, str]:
    """The register's zone and where it came from."""
    env = os.environ.get("PIPOLICY_TZ")
    if env:
        return env, "PIPOLICY_TZ"
    if register is not None:
        stored = register.setting("timezone")
        if stored:
            return stored, "register"
        code = jurisdiction(register)
        return catalog.load_profile(code)["timezone"], f"profile {code}"
    return catalog.load_profile("pipl")["timezone"], "profile pipl"


def local_zone(register: Register | None):
    return dates.zone(timezone_name(register)[0])


def policy_catalog(register: Register) -> dict:
    """The catalog this register follows: its own file, or the one shipped in data/."""
    return catalog.load_catalog(register.setting("catalog-file"))


def guardian_age(register: Register) -> tuple[int, str]:
    """The age below which a person counts as a minor, and where that comes from."""
    stored = register.setting("guardian-age")
    if stored:
        return int(stored), "register"
    minors = catalog.load_profile(jurisdiction(register))["minors"]
    return int(minors["policy_guardian_age"]), minors["policy_source"]


def time_option(register: Register, value: str | None, option: str) -> str | None:
    """A time given on the command line, read in the register's zone, as stored (UTC with Z)."""
    if value is None:
        return None
    return dates.to_text(dates.parse_time(value, local_zone(register), option))


def show(register: Register | None, location: paths.RegisterLocation) -> list[dict[str, str]]:
    stored = register.settings() if register is not None else {}
    rows = []
    for setting in SETTINGS.values():
        if setting.key == "db":
            value, source = str(location.path), location.source
        elif setting.key == "timezone":
            value, source = timezone_name(register)
        elif setting.key == "guardian-age" and register is not None:
            age, source = guardian_age(register)
            value, source = str(age), "register" if source == "register" else "policy"
        elif setting.key == "jurisdiction":
            value = stored.get("jurisdiction", "")
            source = "register" if value else ""
        else:
            value = stored.get(setting.key, "")
            source = "register" if value else ""
        rows.append({"key": setting.key, "value": value, "source": source, "description": setting.description})
    return rows


def set_value(register: Register | None, key: str, raw: str, actor: str) -> dict[str, str]:
    setting = _setting(key)
    value = setting.validate(raw)
    if setting.in_file:
        values = {k: str(v) for k, v in paths.read_config_file().items()}
        values[key] = value
        written = paths.write_config_file(values)
        return {"key": key, "value": value, "source": f"config file {written}"}
    if register is None:
        raise InvalidInput(f"{key}: no register to store it in; run `pipolicy init` first")
    store(register, {key: value}, actor, "config set")
    return {"key": key, "value": value, "source": "register"}


def store(register: Register, values: dict[str, str], actor: str, command: str) -> None:
    """Write settings through the one write path, one audit event per key."""
    now = dates.now_text()
    with register.transaction(actor, command) as tx:
        for key, value in values.items():
            tx.execute(
                "INSERT INTO config (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, now),
            )
            tx.record("set", "config", fields=[key])
