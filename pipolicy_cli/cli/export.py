"""`export USER`: everything held about one person, unmasked, as JSON, a zip of CSVs, or Markdown."""

import os
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
    from pipolicy_cli.paths import open_private

    out = Output("json")
    if fmt is ExportFormat.csv and out_path is None and out.env.stdout_isatty:
        raise UsageError("--format csv writes a zip: name a file with --out")
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        waiting = core.record(register, row, fmt.value, options.actor(actor), request)
        if waiting:
            out.warning(f"request {request} stays open until these systems send their part: {', '.join(waiting)}")
        if out_path is None:
            if fmt is ExportFormat.csv:
                import sys

                core.write_csv_zip(register, row, sys.stdout.buffer)
            else:
                (core.write_json if fmt is ExportFormat.json else core.write_markdown)(register, row, out.env.stdout)
            return
        path = out_path.expanduser()
        fd = open_private(path)
        if fmt is ExportFormat.csv:
            with os.fdopen(fd, "wb") as handle:
                core.write_csv_zip(register, row, handle)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                (core.write_json if fmt is ExportFormat.json else core.write_markdown)(register, row, handle)
    out.message(f"wrote {path}")


def attach(app: typer.Typer) -> None:
    app.command()(export)
