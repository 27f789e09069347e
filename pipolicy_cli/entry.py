"""Console-script entry point.

`--version` is answered here, before typer (and everything it pulls in) is
imported: monitoring and packaging scripts call it often.
"""

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from pipolicy_cli import __version__

        sys.stdout.write(f"pipolicy {__version__}\n")
        return
    from pipolicy_cli.cli.app import run

    run()
