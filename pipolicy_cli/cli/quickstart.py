"""`quickstart`: a demo register, walked through the main job step by step."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.errors import InvalidInput


def steps(folder: Path) -> list[tuple[str, str, list[str]]]:
    """(title, what it shows, command line) for each step, on the demo register in `folder`."""
    db = ["--db", str(folder / "register.db")]
    return [
        (
            "Create the register",
            "One SQLite file, readable only by you, with the PIPL profile. The HMAC key for "
            "erasure tombstones is kept in a separate 0600 file.",
            ["init", "--jurisdiction", "pipl", "--key-file", str(folder / "register.key"), *db],
        ),
        (
            "Say who answers for the data",
            "The contact and the protection officer go into every notice and export (policy section 9).",
            ["config", "set", "organisation", "Demo IoT Co., Ltd.", *db],
        ),
        ("", "", ["config", "set", "contact", "Customer service hotline 10086-0000, privacy@demo.example", *db]),
        ("", "", ["config", "set", "dpo", "Wang Fang, protection officer, dpo@demo.example", *db]),
        (
            "Read the settings back",
            "Each value says where it comes from: the register, the profile, or the environment.",
            ["config", "show", *db],
        ),
        (
            "Ask how the register is",
            "Counts per table, the schema, the profile, and the head of the audit chain. "
            "`--check` also verifies the chain, for monitoring.",
            ["status", "--check", *db],
        ),
        (
            "See the audit trail",
            "Every change above is an event: who, which command, which object and fields, never a personal value.",
            ["audit", "list", *db],
        ),
        (
            "Prove nothing was altered",
            "Each event's hash covers the one before it; editing, deleting or reordering any event is caught.",
            ["audit", "verify", *db],
        ),
        (
            "Anchor the chain outside the register",
            "Keep this count and hash elsewhere (a ticket, a signed mail); `audit verify --head HASH` later "
            "proves the register still contains it, so even a cut-off tail is caught.",
            ["audit", "head", *db],
        ),
    ]


def quickstart(
    folder: Annotated[
        Optional[Path],
        typer.Option("--dir", help="Where to make the demo register (default: a new temporary folder).", show_default=False),
    ] = None,
) -> None:
    """Make a demo register and walk through the main job, step by step."""
    import tempfile

    from pipolicy_cli.cli.output import Output

    out = Output("table")
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="pipolicy-quickstart-"))
    else:
        folder = folder.expanduser().absolute()
        if folder.exists() and any(folder.iterdir()):
            raise InvalidInput(f"--dir: {folder} is not empty; name a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.text(f"pipolicy quickstart: a demo register in {folder}\n")
    all_steps = steps(folder)
    numbered = sum(1 for title, _, _ in all_steps if title)
    number = 0
    for title, explanation, argv in all_steps:
        if title:
            number += 1
            out.text(f"\nStep {number} of {numbered}: {title}\n  {explanation}")
        out.text(f"$ pipolicy {shlex.join([*argv, '--format', 'table'])}")
        _run([*argv, "--format", "table"])
    out.text(
        f"\nDone. The demo register stays at {folder / 'register.db'}; try\n"
        f"  pipolicy status --db {folder / 'register.db'}\n"
        "Run `pipolicy --help` for every command."
    )


def _run(argv: list[str]) -> None:
    """Run one step through the real CLI, in this process."""
    from pipolicy_cli.cli.app import app

    code = app(args=argv, prog_name="pipolicy", standalone_mode=False)
    if code not in (None, 0):
        raise typer.Exit(code)


def attach(app: typer.Typer) -> None:
    app.command()(quickstart)
