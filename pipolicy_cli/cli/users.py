"""`user add|show|list|update|cancel|import`: the people whose data is held."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

app = typer.Typer(help="The people whose data is held: add, show, list, update (correct), cancel, import.", no_args_is_help=True)


class Status(str, Enum):
    active = "active"
    cancelled = "cancelled"


def _value(help_text: str):
    return typer.Option(help=f"{help_text} ('-' reads it from stdin).", show_default=False)


Name = Annotated[Optional[str], _value("Full name")]
Gender = Annotated[Optional[str], _value("male or female")]
BirthDate = Annotated[Optional[str], _value("Birth date, YYYY-MM-DD")]
Address = Annotated[Optional[str], _value("Postal address")]
Phone = Annotated[Optional[str], _value("Phone number (China by default, +CC for others)")]
Email = Annotated[Optional[str], _value("E-mail address")]
IdNumber = Annotated[Optional[str], _value("Resident ID number (18 characters)")]
Contact = Annotated[Optional[str], _value("Other contact information")]


@app.command("add")
def add(
    user_id: Annotated[str, typer.Argument(help="The company's own id for this person.")],
    name: Name = None,
    gender: Gender = None,
    birth_date: BirthDate = None,
    address: Address = None,
    phone: Phone = None,
    email: Email = None,
    id_number: IdNumber = None,
    contact: Contact = None,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Register a person, validating every field. Prints the new id."""
    from pipolicy_cli import users

    out = options.output(fmt, as_json)
    raw = options.stdin_values(
        {"user_id": user_id, "name": name, "gender": gender, "birth_date": birth_date, "address": address,
         "phone": phone, "email": email, "id_number": id_number, "contact": contact}
    )
    who = options.actor(actor)
    with options.open_register(db) as register:
        row = users.add(register, raw, who)
        if reveal:
            users.record_reveal(register, [row["id"]], who, "user add --reveal")
        out.document({"id": row["id"], **users.view(row, users.today(register), reveal=reveal, full=True)})


@app.command("show")
def show(
    user: options.UserArg,
    by: options.ByOpt = options.By.user_id,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """One person's record, masked unless --reveal."""
    from pipolicy_cli import users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        if reveal:
            users.record_reveal(register, [row["id"]], options.actor(actor), "user show --reveal")
        out.document({"id": row["id"], **users.view(row, users.today(register), reveal=reveal, full=True)})


@app.command("list")
def list_(
    status: Annotated[Optional[Status], typer.Option("--status", help="Only active or cancelled users.", show_default=False)] = None,
    created_from: Annotated[Optional[str], typer.Option("--created-from", help="Registered at or after this time.", show_default=False)] = None,
    created_to: Annotated[Optional[str], typer.Option("--created-to", help="Registered before this time.", show_default=False)] = None,
    minors: Annotated[bool, typer.Option("--minors", help="Only people under the guardian age.")] = False,
    age_unknown: Annotated[bool, typer.Option("--age-unknown", help="Only people whose age is not known.")] = False,
    limit: options.Limit = None,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Users, oldest first, masked unless --reveal."""
    from pipolicy_cli import users

    out = options.output(fmt, as_json)
    filters = dict(
        status=status.value if status else None, created_from=created_from, created_to=created_to,
        minors=minors, age_unknown=age_unknown, limit=limit,
    )
    with options.open_register(db) as register:
        on = users.today(register)
        if reveal:
            keys = [row["id"] for row in users.query(register, **filters)]
            users.record_reveal(register, keys, options.actor(actor), "user list --reveal")
        rows = (users.view(row, on, reveal=reveal, full=False) for row in users.query(register, **filters))
        out.rows(rows, ["user_id", "name", "gender", "age", "phone", "email", "id_number", "status", "created_at"])


@app.command("update")
def update(
    user: options.UserArg,
    by: options.ByOpt = options.By.user_id,
    name: Name = None,
    gender: Gender = None,
    birth_date: BirthDate = None,
    address: Address = None,
    phone: Phone = None,
    email: Email = None,
    id_number: IdNumber = None,
    contact: Contact = None,
    clear: Annotated[Optional[list[str]], typer.Option("--clear", help="Remove a field's value (repeatable).", show_default=False)] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Correct a person's record (policy 5.1): the audit event names the fields changed."""
    from pipolicy_cli import users

    out = options.output(fmt, as_json)
    changes = {"name": name, "gender": gender, "birth_date": birth_date, "address": address, "phone": phone,
               "email": email, "id_number": id_number, "contact": contact}
    with options.open_register(db) as register:
        changes = options.stdin_values({"user": user, **changes})
        row = users.find(register, changes.pop("user"), by.value)
        row, changed = users.update(register, row, changes, [c.replace("-", "_") for c in clear or []], options.actor(actor))
    out.document({"id": row["id"], "user_id": row["user_id"], "changed": changed})
    if not out.machine and not changed:
        out.message("Nothing changed: the record already holds those values.")


@app.command("cancel")
def cancel(
    user: options.UserArg,
    by: options.ByOpt = options.By.user_id,
    at: Annotated[Optional[str], typer.Option("--at", help="When the account was cancelled (default: now).", show_default=False)] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Cancel the account (policy 5.3): its data must no longer be used; opens a deletion request."""
    from pipolicy_cli import users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        already = row["status"] == "cancelled"
        row = users.cancel(register, row, options.actor(actor), at)
    out.document({"id": row["id"], "user_id": row["user_id"], "status": row["status"], "cancelled_at": row["cancelled_at"],
                  "deletion_request": row["request"]})
    if already and not out.machine:
        out.message("The account was already cancelled; nothing changed.")


@app.command("import")
def import_(
    file: options.InputFile,
    input_format: options.InputFormat = None,
    skip_invalid: options.SkipInvalid = False,
    update: Annotated[bool, typer.Option("--update", help="Apply changed values to known users, each an audited correction.")] = False,
    batch_size: options.BatchSize = 10_000,
    jobs: options.Jobs = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Import users: the whole file is validated first; bad rows mean nothing is written."""
    from pipolicy_cli.cli.imports import run_import
    from pipolicy_cli.user_import import import_users

    run_import(import_users, file, input_format, skip_invalid, db, actor, fmt, as_json,
               apply_updates=update, batch_size=batch_size, jobs=jobs)
