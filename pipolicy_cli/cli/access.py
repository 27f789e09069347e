"""`access log|import|list|violations`: who used whose data, why, on what basis."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode

app = typer.Typer(help="The access log: every use of a person's data, and the violations in it.", no_args_is_help=True)
COLUMNS = ["id", "at", "actor", "user_id", "categories", "purpose", "action", "basis", "source", "event_id"]


class Action(str, Enum):
    view = "view"
    use = "use"
    modify = "modify"
    share = "share"
    transfer = "transfer"
    export = "export"


Since = Annotated[Optional[str], typer.Option("--since", help="From this time (register zone if none given).", show_default=False)]
UserFilter = Annotated[Optional[str], typer.Option("--user", help="Only this person (user_id).", show_default=False)]


@app.command("log")
def log(
    user: options.UserArg,
    categories: Annotated[str, typer.Option("--categories", help="Data categories used, comma-separated.")],
    purpose: Annotated[str, typer.Option("--purpose", help="The purpose of use (see `pipolicy policy purposes`).")],
    action: Annotated[Action, typer.Option("--action", help="What was done.")],
    basis: Annotated[str, typer.Option("--basis", help="consent, or a basis code (see `pipolicy policy bases`).")] = "consent",
    at: Annotated[Optional[str], typer.Option("--at", help="When (default: now).", show_default=False)] = None,
    by_actor: Annotated[Optional[str], typer.Option("--used-by", help="Who used the data (default: --actor).", show_default=False)] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="The system that reports the event.", show_default=False)] = None,
    event_id: Annotated[Optional[str], typer.Option("--event-id", help="The event's id in --source: a resent event is skipped.", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Record one use of a person's data. Never refused for lacking a basis: `violations` finds it."""
    from pipolicy_cli import access, dates

    out = options.output(fmt, as_json)
    who = options.actor(actor)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        event = access.log(register, {
            "at": at or dates.now_text(), "actor": by_actor or who, "user_id": row["user_id"], "categories": categories,
            "purpose": purpose, "action": action.value, "basis": basis, "source": source, "event_id": event_id,
        }, who)
        found = list(access.violations(register, user_key=row["id"], since=event["at"])) if event["id"] else []
    out.document(event)
    for violation in found:
        if violation["id"] == event["id"]:
            out.warning(f"this use is a violation: {violation['why']}")


@app.command("import")
def import_(
    file: options.InputFile,
    input_format: options.InputFormat = None,
    skip_invalid: options.SkipInvalid = False,
    batch_size: options.BatchSize = 50_000,
    jobs: options.Jobs = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Import a log (at, actor, user_id, categories, purpose, action, basis, source, event_id): validated first; resent events skipped."""
    from pipolicy_cli import access
    from pipolicy_cli.cli.imports import run_import

    run_import(access.import_events, file, input_format, skip_invalid, db, actor, fmt, as_json,
               "rows", "inserted", "skipped", "invalid", "written", batch_size=batch_size, jobs=jobs)


@app.command("list")
def list_(
    user: UserFilter = None,
    since: Since = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Before this time.", show_default=False)] = None,
    purpose: Annotated[Optional[str], typer.Option("--purpose", help="Only this purpose.", show_default=False)] = None,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Access events, oldest first."""
    from pipolicy_cli import access, settings, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        rows = access.events(
            register,
            user_key=users.find(register, user)["id"] if user else None,
            since=settings.time_option(register, since, "--since"),
            until=settings.time_option(register, until, "--until"),
            purpose=purpose,
            limit=limit,
        )
        out.rows(rows, COLUMNS)


@app.command("violations")
def violations(
    user: UserFilter = None,
    since: Since = None,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Uses that break the policy or the law, judged now (late consents count); exit 5 when there are any."""
    from itertools import islice

    from pipolicy_cli import access, settings, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        rows = access.violations(
            register,
            user_key=users.find(register, user)["id"] if user else None,
            since=settings.time_option(register, since, "--since"),
        )
        count = out.rows(islice(rows, limit), ["id", "at", "user_id", "purpose", "action", "basis", "categories", "reasons", "why"])
    if count:
        if not out.machine:
            out.message(f"{count} uses need a person's attention")
        raise typer.Exit(ExitCode.ATTENTION)
