"""Options every command shares, and turning them into what the core needs."""

import getpass
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.catalog import profile_codes
from pipolicy_cli.cli.output import Format, Output

Jurisdiction = Enum("Jurisdiction", {code: code for code in profile_codes()}, type=str)

Db = Annotated[
    Optional[Path],
    typer.Option("--db", help="The register file (else PIPOLICY_DB, the config file, the user data dir).", show_default=False),
]
Actor = Annotated[
    Optional[str],
    typer.Option("--actor", help="Who is acting, for the audit trail (default: the OS user).", show_default=False),
]
FormatOpt = Annotated[
    Format,
    typer.Option("--format", "-f", help="auto: a table on a terminal, JSON when piped.", case_sensitive=False),
]
Json = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
Limit = Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many rows.", show_default=False)]
Reveal = Annotated[bool, typer.Option("--reveal", help="Show personal values unmasked (audited).")]


def actor(name: str | None) -> str:
    if name:
        return name.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def output(fmt: Format, as_json: bool = False) -> Output:
    return Output(Format.json if as_json else fmt)


def location(db: Path | None):
    from pipolicy_cli import paths

    return paths.locate_register(str(db) if db else None)


def open_register(db: Path | None):
    from pipolicy_cli.register import Register

    register = Register.open(location(db).path)
    # An erasure whose WAL checkpoint a reader blocked, or whose command was killed after the commit, is
    # finished by whichever command comes next.
    if register.conn.execute("SELECT 1 FROM erasures WHERE scrub_pending = 1 LIMIT 1").fetchone():
        from pipolicy_cli import erasure

        erasure.finish_pending(register)
    return register


Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (needed off a terminal).")]
Override = Annotated[
    Optional[str],
    typer.Option("--override", metavar="REASON", help="Close although systems have not confirmed their tasks (they are cancelled); the reason is audited.", show_default=False),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")]


def confirm(question: str, yes: bool) -> None:
    """Destructive commands ask on a terminal; off a terminal (cron, scripts) they need --yes."""
    from pipolicy_cli.errors import InvalidInput

    if yes:
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise InvalidInput("--yes: needed to do this off a terminal (or try --dry-run first)")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


class By(str, Enum):
    user_id = "user-id"
    phone = "phone"
    email = "email"
    id_number = "id-number"


UserArg = Annotated[str, typer.Argument(metavar="USER", help="The user_id, or the value named by --by ('-' reads it from stdin).")]
ByOpt = Annotated[By, typer.Option("--by", help="What USER is.")]

InputFile = Annotated[str, typer.Argument(metavar="FILE", help="CSV, JSON array or NDJSON; '-' reads stdin.")]
InputFormat = Annotated[
    Optional[str], typer.Option("--input-format", help="csv, json or ndjson (default: from the name or content).", show_default=False)
]
SkipInvalid = Annotated[bool, typer.Option("--skip-invalid", help="Write the valid rows and report the rest.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, max=1_000_000, help="Rows per write transaction.")]
Jobs = Annotated[
    Optional[int],
    typer.Option("--jobs", min=1, max=64, help="Processes validating rows (default: 1 for small files, else the free cores up to 4).", show_default=False),
]


def stdin_values(values: dict[str, Optional[str]]) -> dict[str, Optional[str]]:
    """Replace the one value given as '-' with a line from stdin (out of shell history and ps)."""
    from pipolicy_cli.errors import UsageError

    dashed = [key for key, value in values.items() if value == "-"]
    if len(dashed) > 1:
        raise UsageError(f"only one value can be read from stdin; got '-' for {', '.join(dashed)}")
    if dashed:
        values[dashed[0]] = sys.stdin.readline().rstrip("\r\n")
    return values


def find_user(register, user: str, by: By):
    """The user named on the command line: USER read per --by, '-' from stdin."""
    from pipolicy_cli import users

    return users.find(register, stdin_values({"user": user})["user"], by.value)
