"""The one loader of facts about the policy and the law.

The policy's catalog and each jurisdiction profile are TOML files in `data/`
(installed as `pipolicy_cli/data`). Code asks this module; it never hard-wires
a deadline, a ground or a basis.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pipolicy_cli.errors import InvalidInput

_CATALOG_LISTS = ("purposes", "categories", "scopes", "bases", "deletion_grounds", "signals")


def data_path(*parts: str) -> Path:
    """A file under `data/`: inside the installed package, else the source tree."""
    here = Path(__file__).resolve().parent
    for root in (here / "data", here.parent / "data"):
        if root.is_dir():
            return root.joinpath(*parts)
    raise FileNotFoundError("pipolicy data directory is missing from this installation")


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path}: not valid TOML: {exc}") from None


def profile_codes() -> list[str]:
    return sorted(path.stem for path in data_path("profiles").glob("*.toml"))


@lru_cache(maxsize=8)
def load_profile(code: str) -> dict[str, Any]:
    if code not in profile_codes():
        raise InvalidInput(f"jurisdiction: unknown profile {code!r} (known: {', '.join(profile_codes())})")
    profile = _read_toml(data_path("profiles", f"{code}.toml"))
    for key, value in profile.items():
        _check_sources(value, f"profile {code}: {key}")
    return profile


@lru_cache(maxsize=8)
def load_catalog(path: str | None = None) -> dict[str, Any]:
    """The policy catalog; `path` names a register's own catalog file."""
    source = Path(path) if path else data_path("catalog.toml")
    catalog = _read_toml(source)
    for key in _CATALOG_LISTS:
        entries = catalog.get(key)
        if not isinstance(entries, list) or not entries:
            raise InvalidInput(f"{source}: {key}: missing or empty")
        codes = [entry.get("code") for entry in entries]
        if any(not isinstance(code, str) or not code for code in codes):
            raise InvalidInput(f"{source}: {key}: every entry needs a code")
        if len(set(codes)) != len(codes):
            raise InvalidInput(f"{source}: {key}: duplicate code")
        if any(not entry.get("clause") for entry in entries):
            raise InvalidInput(f"{source}: {key}: every entry needs the policy clause it comes from")
    return catalog


def codes(kind: str, catalog: dict[str, Any] | None = None) -> list[str]:
    catalog = catalog or load_catalog()
    return [entry["code"] for entry in catalog[kind]]


def _check_sources(node: Any, where: str) -> None:
    """Every rule table in a profile must say where it comes from."""
    if isinstance(node, dict):
        rule_like = any(key in node for key in ("law", "keep", "deadline", "title"))
        if rule_like and not any(key.endswith("source") for key in node):
            raise InvalidInput(f"{where}: rule without a source")
        for key, value in node.items():
            _check_sources(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_sources(value, f"{where}[{index}]")
