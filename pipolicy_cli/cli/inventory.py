"""`system add|list` and `data add|list|import`: what is held about whom, and where."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

system_app = typer.Typer(help="The company's systems and processors that hold personal data.", no_args_is_help=True)
data_app = typer.Typer(help="The inventory: which data of whom each system holds, from where, since when.", no_args_is_help=True)


class Kind(str, Enum):
    internal = "internal"
    processor = "processor"


@system_app.command("add")
def system_add(
    name: Annotated[str, typer.Argument(help="The system's name, e.g. crm or sms-gateway.")],
    kind: Annotated[Kind, typer.Option("--kind", help="internal, or a processor entrusted under a contract (PIPL Art. 21).")] = Kind.internal,
    owner: Annotated[Optional[str], typer.Option("--owner", help="Who answers for it.", show_default=False)] = None,
    country: Annotated[Optional[str], typer.Option("--country", help="Where it stores data (ISO code, e.g. CN).", show_default=False)] = None,
    contract: Annotated[Optional[str], typer.Option("--contract", help="The processing contract's reference (required for a processor).", show_default=False)] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Register a system or processor. Prints its id."""
    from pipolicy_cli import inventory

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = inventory.add_system(register, name, kind.value, owner, country, contract, options.actor(actor))
    out.document(row)


@system_app.command("list")
def system_list(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Every system with the number of people whose data it holds."""
    from pipolicy_cli import inventory

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(inventory.systems(register), ["id", "name", "kind", "owner", "country", "contract", "people", "created_at"])


@data_app.command("add")
def data_add(
    user: options.UserArg,
    category: Annotated[str, typer.Option("--category", help="A data category of the policy (see `pipolicy policy categories`).")],
    field: Annotated[str, typer.Option("--field", help="What is held, e.g. imei, ip_address, order_history.")],
    system: Annotated[str, typer.Option("--system", help="The system that holds it.")],
    source: Annotated[str, typer.Option("--source", help="provided, automatic, or third-party:NAME (policy 1.3).")] = "provided",
    collected_at: Annotated[Optional[str], typer.Option("--collected-at", help="When it was collected (default: now).", show_default=False)] = None,
    value: Annotated[Optional[str], typer.Option("--value", help="The value, only where the register itself keeps it ('-' reads stdin).", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Record that a system holds a field of a person's data (again: updates it)."""
    import sys

    from pipolicy_cli import inventory

    out = options.output(fmt, as_json)
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        item = inventory.add_item(register, {"user_id": row["user_id"], "category": category, "field": field, "system": system,
                                             "source": source, "collected_at": collected_at, "value": value}, options.actor(actor))
    out.document(item)


@data_app.command("list")
def data_list(
    user: Annotated[Optional[str], typer.Option("--user", help="Only this person's items (user_id).", show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option("--system", help="Only items held by this system.", show_default=False)] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Only this category.", show_default=False)] = None,
    limit: options.Limit = None,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Inventory items; values (where kept) masked unless --reveal."""
    from pipolicy_cli import inventory, masking, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        user_key = users.find(register, user)["id"] if user else None
        rows = list(inventory.items(register, user_key=user_key, system=system, category=category, limit=limit))
        if reveal:
            shown = [row["id"] for row in rows if row["value"] is not None]
            keys = [key for (key,) in register.conn.execute(
                f"SELECT DISTINCT user_key FROM data_items WHERE id IN ({', '.join('?' * len(shown))}) ORDER BY user_key", shown)]
            users.record_reveal(register, keys, options.actor(actor), "data list --reveal")
        else:
            rows = [{**row, "value": masking.text(row["value"])} for row in rows]
    out.rows(rows, ["id", "user_id", "category", "field", "system", "system_kind", "source", "collected_at", "value"])


@data_app.command("import")
def data_import(
    file: options.InputFile,
    input_format: options.InputFormat = None,
    skip_invalid: options.SkipInvalid = False,
    batch_size: options.BatchSize = 10_000,
    jobs: options.Jobs = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Import inventory items (user_id, category, field, system, source, collected_at, value): validated in full first."""
    from pipolicy_cli import inventory
    from pipolicy_cli.cli.imports import run_import

    run_import(inventory.import_items, file, input_format, skip_invalid, db, actor, fmt, as_json,
               batch_size=batch_size, jobs=jobs)
