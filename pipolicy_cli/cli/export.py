"""`export USER`: everything held about one person, unmasked, as JSON, a zip of CSVs, or Markdown."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Output


class ExportFormat(str, Enum):
    json = "json"
    csv = "csv"
    md = "md"


def export(
    user: options.UserArg,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="json, csv (a zip of one CSV per section) or md (for the person to read).")] = ExportFormat.json,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write to this file (created 0600) instead of stdout.", show_default=False)] = None,
    request: Annotated[Optional[int], typer.Option("--request", help="The verified access, copy or portability request this answers: it is completed (once its systems are done).", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
) -> None:
    """Everything held about one person: profile, inventory, consents, every use, requests, and who to contact. Audited."""
    from pipolicy_cli import export as core
    from pipolicy_cli.errors import UsageError

    out = Output("json")
    if fmt is ExportFormat.csv and out_path is None and out.env.stdout_isatty:
        raise UsageError("--format csv writes a zip: name a file with --out")
    binary = fmt is ExportFormat.csv
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        if binary:
            writer = core.write_csv_zip
        else:
            writer = core.write_json if fmt is ExportFormat.json else core.write_markdown
        if out_path is None:
            import sys

            stream = sys.stdout.buffer if binary else out.env.stdout
            waiting = core.record(register, row, fmt.value, options.actor(actor), request,
                                  deliver=lambda: writer(register, row, stream))
        else:
            from pipolicy_cli.paths import replaced_whole

            path = out_path.expanduser()
            with replaced_whole(path, text=not binary) as handle:
                waiting = core.record(register, row, fmt.value, options.actor(actor), request,
                                      deliver=lambda: writer(register, row, handle))
    if waiting:
        out.warning(f"request {request} stays open until these systems send their part: {', '.join(waiting)}")
    if out_path is None:
        return
    out.message(f"wrote {path}")


def attach(app: typer.Typer) -> None:
    app.command()(export)
