"""How every import runs and reports: the problems on stderr, the counts on stdout."""

from typing import Callable, Optional

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format, Output
from pipolicy_cli.errors import InvalidInput


def run_import(importer: Callable, file: str, input_format: Optional[str], skip_invalid: bool, db: Optional[str],
               actor: Optional[str], fmt: Format, as_json: bool, *keys: str, **settings) -> None:
    """`importer(register, path, fmt, actor, skip_invalid=..., **settings)` on FILE (or stdin), then its report."""
    from pipolicy_cli import readers

    out = options.output(fmt, as_json)
    with options.open_register(db) as register, readers.source(file) as path:
        result = importer(register, path, readers.detect(path, input_format), options.actor(actor),
                          skip_invalid=skip_invalid, **settings)
    report_import(out, result, skip_invalid, *keys)


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
