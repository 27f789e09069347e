"""Console-script entry point.

`--version` is answered here, before typer (and everything it pulls in) is
imported: monitoring and packaging scripts call it often. Every other command
first hides its arguments from the process title (`proctitle`).
"""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from pipolicy_cli import __version__

        sys.stdout.write(f"pipolicy {__version__}\n")
        return
    from pipolicy_cli.proctitle import hide_arguments

    hide_arguments(sys.argv[1:])
    from pipolicy_cli.cli.app import run

    run()
