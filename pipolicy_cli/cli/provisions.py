"""`recipient add|list|assign`, `share|transfer|disclose log|list`, `transfer thresholds`, `pia add|list`."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode

recipient_app = typer.Typer(help="Who data is provided to: affiliates, partners, processors, acquirers, authorities.", no_args_is_help=True)
share_app = typer.Typer(help="Providing data to another handler, or entrusting a processor; PIPL Articles 23 and 21.", no_args_is_help=True)
transfer_app = typer.Typer(help="Transfers abroad and the CAC's volume thresholds; PIPL Articles 38 to 40.", no_args_is_help=True)
disclose_app = typer.Typer(help="Public disclosure of personal information; PIPL Article 25.", no_args_is_help=True)
pia_app = typer.Typer(help="Personal information impact assessments, kept three years; PIPL Articles 55 and 56.", no_args_is_help=True)


class RecipientKind(str, Enum):
    affiliate = "affiliate"
    partner = "partner"
    processor = "processor"
    acquirer = "acquirer"
    authority = "authority"


class Mechanism(str, Enum):
    security_assessment = "security-assessment"
    standard_contract = "standard-contract"
    certification = "certification"
    exempt = "exempt"


class Reason(str, Enum):
    merger = "merger"
    acquisition = "acquisition"
    bankruptcy = "bankruptcy"


OptionalUser = Annotated[Optional[str], typer.Argument(metavar="[USER]", help="The person (user_id), or use --users.", show_default=False)]
Users = Annotated[Optional[str], typer.Option("--users", help="A file of user ids (one per line, or NDJSON/CSV with user_id); '-' reads stdin.", show_default=False)]
Categories = Annotated[str, typer.Option("--categories", help="The categories provided, comma-separated.")]
Purpose = Annotated[str, typer.Option("--purpose", help="Why (see `pipolicy policy purposes`).")]
Basis = Annotated[str, typer.Option("--basis", help="consent, or a basis code (see `pipolicy policy bases`).")]
Pia = Annotated[Optional[int], typer.Option("--pia", help="The impact assessment covering this (pipolicy pia list).", show_default=False)]
At = Annotated[Optional[str], typer.Option("--at", help="When (default: now).", show_default=False)]


@recipient_app.command("add")
def recipient_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The recipient's name.")],
    kind: Annotated[RecipientKind, typer.Option("--kind", help="What the recipient is to the company.")],
    agreement: Annotated[Optional[str], typer.Option("--agreement", help="The contract or confidentiality agreement on file.", show_default=False)] = None,
    agreement_date: Annotated[Optional[str], typer.Option("--agreement-date", help="When it was signed (YYYY-MM-DD).", show_default=False)] = None,
    country: Annotated[Optional[str], typer.Option("--country", help="Where it is (two-letter code).", show_default=False)] = None,
    contact: Annotated[Optional[str], typer.Option("--contact", help="How people reach it (told in an assignment).", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Register a recipient of personal data. Prints its id."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(provisions.add_recipient(register, options.actor(actor), name=name, kind=kind.value, agreement=agreement,
                                              agreement_date=agreement_date, country=country, contact=contact))


@recipient_app.command("list")
def recipient_list(
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """The recipients, with their agreements."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(provisions.recipients(register), list(provisions.RECIPIENT_COLUMNS))


@recipient_app.command("assign")
def recipient_assign(
    acquirer: Annotated[str, typer.Argument(metavar="ACQUIRER", help="The acquirer's name (recipient add --kind acquirer).")],
    reason: Annotated[Reason, typer.Option("--reason", help="Why the data changes hands.")],
    keeps_policy: Annotated[bool, typer.Option("--keeps-policy/--new-policy", help="Whether the acquirer stays bound by this policy (else everyone is re-asked).")] = True,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record that the register's data goes to an acquirer, and list every person to tell or re-ask (policy 3.2, and the profile's law)."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        done = provisions.assign(register, options.actor(actor), acquirer, reason.value, keeps_policy)
        count = out.rows(provisions.assignment_list(register, keeps_policy),
                         ["user_id", "status", "notify", "reask", "consents_to_reask", "reachable_by"])
    out.message(f"assignment {done['assignment']} to {done['acquirer']} ({done['reason']}): {count} people to tell"
                + ("" if keeps_policy else ", each to be asked for consent again") + f" ({done['source']})")


def _log(kind: str, user: Optional[str], users: Optional[str], by: options.By, db, actor, fmt, as_json, **details) -> None:
    from pipolicy_cli import provisions, readers
    from pipolicy_cli.errors import InvalidInput

    out = options.output(fmt, as_json)
    if (user is None) == (users is None):
        raise InvalidInput("USER/--users: give one of them")
    with options.open_register(db) as register:
        if users is None:
            result = provisions.log(register, kind, options.actor(actor), user=options.find_user(register, user, by), **details)
        else:
            with readers.source(users) as path:
                result = provisions.log(register, kind, options.actor(actor), users_path=path, **details)
    out.document(result)
    if result["flagged"]:
        out.warning(f"{result['flagged']} of {result['recorded']} recorded with findings: see `pipolicy access violations`")


@share_app.command("log")
def share_log(
    user: OptionalUser = None,
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives it (pipolicy recipient list).")] = ...,
    categories: Categories = ..., purpose: Purpose = ..., basis: Basis = "consent", pia: Pia = None, at: At = None,
    users: Users = None, by: options.ByOpt = options.By.user_id,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record data provided to a recipient; what it lacks (consent, agreement, assessment) is flagged, never refused."""
    _log("share", user, users, by, db, actor, fmt, as_json, categories=categories, purpose=purpose, basis=basis,
         recipient_name=recipient, pia_id=pia, at=at)


@transfer_app.command("log")
def transfer_log(
    user: OptionalUser = None,
    country: Annotated[str, typer.Option("--country", help="Where the data goes (two-letter code).")] = ...,
    recipient: Annotated[str, typer.Option("--recipient", help="Who receives it abroad.")] = ...,
    mechanism: Annotated[Mechanism, typer.Option("--mechanism", help="The legal mechanism (PIPL Art. 38).")] = ...,
    categories: Categories = ..., purpose: Purpose = "service", basis: Basis = "consent", pia: Pia = None, at: At = None,
    sensitive: Annotated[bool, typer.Option("--sensitive", help="Sensitive personal information (also when a category is).")] = False,
    users: Users = None, by: options.ByOpt = options.By.user_id,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record a transfer abroad; it needs the separate cross-border consent (Art. 39) or a legal basis."""
    _log("transfer", user, users, by, db, actor, fmt, as_json, categories=categories, purpose=purpose, basis=basis,
         recipient_name=recipient, pia_id=pia, at=at, country=country, mechanism=mechanism.value, sensitive=sensitive)


@disclose_app.command("log")
def disclose_log(
    user: OptionalUser = None,
    categories: Categories = ..., purpose: Purpose = ..., basis: Basis = "consent", pia: Pia = None, at: At = None,
    channel: Annotated[Optional[str], typer.Option("--channel", help="Where it was published.", show_default=False)] = None,
    users: Users = None, by: options.ByOpt = options.By.user_id,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record a public disclosure; it needs express, separate consent or a legal basis (Art. 25)."""
    _log("disclose", user, users, by, db, actor, fmt, as_json, categories=categories, purpose=purpose, basis=basis,
         pia_id=pia, at=at, channel=channel)


def _lister(kind: str, app: typer.Typer) -> None:
    def list_(
        limit: options.Limit = None,
        db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
    ) -> None:
        from pipolicy_cli import provisions

        out = options.output(fmt, as_json)
        with options.open_register(db) as register:
            out.rows(provisions.entries(register, kind, limit))

    list_.__doc__ = f"Every {'disclosure' if kind == 'disclose' else kind} recorded, oldest first."
    app.command("list")(list_)


_lister("share", share_app)
_lister("transfer", transfer_app)
_lister("disclose", disclose_app)


@transfer_app.command("thresholds")
def transfer_thresholds(
    year: Annotated[Optional[int], typer.Option("--year", min=2000, max=2999, help="The calendar year (default: this one).", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """People whose data went abroad this year against the CAC thresholds; exit 5 when the mechanisms in use do not suffice."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        result = provisions.thresholds(register, year)
    out.document(result)
    if not result["sufficient"]:
        raise typer.Exit(ExitCode.ATTENTION)


@pia_app.command("add")
def pia_add(
    subject: Annotated[str, typer.Option("--subject", help="What was assessed.")],
    covers: Annotated[str, typer.Option("--covers", help="sharing, entrusting, transfer, disclosure, sensitive, automated-decision, other (comma-separated).")],
    conclusion: Annotated[str, typer.Option("--conclusion", help="What the assessment concluded.")],
    file: Annotated[Optional[Path], typer.Option("--file", help="The report: its path and SHA-256 are kept.", show_default=False)] = None,
    done_on: Annotated[Optional[str], typer.Option("--done-on", help="When it was completed (default: today).", show_default=False)] = None,
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """Record an impact assessment (kept at least 3 years: PIPL Art. 56). Prints its id."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.document(provisions.add_pia(register, options.actor(actor), subject=subject, covers=covers, conclusion=conclusion,
                                        file=file.expanduser() if file else None, done_on=done_on))


@pia_app.command("list")
def pia_list(
    db: options.Db = None, actor: options.Actor = None, fmt: options.FormatOpt = Format.auto, as_json: options.Json = False,
) -> None:
    """The impact assessments."""
    from pipolicy_cli import provisions

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(provisions.pias(register), list(provisions.PIA_COLUMNS))
