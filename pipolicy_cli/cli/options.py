"""Options every command shares, and turning them into what the core needs."""

from __future__ import annotations

import getpass
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.catalog import profile_codes
from pipolicy_cli.cli.output import Format, Output

Jurisdiction = Enum("Jurisdiction", {code: code for code in profile_codes()}, type=str)

Db = Annotated[
    Optional[Path],
    typer.Option("--db", help="The register file (else PIPOLICY_DB, the config file, the user data dir).", show_default=False),
]
Actor = Annotated[
    Optional[str],
    typer.Option("--actor", help="Who is acting, for the audit trail (default: the OS user).", show_default=False),
]
FormatOpt = Annotated[
    Format,
    typer.Option("--format", "-f", help="auto: a table on a terminal, JSON when piped.", case_sensitive=False),
]
Json = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
Limit = Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many rows.", show_default=False)]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal values unmasked (audited).")]


def actor(name: str | None) -> str:
    if name:
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def output(fmt: Format, as_json: bool = False) -> Output:
    return Output(Format.json if as_json else fmt)


def location(db: Path | None):
    from pipolicy_cli import paths

    return paths.locate_register(str(db) if db else None)


def open_register(db: Path | None):
    from pipolicy_cli.register import Register

    return Register.open(location(db).path)
