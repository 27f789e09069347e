"""`erase USER` and `backup create|list|expire|restore|replay`."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

backup_app = typer.Typer(help="Backups: create, list, expire, restore (erased people stay erased), replay.", no_args_is_help=True)


def erase(
    user: options.UserArg,
    request: Annotated[Optional[int], typer.Option("--request", help="The verified deletion request this carries out: it is completed.", show_default=False)] = None,
    override: options.Override = None,
    dry_run: options.DryRun = False,
    yes: options.Yes = False,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Erase a person so nothing of them is left in the register's files; records kept by law lose the link."""
    from pipolicy_cli import erasure

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        if dry_run:
            out.rows(erasure.plan(register, row), ["table", "rows", "effect", "why"])
            return
        options.confirm(f"Erase {row['user_id']} for good?", yes)
        result = erasure.erase(register, row, options.actor(actor), request_id=request, override=override)
    out.document(result)
    if result["scrub"] == "pending":
        out.warning("another process is reading the register: the WAL still holds old pages; the scrub is retried by later commands")
    if result["backups_holding"]:
        out.warning(f"{result['backups_holding']} backups made before now still hold this person until they expire")


@backup_app.command("create")
def create(
    expires_in: Annotated[str, typer.Option("--expires-in", help="How long to keep it, e.g. 30d, 6 months.")] = "30d",
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Copy the register with SQLite's backup API into the backup directory (0600)."""
    from pipolicy_cli import backups

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(backups.create(register, options.actor(actor), expires_in))


@backup_app.command("list")
def list_(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Backups, with how many erased people each still holds."""
    from pipolicy_cli import backups

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(backups.rows(register), ["id", "created_at", "expires_at", "expired", "deleted_at", "exists",
                                          "erased_people_inside", "size", "path"])


@backup_app.command("expire")
def expire(
    dry_run: options.DryRun = False,
    yes: options.Yes = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Delete backup files past their expiry: erased people leave the backups with them (policy 5.2)."""
    from pipolicy_cli import backups

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        if not dry_run:
            options.confirm("Delete expired backup files?", yes)
        rows = backups.expire(register, options.actor(actor), dry_run=dry_run)
    out.rows(rows, ["id", "created_at", "expires_at", "path"])


@backup_app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="The backup to restore.")],
    dry_run: options.DryRun = False,
    yes: options.Yes = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Replace the register with a backup, then erase again everyone erased since (the tombstones)."""
    from pipolicy_cli import backups

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        if not dry_run:
            options.confirm(f"Replace the register with {file}?", yes)
        out.document(backups.restore(register, file, options.actor(actor), dry_run=dry_run))


@backup_app.command("replay")
def replay(
    dry_run: options.DryRun = False,
    yes: options.Yes = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Erase again everyone a tombstone names, for a register restored by other means."""
    from pipolicy_cli import erasure

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        if not dry_run:
            options.confirm("Erase everyone the tombstones name?", yes)
        keys = erasure.replay(register, options.actor(actor), dry_run=dry_run)
    out.document({"erased_again" if not dry_run else "would_erase": len(keys)})


def attach(app: typer.Typer) -> None:
    app.command()(erase)  # `backup` is one of the root's lazily built groups
