"""`completion bash|zsh|fish`: print a static completion script (generated in completion_scripts)."""

from enum import Enum
from typing import Annotated

import typer


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")]) -> None:
    """Print a completion script for your shell."""
    from pipolicy_cli.cli.app import app
    from pipolicy_cli.cli.completion_scripts import render, tree
    from pipolicy_cli.cli.output import Output

    Output("table").text(render(shell.value, tree(app)))


def attach(app: typer.Typer) -> None:
    app.command()(completion)
