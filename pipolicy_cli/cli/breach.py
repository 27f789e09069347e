"""`breach open|update|show|list|close|affected|draft|mark-sent`: incidents, their clocks, and the notices."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

app = typer.Typer(help="Security incidents: grading, reporting clocks, who was affected, and the notices.", no_args_is_help=True)
BreachId = Annotated[int, typer.Argument(metavar="ID", help="The breach's id.")]
Users = Annotated[Optional[str], typer.Option("--users", help="A file of user ids (one per line, or NDJSON/CSV with user_id); '-' reads stdin.", show_default=False)]


class Audience(str, Enum):
    individuals = "individuals"
    public = "public"
    regulator = "regulator"


class Lang(str, Enum):
    zh = "zh"
    en = "en"


class Channel(str, Enum):
    email = "email"
    sms = "sms"
    letter = "letter"
    push = "push"


class DraftFormat(str, Enum):
    md = "md"
    txt = "txt"
    eml = "eml"
    json = "json"


def _text(option: str, help_text: str):
    return Annotated[Optional[str], typer.Option(option, help=help_text, show_default=False)]


Summary = _text("--summary", "What happened.")
Cause = _text("--cause", "Why it happened.")
Categories = _text("--categories", "The categories of personal information involved, comma-separated.")
Harm = _text("--harm", "The harm it may cause.")
Measures = _text("--measures", "What the organisation has done and does.")
Advice = _text("--advice", "What individuals can do to reduce the harm.")
Remedies = _text("--remedies", "What the organisation offers those affected.")
Contact = _text("--contact", "Who to contact (default: the register's contact).")
Detected = _text("--detected", "When it was found: the clocks start here.")
Occurred = _text("--occurred", "When it happened, if known.")
AffectedCount = Annotated[Optional[int], typer.Option("--affected-count", help="How many people, if more than those attached.", show_default=False)]
Cii = Annotated[Optional[bool], typer.Option("--cii/--not-cii", help="The organisation operates critical information infrastructure.", show_default=False)]
Grade = _text("--grade", "A higher grade than the number of people gives (other triggers of the profile).")


def _fields(**values) -> dict:
    return {name: value for name, value in values.items() if value is not None}


@app.command("open")
def open_(
    detected: Detected = None, summary: Summary = None, cause: Cause = None, categories: Categories = None,
    affected_count: AffectedCount = None, harm: Harm = None, measures: Measures = None, advice: Advice = None,
    remedies: Remedies = None, contact: Contact = None, cii: Cii = None, occurred: Occurred = None, grade: Grade = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record an incident; its grade and reporting clocks follow from the profile. Prints its id."""
    from pipolicy_cli import breach

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(breach.open_breach(register, _fields(
            detected_at=detected, summary=summary, cause=cause, categories=categories, affected_count=affected_count,
            harm=harm, measures=measures, advice=advice, remedies=remedies, contact=contact, cii=cii, occurred_at=occurred,
            grade=grade), options.actor(actor)))


@app.command("update")
def update(
    breach_id: BreachId,
    detected: Detected = None, summary: Summary = None, cause: Cause = None, categories: Categories = None,
    affected_count: AffectedCount = None, harm: Harm = None, measures: Measures = None, advice: Advice = None,
    remedies: Remedies = None, contact: Contact = None, cii: Cii = None, occurred: Occurred = None, grade: Grade = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Add what is learnt: cause, harm, measures, advice, remedies..."""
    from pipolicy_cli import breach

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(breach.update(register, breach_id, _fields(
            detected_at=detected, summary=summary, cause=cause, categories=categories, affected_count=affected_count,
            harm=harm, measures=measures, advice=advice, remedies=remedies, contact=contact, cii=cii, occurred_at=occurred,
            grade=grade), options.actor(actor)))


@app.command("show")
def show(
    breach_id: BreachId,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """The incident with its grade, each clock's time left, what a notice still lacks, and who was told."""
    from pipolicy_cli import breach

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(breach.show(register, breach_id))


@app.command("list")
def list_(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only incidents with a clock run out; exit 5 when any.")] = False,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Incidents with their grade and the next clock to run out."""
    from pipolicy_cli import breach
    from pipolicy_cli.errors import ExitCode

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        count = out.rows(breach.query(register, overdue=overdue), breach.LIST_COLUMNS)
    if overdue and count:
        raise typer.Exit(ExitCode.ATTENTION)


@app.command("close")
def close(
    breach_id: BreachId,
    at: Annotated[Optional[str], typer.Option("--at", help="When handling ended (default: now); the summary-report clock starts.", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Close the incident once handled."""
    from pipolicy_cli import breach

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(breach.close(register, breach_id, options.actor(actor), at))


@app.command("affected")
def affected(
    breach_id: BreachId,
    users: Users = None,
    category: Annotated[Optional[str], typer.Option("--category", help="Everyone the inventory holds this category of.", show_default=False)] = None,
    accessed_between: Annotated[Optional[str], typer.Option("--accessed-between", metavar="FROM..TO", help="With --category: everyone whose data of it the access log shows used in this window.", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Attach the people affected, and say how many e-mail, SMS, letter or push can reach, and how many none."""
    from pipolicy_cli import breach, readers
    from pipolicy_cli import settings as config
    from pipolicy_cli.errors import InvalidInput

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        window = None
        if accessed_between is not None:
            start, sep, end = accessed_between.partition("..")
            if not sep or not start or not end:
                raise InvalidInput("--accessed-between: FROM..TO, e.g. 2026-11-01..2026-11-28")
            window = (config.time_option(register, start, "--accessed-between"), config.time_option(register, end, "--accessed-between"))
        if users is None:
            result = breach.attach(register, breach_id, options.actor(actor), category=category, accessed_between=window)
        else:
            with readers.source(users) as path:
                result = breach.attach(register, breach_id, options.actor(actor), users_path=path, category=category,
                                       accessed_between=window)
    out.document(result)


@app.command("mark-sent")
def mark_sent(
    breach_id: BreachId,
    users: Users = None,
    channel: Annotated[Optional[Channel], typer.Option("--channel", help="How these people were told.", show_default=False)] = None,
    clock: Annotated[Optional[str], typer.Option("--clock", help="Or: the report a clock asks for was made (see `breach show`).", show_default=False)] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="When (default: now).", show_default=False)] = None,
    late_reason: Annotated[Optional[str], typer.Option("--late-reason", help="With --clock: why the report was late (GDPR Art. 33(1)).", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record who was told, when and how (--users and --channel), or that an authority was (--clock)."""
    from pipolicy_cli import breach, readers
    from pipolicy_cli.errors import InvalidInput

    out = options.output(fmt, as_json)
    if (clock is None) == (users is None):
        raise InvalidInput("--users/--clock: give one of them")
    with options.open_register(db) as register:
        if clock is not None:
            result = breach.report_sent(register, breach_id, clock, options.actor(actor), at=at, late_reason=late_reason)
        else:
            if channel is None:
                raise InvalidInput("--channel: say how they were told")
            with readers.source(users) as path:
                result = breach.mark_sent(register, breach_id, options.actor(actor), users_path=path, channel=channel.value, at=at)
    out.document(result)


@app.command("draft")
def draft(
    breach_id: BreachId,
    audience: Annotated[Audience, typer.Option("--audience", help="Each affected person, the public, or the regulator.")],
    lang: Annotated[Lang, typer.Option("--lang", help="zh or en.")] = Lang.zh,
    channel: Annotated[Channel, typer.Option("--channel", help="For individuals: e-mail, SMS, letter or push.")] = Channel.email,
    fmt: Annotated[Optional[DraftFormat], typer.Option("--format", "-f", help="md, txt, eml (e-mail) or json; default: eml for e-mail, md for letters, txt for SMS and push; md for the public and the regulator.", show_default=False)] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Individuals: a folder (subfolders of 1,000 files), a .mbox or a .zip; others: a file. Default: stdout.", show_default=False)] = None,
    template_dir: Annotated[Optional[Path], typer.Option("--template-dir", help="The company's own templates (breach/NAME.j2), used before the shipped ones.", show_default=False)] = None,
    allow_incomplete: Annotated[bool, typer.Option("--allow-incomplete", help="Write a notice missing required content, marked DRAFT.")] = False,
    db: options.Db = None, actor: options.Actor = None,
) -> None:
    """Draft the notices; refused (exit 5) while the profile's required content is missing."""
    import sys

    from pipolicy_cli import notices
    from pipolicy_cli.cli.output import Output
    from pipolicy_cli.errors import InvalidInput

    out = Output("json")
    with options.open_register(db) as register:
        drafter = notices.Drafter(register, breach_id, lang.value, template_dir=template_dir, allow_incomplete=allow_incomplete)
        if audience is Audience.individuals:
            chosen = fmt.value if fmt else notices.DEFAULT_FORMAT[channel.value]
            result = notices.draft_individuals(drafter, channel.value, chosen, out_path.expanduser() if out_path else None,
                                               sys.stdout.buffer)
            with register.transaction(options.actor(actor), "breach draft") as tx:
                tx.record("draft", "breaches", breach_id, detail={"audience": "individuals", "channel": channel.value,
                                                                  "notices": result["notices"]})
            out.message(f"{result['notices']} notice{'s' if result['notices'] != 1 else ''} written to {result['written_to']}"
                        + (f"; {result['not_reachable_by_channel']} affected people have no {channel.value} address"
                           if result["not_reachable_by_channel"] else ""))
        else:
            chosen = fmt.value if fmt else "md"
            if chosen == "eml":
                raise InvalidInput("--format eml: only for individuals' e-mail")
            if chosen == "json":
                import json

                text = json.dumps(drafter.regulator_json() if audience is Audience.regulator else
                                  {"draft": drafter.draft, "lang": lang.value, "text": drafter.document(audience.value)},
                                  ensure_ascii=False, indent=2) + "\n"
            else:
                text = drafter.document(audience.value)
            if out_path is None:
                out.text(text)
            else:
                from pipolicy_cli.paths import replaced_whole

                path = out_path.expanduser()
                with replaced_whole(path, text=True) as handle:
                    handle.write(text)
                out.message(f"wrote {path}")
        if drafter.draft:
            out.warning(f"marked DRAFT: missing {', '.join(drafter.breach['missing_content'])}")
