"""`policy purposes|categories|scopes|bases`, `policy version add|list`, `policy notify-list|reconsent-list`."""

from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format

app = typer.Typer(help="The policy: its catalog, its versions, who to tell and who to ask again.", no_args_is_help=True)
version_app = typer.Typer(help="Versions of the policy and what each changed.", no_args_is_help=True)
app.add_typer(version_app, name="version")


def _catalog_command(name: str, doc: str, columns: list[str]):
    def command(
        db: options.Db = None,
        actor: options.Actor = None,
        fmt: options.FormatOpt = Format.auto,
        as_json: options.Json = False,
    ) -> None:
        from pipolicy_cli import policy

        out = options.output(fmt, as_json)
        with options.open_register(db) as register:
            out.rows(getattr(policy, name)(register), columns)

    command.__doc__ = doc
    app.command(name)(command)


_catalog_command("purposes", "The purposes of use (policy 1.(3)), each with its default basis.", ["code", "default_basis", "title", "clause"])
_catalog_command("categories", "The categories of data the policy names (policy 1.(1)).", ["code", "title", "clause"])
_catalog_command("scopes", "Uses that need a consent of their own: sharing, disclosure, sensitive, cross-border, location, tracking.", ["code", "title", "clause"])
_catalog_command("bases", "The cases needing no authorization (policy 1.4) and their basis in the profile's law; flagged: none.", ["code", "law", "flagged", "clause", "title", "source"])


@version_app.command("add")
def version_add(
    version: Annotated[str, typer.Argument(help="The version's name, e.g. 2026-11.")],
    effective: Annotated[str, typer.Option("--effective", help="When it takes effect (register zone if none given).")],
    changes: Annotated[
        Optional[str], typer.Option("--changes", help="What it changes, comma-separated: purposes, methods, categories.", show_default=False)
    ] = None,
    reduces_rights: Annotated[bool, typer.Option("--reduces-rights", help="It reduces people's rights (needs express consent, policy 8).")] = False,
    summary: Annotated[Optional[str], typer.Option("--summary", help="What changed, in a sentence.", show_default=False)] = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Record a version of the policy; one that needs fresh consent supersedes older consents from its effective time."""
    from pipolicy_cli import policy

    out = options.output(fmt, as_json)
    kinds = [part.strip() for part in (changes or "").split(",") if part.strip()]
    with options.open_register(db) as register:
        row = policy.add_version(register, version, effective, kinds, reduces_rights, summary, options.actor(actor))
    out.document(row)
    if row["needs_reconsent"] and not out.machine:
        out.hint("consents given before it stop counting from its effective time: see `pipolicy policy reconsent-list`")


@version_app.command("list")
def version_list(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Every recorded version, oldest first."""
    from pipolicy_cli import policy

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(policy.versions(register), ["id", "version", "effective_at", "changes", "reduces_rights", "needs_reconsent", "summary"])


@app.command("notify-list")
def notify_list(
    version: Annotated[Optional[str], typer.Argument(help="The version (default: the latest).", show_default=False)] = None,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Active users to tell about a version (policy 8), with the channels that reach them."""
    from itertools import islice

    from pipolicy_cli import policy

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        rows = policy.notify_list(register, version)
        out.rows(islice(rows, limit), ["user_id", "name", "phone", "email", "channels", "version", "needs_reconsent"])


@app.command("reconsent-list")
def reconsent_list(
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Active users whose consent predates a version needing fresh consent (PIPL Art. 14)."""
    from itertools import islice

    from pipolicy_cli import policy

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(islice(policy.reconsent_list(register), limit), ["user_id", "code", "granted_at", "superseded_by"])
