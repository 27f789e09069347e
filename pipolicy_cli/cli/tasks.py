"""`task list|pull|done|fail`: what each system must do for a verified request, and its answer."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

app = typer.Typer(help="Per-system work a verified request creates: each system pulls its tasks and reports back.",
                  no_args_is_help=True)
COLUMNS = ["id", "request_id", "request_kind", "user_id", "system", "action", "state", "due_on", "overdue", "pulls", "closed_at"]
PULL_COLUMNS = ["id", "request_id", "request_kind", "action", "due_on", "user_id", "identifiers", "items", "retention"]
TaskId = Annotated[str, typer.Argument(metavar="ID", help="The task's id; '-' reads NDJSON ({\"id\": N, \"note\": ...}) or one id per line from stdin.")]


class State(str, Enum):
    open = "open"
    pulled = "pulled"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class PullFormat(str, Enum):
    ndjson = "ndjson"
    json = "json"
    csv = "csv"


@app.command("list")
def list_(
    request: Annotated[Optional[int], typer.Option("--request", help="Only this request's tasks.", show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option("--system", help="Only this system's tasks.", show_default=False)] = None,
    state: Annotated[Optional[State], typer.Option("--state", help="Only tasks in this state.", show_default=False)] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only unfinished tasks past their request's due date; exit 5 when any.")] = False,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Tasks with their state and due date; never their payloads (those go only to the system that pulls them)."""
    from pipolicy_cli import tasks
    from pipolicy_cli.errors import ExitCode

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        count = out.rows(tasks.query(register, request_id=request, system=system, state=state.value if state else None,
                                     overdue=overdue, limit=limit), COLUMNS)
    if overdue and count:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command("pull")
def pull(
    system: Annotated[str, typer.Option("--system", help="The system whose tasks to hand out.")],
    limit: options.Limit = None,
    lease: Annotated[str, typer.Option("--lease", help="After this long a pulled task not reported back is handed out again.")] = "12h",
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: Annotated[PullFormat, typer.Option("--format", "-f", help="ndjson (one task per line), json or csv.")] = PullFormat.ndjson,
) -> None:
    """Hand out a system's open tasks with the identifiers it needs (audited); for the system's own cron job."""
    from pipolicy_cli import tasks

    out = options.output(Format(fmt.value))
    with options.open_register(db) as register:
        out.rows(tasks.pull(register, system, options.actor(actor), limit=limit, lease=lease), PULL_COLUMNS)


def _task_key(value) -> Optional[int]:
    """A task id from text or JSON: a positive whole number SQLite can hold, else None."""
    if isinstance(value, str):
        value = int(value) if value.isascii() and value.isdigit() and len(value) <= 19 else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


def _reports(task_id: str, outcome: str, note: Optional[str]) -> list:
    """(id, outcome, note) from the argument, or from stdin lines when it is '-'."""
    import sys

    from pipolicy_cli import fields, readers
    from pipolicy_cli.errors import InvalidInput

    if task_id != "-":
        key = _task_key(task_id.strip())
        if key is None:
            raise InvalidInput("ID: not a task id")
        return [(key, outcome, fields.option_text("--note" if outcome == "done" else "--reason", note, required=outcome == "failed"))]
    reports, problems = [], []
    for number, line in enumerate(sys.stdin.buffer, 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = readers.parse_line(line) if line.startswith(b"{") else {"id": _task_key(line.decode("ascii", "replace"))}
            if isinstance(record, readers.RowProblem):
                problems.append(f"line {number}: {record.field}: {record.reason}")
                continue
            key = _task_key(record["id"])
            if key is None:
                raise ValueError
            text = record.get("note", record.get("reason", note))
            if text is not None and not isinstance(text, str):
                problems.append(f"line {number}: note: must be text")
                continue
            reports.append((key, outcome, fields.option_text("note", text, required=outcome == "failed")))
        except (ValueError, KeyError, TypeError):
            problems.append(f"line {number}: id: not a task id")
        except InvalidInput as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        raise InvalidInput(problems[0] if len(problems) == 1 else f"{len(problems)} lines are invalid; nothing was recorded",
                           problems=problems)
    if not reports:
        raise InvalidInput("stdin: no task ids")
    return reports


def _reporting(name: str, outcome: str, option: str, option_help: str, doc: str) -> None:
    """`done` and `fail` share one shape: ID or '-', one text option, the states after."""

    def command(
        task_id: TaskId,
        text: Annotated[Optional[str], typer.Option(option, help=option_help, show_default=False)] = None,
        db: options.Db = None,
        actor: options.Actor = None,
        fmt: options.FormatOpt = Format.auto,
        as_json: options.Json = False,
    ) -> None:
        from pipolicy_cli import tasks

        out = options.output(fmt, as_json)
        reports = _reports(task_id, outcome, text)
        with options.open_register(db) as register:
            out.rows(tasks.report(register, reports, options.actor(actor)), ["id", "state", "changed"])

    command.__doc__ = doc
    app.command(name)(command)


_reporting("done", "done", "--note", "What the system did.", "Report tasks done; reporting one again changes nothing.")
_reporting("fail", "failed", "--reason", "Why the system could not do it.",
           "Report tasks a system could not carry out, with the reason; they keep the request open.")
