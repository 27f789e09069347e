"""`config show|set`: the organisation's contacts, zone, paths and profile."""

from typing import Annotated

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import NotFound

app = typer.Typer(help="Settings: organisation, contact, protection officer, timezone, paths, jurisdiction.", no_args_is_help=True)


@app.command("show")
def show(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Every setting with its value and where the value comes from."""
    from pipolicy_cli import settings

    out = options.output(fmt, as_json)
    location = options.location(db)
    try:
        register = options.open_register(db)
    except NotFound:
        register = None
        out.hint(f"no register at {location.path} yet: run `pipolicy init`")
    try:
        rows = settings.show(register, location)
    finally:
        if register is not None:
            register.close()
    out.rows(rows, ["key", "value", "source", "description"])


@app.command("set")
def set_(
    key: Annotated[str, typer.Argument(help="organisation, contact, dpo, timezone, jurisdiction, backup-dir, key-file or db.")],
    value: Annotated[str, typer.Argument(help="The new value.")],
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Change one setting (audited; `db` goes to the user config file)."""
    from pipolicy_cli import settings

    out = options.output(fmt, as_json)
    if key == "db":
        result = settings.set_value(None, key, value, options.actor(actor))
    else:
        with options.open_register(db) as register:
            result = settings.set_value(register, key, value, options.actor(actor))
    out.document(result)
