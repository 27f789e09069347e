"""Creating a register: `init`."""

from __future__ import annotations

from pathlib import Path

from pipolicy_cli import catalog, keyfile, paths, settings
from pipolicy_cli.errors import InvalidInput
from pipolicy_cli.register import Register


def init_register(path: Path, actor: str, jurisdiction: str | None, key_file: Path | None) -> dict:
    """Create or migrate the register; a second run changes nothing."""
    if jurisdiction is not None:
        catalog.load_profile(jurisdiction)
    register, applied = Register.create_or_migrate(path, actor)
    with register:
        current = register.setting("jurisdiction")
        if current and jurisdiction and jurisdiction != current:
            raise InvalidInput(
                f"--jurisdiction: the register already follows {current}; "
                f"change it with `pipolicy config set jurisdiction {jurisdiction}`"
            )
        wanted: dict[str, str] = {}
        if not current:
            wanted["jurisdiction"] = jurisdiction or "pipl"
        stored_key = register.setting("key-file")
        if stored_key and key_file and Path(stored_key) != key_file:
            raise InvalidInput(
                f"--key-file: the register already uses {stored_key}; tombstones depend on that key"
            )
        key_path = key_file or (Path(stored_key) if stored_key else paths.default_key_file(path))
        key_created = keyfile.create(key_path)
        if stored_key != str(key_path):
            wanted["key-file"] = str(key_path)
        if wanted:
            settings.store(register, wanted, actor, "init")
        rules_loaded = 0
        if "008_retention" in applied:
            from pipolicy_cli import retention

            rules_loaded = retention.load_defaults(register, actor)
        return {
            "register": str(path),
            "created": bool(applied) and applied[0] == "001_foundation",
            "migrations_applied": applied,
            "schema_version": register.schema_version(),
            "jurisdiction": register.setting("jurisdiction"),
            "key_file": str(key_path),
            "key_created": key_created,
            "retention_rules_loaded": rules_loaded,
        }
