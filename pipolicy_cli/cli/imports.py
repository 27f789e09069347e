"""How every import reports: the problems on stderr, the counts on stdout."""

from pipolicy_cli.cli.output import Output
from pipolicy_cli.errors import InvalidInput


def report_import(out: Output, result, skip_invalid: bool, *keys: str) -> None:
    lines = list(result.problems)
    shown = len({line.split(":", 1)[0] for line in lines})
    if result.invalid > shown:
        lines.append(f"... and {result.invalid - shown} more invalid rows")
    if result.invalid and not skip_invalid:
        raise InvalidInput(
            f"{result.invalid} of {result.rows} rows are invalid; nothing was written (--skip-invalid writes the rest)", lines
        )
    for line in lines:
        out.warning(f"skipped {line}")
    for note in result.notes:
        out.warning(note)
    out.document(result.summary(*keys))
