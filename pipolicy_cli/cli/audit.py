"""`audit list|verify|head`: the tamper-evident trail."""

from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode

app = typer.Typer(help="The tamper-evident audit trail: list, verify, head.", no_args_is_help=True)


@app.command("list")
def list_(
    by_actor: Annotated[Optional[str], typer.Option("--by-actor", help="Only events by this actor.", show_default=False)] = None,
    command: Annotated[Optional[str], typer.Option("--command", help='Only this command, e.g. "config set".', show_default=False)] = None,
    object_kind: Annotated[Optional[str], typer.Option("--object", help="Only this kind of object (a table name).", show_default=False)] = None,
    key: Annotated[Optional[int], typer.Option("--key", help="Only this object key (with --object).", show_default=False)] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="From this time (register zone if none given).", show_default=False)] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Before this time.", show_default=False)] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest events first.")] = False,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Audit events, oldest first, with filters."""
    from pipolicy_cli import settings
    from pipolicy_cli.register import audit

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        since_text = settings.time_option(register, since, "--since")
        until_text = settings.time_option(register, until, "--until")
        rows = audit.events(
            register.conn,
            actor=by_actor,
            command=command,
            object_kind=object_kind,
            object_key=key,
            since=since_text,
            until=until_text,
            limit=limit,
            newest_first=newest_first,
        )
        columns = ["seq", "at", "actor", "command", "action", "object", "key", "fields"]
        if out.machine:
            columns += ["detail", "hash"]
        out.rows(rows, columns)


@app.command("verify")
def verify(
    head: Annotated[
        Optional[str],
        typer.Option("--head", help="A hash recorded earlier by `audit head`: fail if it is not in the chain.", show_default=False),
    ] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Recompute the whole chain; exit 5 naming the first bad event."""
    from pipolicy_cli.errors import InvalidInput
    from pipolicy_cli.register import audit

    out = options.output(fmt, as_json)
    if head is not None and (len(head) != 64 or any(ch not in "0123456789abcdef" for ch in head.lower())):
        raise InvalidInput("--head: not a 64-digit hex hash")
    with options.open_register(db) as register:
        result = audit.verify(register.conn, anchor=head.lower() if head else None)
    out.document(result.as_dict())
    if not result.ok:
        if not out.machine:
            where = f" at event {result.first_bad}" if result.first_bad else ""
            out.message(f"audit chain broken{where}: {result.reason}")
        raise typer.Exit(ExitCode.ATTENTION)
    if not out.machine:
        out.message(f"audit chain intact: {result.count} events")


@app.command("head")
def head(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """The event count and last hash, to record outside the register."""
    from pipolicy_cli.register import audit

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        current = audit.head(register.conn)
    out.document({"count": current.count, "hash": current.hash})
