"""The README's command reference, generated from the CLI itself.

`python -m pipolicy_cli.cli.reference --write README.md` refreshes the part of
the README between the reference markers; a test fails when it is stale.
"""

import sys
from pathlib import Path

BEGIN = "<!-- BEGIN COMMAND REFERENCE (generated: python -m pipolicy_cli.cli.reference --write README.md) -->"
END = "<!-- END COMMAND REFERENCE -->"


def render() -> str:
    from typer.testing import CliRunner

    from pipolicy_cli.cli.app import app
    from pipolicy_cli.cli.completion_scripts import tree

    app.rich_markup_mode = None  # plain help, the same on any terminal
    runner = CliRunner()
    parts = []
    for node in tree(app):
        args = [*node.path.split(), "--help"] if node.path else ["--help"]
        result = runner.invoke(app, args, prog_name="pipolicy", env={"COLUMNS": "80", "NO_COLOR": "1"})
        title = f"pipolicy {node.path}".strip()
        parts.append(f"### `{title}`\n\n```text\n{result.stdout.rstrip()}\n```\n")
    return "\n".join(parts)


def splice(readme: str, reference: str) -> str:
    head, found, rest = readme.partition(BEGIN)
    if not found:
        raise ValueError("README has no command reference markers")
    _, found, tail = rest.partition(END)
    if not found:
        raise ValueError("README's command reference has no end marker")
    return f"{head}{BEGIN}\n\n{reference}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        path = Path(argv[1])
        path.write_text(splice(path.read_text(encoding="utf-8"), render()), encoding="utf-8")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
