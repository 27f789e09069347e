"""`request open|list|show|verify|extend|complete|reject`: rights requests with real deadlines."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode
from pipolicy_cli.masking import OTHERS, mask_row

app = typer.Typer(help="Rights requests: open, verify, extend, complete, reject; deadlines from the profile.", no_args_is_help=True)
COLUMNS = ["id", "user_id", "kind", "ground", "status", "received_at", "due_on", "extended_due_on", "days_left", "overdue"]
RequestId = Annotated[int, typer.Argument(metavar="ID", help="The request's id.")]


class Kind(str, Enum):
    access = "access"
    copy = "copy"
    portability = "portability"
    correction = "correction"
    deletion = "deletion"
    withdrawal = "withdrawal"
    cancellation = "cancellation"
    explanation = "explanation"


class Status(str, Enum):
    open = "open"
    verified = "verified"
    completed = "completed"
    rejected = "rejected"


@app.command("open")
def open_(
    user: options.UserArg,
    kind: Annotated[Kind, typer.Option("--kind", help="What the person asks for.")],
    ground: Annotated[Optional[str], typer.Option("--ground", help="For a deletion: the policy's (5.2) or the law's (PIPL Art. 47) ground.", show_default=False)] = None,
    received: Annotated[Optional[str], typer.Option("--received", help="When it arrived (default: now).", show_default=False)] = None,
    via: Annotated[Optional[str], typer.Option("--via", help="The channel: web, app, phone, letter, e-mail...", show_default=False)] = None,
    for_deceased: Annotated[bool, typer.Option("--for-deceased", help="Made by a close relative of a deceased person (PIPL Art. 49).")] = False,
    requester: Annotated[Optional[str], typer.Option("--requester", help="Who asks, for a deceased person.", show_default=False)] = None,
    relation: Annotated[Optional[str], typer.Option("--relation", help="The requester's relation to the person.", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Open a request; its due date comes from the jurisdiction profile. Prints its id."""
    from pipolicy_cli import requests

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        request = requests.open_request(register, row, kind.value, options.actor(actor), ground=ground, received=received,
                                        via=via, for_deceased=for_deceased, requester=requester, relation=relation)
    note = request.pop("calendar_note")
    out.document(mask_row(request, OTHERS))
    if note:
        out.warning(note)


@app.command("list")
def list_(
    status: Annotated[Optional[Status], typer.Option("--status", help="Only requests in this state.", show_default=False)] = None,
    kind: Annotated[Optional[Kind], typer.Option("--kind", help="Only this kind.", show_default=False)] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="Only this person's (user_id).", show_default=False)] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open requests past their due date; exit 5 when any.")] = False,
    due_within: Annotated[Optional[str], typer.Option("--due-within", help="Only open requests due within this many days, e.g. 3d.", show_default=False)] = None,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Requests with their due dates and days left."""
    from pipolicy_cli import requests, users
    from pipolicy_cli.errors import InvalidInput

    out = options.output(fmt, as_json)
    days = None
    if due_within is not None:
        text = due_within.strip().lower().removesuffix("d").strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 5):
            raise InvalidInput("--due-within: a number of days up to 99999, e.g. 3d")
        days = int(text)
    with options.open_register(db) as register:
        rows = requests.query(
            register, status=status.value if status else None, kind=kind.value if kind else None,
            user_key=users.find(register, user)["id"] if user else None, overdue=overdue, due_within=days, limit=limit,
        )
        count = out.rows((mask_row(row, OTHERS) for row in rows), COLUMNS)
    if overdue and count:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command("show")
def show(
    request_id: RequestId,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """One request, with every step: who verified it and how, extensions, the outcome and its reason. A requester's
    name is masked unless --reveal."""
    from pipolicy_cli import requests, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = requests.show(register, request_id)
        if reveal:
            users.record_reveal(register, [row["id"]], options.actor(actor), "request show --reveal", "requests")
    out.document(row if reveal else mask_row(row, OTHERS))


def _step(name: str, doc: str, option: str, option_help: str) -> None:
    """verify, extend, complete and reject share one shape: ID, one text option, the request after the step."""

    def command(
        request_id: RequestId,
        text: Annotated[Optional[str], typer.Option(option, help=option_help, show_default=False)] = None,
        db: options.Db = None,
        actor: options.Actor = None,
        fmt: options.FormatOpt = Format.auto,
        as_json: options.Json = False,
    ) -> None:
        from pipolicy_cli import requests

        out = options.output(fmt, as_json)
        with options.open_register(db) as register:
            if name == "complete":
                row = requests.complete(register, request_id, options.actor(actor), text)
            else:
                row = getattr(requests, name)(register, request_id, text or "", options.actor(actor))
        out.document(mask_row(row, OTHERS))

    command.__doc__ = doc
    app.command(name)(command)


_step("verify", "Record that the requester's identity was checked: by whom (--actor) and how.", "--method",
      "How the identity was checked, e.g. ID card at the counter, SMS code to the registered phone.")
_step("extend", "Extend the deadline once, where the profile allows it, with the reason.", "--reason",
      "Why more time is needed (told to the person).")
_step("reject", "Refuse a request; the reason is required (PIPL Art. 50).", "--reason", "The reasons for the refusal.")


@app.command("complete")
def complete(
    request_id: RequestId,
    note: Annotated[Optional[str], typer.Option("--note", help="What was done.", show_default=False)] = None,
    override: options.Override = None,
    dry_run: options.DryRun = False,
    yes: options.Yes = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="auto: a table on a terminal, JSON when piped.")] = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Mark a verified request done once its systems' tasks are; a deletion or cancellation request erases the person (asks first)."""
    from pipolicy_cli import erasure, requests, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        current = requests.show(register, request_id)
        if current["kind"] in requests.NEEDS_ERASURE and current["user_id"]:
            if dry_run:
                out.rows(erasure.plan(register, users.find(register, current["user_id"])), ["table", "rows", "effect", "why"])
                return
            options.confirm(f"Completing request {request_id} erases {current['user_id']} for good. Go on?", yes)
        elif dry_run:
            out.document(mask_row(current, OTHERS))
            return
        out.document(mask_row(requests.complete(register, request_id, options.actor(actor), note, override=override), OTHERS))
