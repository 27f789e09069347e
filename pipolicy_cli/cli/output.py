"""The one place that prints.

Data goes to stdout: a Rich table on a terminal, JSON when piped (`auto`), or
what `--format` asks for. Messages, hints, warnings and errors go to stderr.
Rich is imported only when it draws something, and never interprets markup in
the data: names and notice text may contain `[` and `]`.
"""

import csv
import json
import os
import sys
from dataclasses import dataclass
from enum import Enum
from typing import IO, Any, Iterable


class Format(str, Enum):
    auto = "auto"
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


@dataclass
class Environment:
    """The streams and what they are connected to; tests can pretend either way."""

    stdout: IO[str]
    stderr: IO[str]
    stdout_isatty: bool
    stderr_isatty: bool
    no_color: bool

    @classmethod
    def current(cls) -> "Environment":
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdout_isatty=_isatty(sys.stdout),
            stderr_isatty=_isatty(sys.stderr),
            no_color="NO_COLOR" in os.environ,
        )


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


class Output:
    """Rendering for one command run. The last one made answers for error reports."""

    current: "Output | None" = None

    def __init__(self, fmt: Format | str = Format.auto, env: Environment | None = None):
        self.env = env or Environment.current()
        fmt = Format(fmt)
        if fmt is Format.auto:
            fmt = Format.table if self.env.stdout_isatty else Format.json
        self.format = fmt
        Output.current = self

    @property
    def machine(self) -> bool:
        return self.format in (Format.json, Format.ndjson, Format.csv)

    # stdout -------------------------------------------------------------

    def rows(self, rows: Iterable[dict[str, Any]], columns: list[str] | None = None, title: str | None = None) -> int:
        """Print rows; returns how many. JSON is a top-level array, streamed."""
        out = self.env.stdout
        count = 0
        if self.format is Format.json:
            out.write("[")
            for count, row in enumerate(rows, 1):
                out.write(("\n" if count == 1 else ",\n") + to_json(row))
            out.write("\n]\n" if count else "]\n")
        elif self.format is Format.ndjson:
            for count, row in enumerate(rows, 1):
                out.write(to_json(row) + "\n")
        elif self.format is Format.csv:
            writer = None
            for count, row in enumerate(rows, 1):
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=columns or list(row), extrasaction="ignore", lineterminator="\n")
                    writer.writeheader()
                writer.writerow({key: _cell(value) for key, value in row.items()})
            if writer is None and columns:
                csv.DictWriter(out, fieldnames=columns, lineterminator="\n").writeheader()
        else:
            materialised = list(rows)
            count = len(materialised)
            self._table(materialised, columns, title)
        out.flush()
        return count

    def document(self, document: dict[str, Any], title: str | None = None) -> None:
        """One object: JSON in machine modes, a two-column table for people."""
        if self.machine:
            self.env.stdout.write(to_json(document, indent=2) + "\n")
            return
        pairs = [{"field": key, "value": _cell(value)} for key, value in _flatten(document)]
        self._table(pairs, ["field", "value"], title, header=False)

    def text(self, text: str) -> None:
        """Prose meant for stdout (quickstart's narration, a document's body)."""
        self.env.stdout.write(text if text.endswith("\n") else text + "\n")
        self.env.stdout.flush()

    def _table(self, rows: list[dict[str, Any]], columns: list[str] | None, title: str | None, header: bool = True) -> None:
        columns = columns or (list(rows[0]) if rows else [])
        if not self.env.stdout_isatty:
            from tabulate import tabulate

            body = [[_cell(row.get(column)) for column in columns] for row in rows]
            if title:
                self.env.stdout.write(title + "\n")
            if header:
                self.env.stdout.write(tabulate(body, headers=columns, tablefmt="simple", disable_numparse=True) + "\n")
            else:
                self.env.stdout.write(tabulate(body, tablefmt="plain", disable_numparse=True) + "\n")
            if not rows and header:
                self.env.stdout.write("(no rows)\n")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_header=header, header_style="bold", title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(row.get(column))) for column in columns))
        self._console(self.env.stdout).print(table)
        if not rows and header:
            self.message("(no rows)")

    def _console(self, stream: IO[str]):
        from rich.console import Console

        return Console(file=stream, no_color=self.env.no_color, highlight=False, soft_wrap=False)

    # stderr -------------------------------------------------------------

    def message(self, text: str) -> None:
        self.env.stderr.write(text + "\n")
        self.env.stderr.flush()

    def hint(self, text: str) -> None:
        self.message(f"hint: {text}")

    def warning(self, text: str) -> None:
        self.message(f"warning: {text}")

    def error(self, text: str, code: int, kind: str, problems: list[str] | None = None) -> None:
        if problems and problems != [text]:
            for problem in problems:
                self.message(problem)
        self.message(f"pipolicy: error: {text}")
        if self.machine:
            payload = {"error": {"message": text, "kind": kind, "exit_code": code}}
            if problems:
                payload["error"]["problems"] = problems
            self.env.stderr.write(to_json(payload) + "\n")
            self.env.stderr.flush()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(item) for item in value)
    if isinstance(value, dict):
        return to_json(value)
    return str(value)


def _flatten(document: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _flatten(value, name + ".")
        else:
            yield name, value
