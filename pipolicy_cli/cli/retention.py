"""`retention rule set|list|remove`, `retention sweep`, `retention history`."""

from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

app = typer.Typer(help="Retention rules and the nightly sweep that applies them.", no_args_is_help=True)
rule_app = typer.Typer(help="How long each category or table is kept, and then what happens.", no_args_is_help=True)
app.add_typer(rule_app, name="rule")
RULE_COLUMNS = ["id", "category", "table", "keep", "action", "basis", "floor", "floor_source"]
HISTORY_COLUMNS = ["id", "started_at", "finished_at", "as_of", "state", "stop_reason", "resumed", "counts", "attention"]


class Action(str, Enum):
    delete = "delete"
    deidentify = "deidentify"
    restrict = "restrict"


Category = Annotated[Optional[str], typer.Option("--category", help="A data category: the rule applies to inventory items.", show_default=False)]
Table = Annotated[Optional[str], typer.Option("--table", help="A table: access_log, requests or tasks.", show_default=False)]


@rule_app.command("set")
def rule_set(
    keep: Annotated[str, typer.Option("--keep", help="How long, e.g. 6 months, 90d, P3Y.")],
    action: Annotated[Action, typer.Option("--action", help="What happens after: delete, deidentify or restrict.")],
    category: Category = None,
    table: Table = None,
    basis: Annotated[Optional[str], typer.Option("--basis", help="Why this period (shown in `rule list` and the report).", show_default=False)] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Add or replace the rule for a category or a table; a period under the profile's floor is refused."""
    from pipolicy_cli import retention

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(retention.set_rule(register, options.actor(actor), category=category, table=table, keep=keep,
                                        action=action.value, basis=basis))


@rule_app.command("list")
def rule_list(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """The rules, each with the profile's floor for its target and where that floor comes from."""
    from pipolicy_cli import retention

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(retention.rules(register), RULE_COLUMNS)


@rule_app.command("remove")
def rule_remove(
    rule_id: Annotated[Optional[int], typer.Argument(metavar="[ID]", help="The rule's id (or name it by --category or --table).", show_default=False)] = None,
    category: Category = None,
    table: Table = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Remove a rule: what it covered is kept until a rule covers it again."""
    from pipolicy_cli import retention

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(retention.remove_rule(register, options.actor(actor), key=rule_id, category=category, table=table))


@app.command("sweep")
def sweep(
    dry_run: options.DryRun = False,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Judge ages as at this time (default: now).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, max=1_000_000, help="Rows per transaction (default: from 10,000, each batch sized to take about 15 s, up to 1,000,000); other writers wait at most one batch.", show_default=False)] = None,
    max_duration: Annotated[Optional[str], typer.Option("--max-duration", help="Stop after about this long (e.g. 2h); the next sweep resumes.", show_default=False)] = None,
    fail_on_attention: Annotated[bool, typer.Option("--fail-on-attention", help="Exit 5 when something needs a person.")] = False,
    yes: options.Yes = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Apply every retention rule in batches, carry out deletion requests whose systems are done, retry scrubs.

    Exit 0 when it did its job; 5 with --fail-on-attention when something needs a person; 6 when another
    sweep holds the lock; 143 on SIGTERM, after the current batch; 1 on failure.
    """
    import signal

    from pipolicy_cli import dates
    from pipolicy_cli import settings as config
    from pipolicy_cli import sweep as core
    from pipolicy_cli.errors import ExitCode

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        moment = config.time_option(register, as_of, "--as-of")
        seconds = None
        if max_duration is not None:
            seconds = dates.approx_days(dates.parse_duration(max_duration, "--max-duration")) * 86400
        if dry_run:
            plan = core.plan(register, moment or dates.now_text())
            out.document({"dry_run": True, "as_of": moment or dates.now_text(), **plan})
            return
        options.confirm("Apply every retention rule now? What they delete is gone for good.", yes)
        terminated = []
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
        try:
            with _progress(out, register, moment) as progress:
                summary = core.Sweep(register, options.actor(actor), as_of=moment, batch_size=batch_size,
                                     max_seconds=seconds, should_stop=lambda: bool(terminated), progress=progress).run()
        finally:
            signal.signal(signal.SIGTERM, previous)
    out.document(summary)
    for line in summary["attention"]:
        out.warning(line)
    if summary["stop_reason"] == "terminated":
        raise typer.Exit(ExitCode.TERMINATED)
    if fail_on_attention and summary["attention"]:
        raise typer.Exit(ExitCode.ATTENTION)


def _progress(out, register, moment):
    """A progress bar on stderr when a person watches; nothing for cron."""
    from contextlib import contextmanager, nullcontext

    if not out.env.stderr_isatty:
        return nullcontext(None)

    @contextmanager
    def bar():
        from rich.console import Console
        from rich.progress import Progress

        from pipolicy_cli import dates
        from pipolicy_cli import sweep as core

        totals = core.plan(register, moment or dates.now_text())["counts"]
        with Progress(console=Console(stderr=True, no_color=out.env.no_color), transient=True) as progress:
            bars = {label: progress.add_task(label, total=total) for label, total in totals.items() if total}
            yield lambda label, rows: progress.advance(bars[label], rows) if label in bars else None

    return bar()


@app.command("history")
def history(
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Past sweeps, newest first, with what each did and what needed a person."""
    from pipolicy_cli import sweep as core

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(core.history(register, limit=limit), HISTORY_COLUMNS)
