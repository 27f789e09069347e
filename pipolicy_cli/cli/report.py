"""`report`: the compliance dashboard for management or an auditor."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options


class ReportFormat(str, Enum):
    md = "md"
    json = "json"
    table = "table"


def report(
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="md (Markdown tables), json, or table (one field per row).")] = ReportFormat.md,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write to this file (0600) instead of stdout.", show_default=False)] = None,
    fail_on_attention: Annotated[bool, typer.Option("--fail-on-attention", help="Exit 5 when something needs a person.")] = False,
    db: options.Db = None,
    actor: options.Actor = None,
) -> None:
    """Counts, consent coverage, requests and tasks, violations, minors, erasures, sweeps, incidents, transfers,
    assessments, the audit chain, and where the policy falls short of the law."""

    from pipolicy_cli import report as core
    from pipolicy_cli.cli.output import Output, to_json
    from pipolicy_cli.errors import ExitCode

    with options.open_register(db) as register:
        built = core.build(register)
    if fmt is ReportFormat.table and out_path is None:
        Output("table").document(built)
    else:
        text = to_json(built, indent=2) + "\n" if fmt is ReportFormat.json else core.markdown(built)
        if out_path is None:
            Output("json").text(text)
        else:
            from pipolicy_cli.paths import replaced_whole

            with replaced_whole(out_path.expanduser(), text=True) as handle:
                handle.write(text)
    if fail_on_attention and built["attention"]:
        raise typer.Exit(ExitCode.ATTENTION)


def attach(app: typer.Typer) -> None:
    app.command()(report)
