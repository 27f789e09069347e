"""`init` and `status`: creating the register and asking how it is."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode


def init(
    jurisdiction: Annotated[
        Optional[options.Jurisdiction],
        typer.Option("--jurisdiction", help="The law profile (default pipl).", show_default=False, case_sensitive=False),
    ] = None,
    key_file: Annotated[
        Optional[Path],
        typer.Option("--key-file", help="Where to keep the HMAC key (default: the user data dir, outside the register).", show_default=False),
    ] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Create the register, or migrate an older one. Running it again is harmless."""
    from pipolicy_cli.init import init_register

    out = options.output(fmt, as_json)
    location = options.location(db)
    result = init_register(
        location.path,
        options.actor(actor),
        jurisdiction.value if jurisdiction else None,
        key_file.expanduser().absolute() if key_file else None,
    )
    out.document(result)
    if not out.machine:
        if result["created"]:
            out.message(f"Created the register at {result['register']} ({result['jurisdiction']}).")
        elif result["migrations_applied"]:
            out.message(f"Migrated the register to {result['schema_version']}.")
        else:
            out.message("The register is already up to date; nothing changed.")


def status(
    check: Annotated[
        bool, typer.Option("--check", help="Also verify the audit chain and exit 5 when something needs a person.")
    ] = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Counts per table, schema, jurisdiction, audit head, and what needs attention."""
    from pipolicy_cli import status as core

    out = options.output(fmt, as_json)
    location = options.location(db)
    with options.open_register(db) as reg:
        report = core.status(reg, location.source, check)
    out.document(report)
    if check and report["attention"]:
        if not out.machine:
            for line in report["attention"]:
                out.warning(line)
        raise typer.Exit(ExitCode.ATTENTION)


def attach(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)
