"""Reading import files: CSV, a JSON array or NDJSON, strictly and in constant memory.

`records()` yields `(row_number, dict)` or `(row_number, RowProblem)`. Row N is
the Nth record (for NDJSON, line N). A fault that makes the rest of the file
untrustworthy (an unterminated quote, broken JSON in an array, bad UTF-8 in
CSV or a JSON array) raises `InvalidInput`: nothing is imported from such a file.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipolicy_cli import paths
from pipolicy_cli.errors import InvalidInput, NotFound

FORMATS = ("csv", "json", "ndjson")
UNPAIRED_SURROGATE = "holds an unpaired surrogate escape (\\uD800-\\uDFFF), which is not text"
# A JSON escape of a surrogate: only where one occurs is a record walked to find an unpaired one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
CSV_FIELD_LIMIT = 64 * 1024
_CHUNK = 1 << 16
MAX_RECORD = 16 << 20


@dataclass(frozen=True)
class RowProblem:
    field: str
    reason: str


@contextmanager
def source(name: str) -> Iterator[Path]:
    """A readable path: the file itself, or stdin spooled to a private temp file."""
    if name != "-":
        path = Path(name).expanduser()
        if not path.is_file():
            raise NotFound(f"input: no such file {path}")
        yield path
        return
    folder = paths.scratch_folder("stdin")
    spool = folder / "stdin"
    try:
        fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, _CHUNK)
        yield spool
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def detect(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise InvalidInput(f"--input-format: must be one of {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "ndjson"
    return "csv"


def records(path: Path, fmt: str, fields: tuple[str, ...] | None = None) -> Iterator[tuple[int, dict | RowProblem]]:
    """`fields`: the names a CSV header must use at least one of."""
    if fmt == "csv":
        return _csv(path, fields)
    if fmt == "ndjson":
        return _ndjson(path)
    return _json_array(path)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered raw lines, without a leading byte-order mark."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield number, raw


def ndjson_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank NDJSON lines, unparsed: worker processes parse them (`parse_line`)."""
    for number, raw in _lines(path):
        if raw.strip():
            yield number, raw


def parse_line(raw: bytes) -> dict | RowProblem:
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return RowProblem("row", "not valid UTF-8")
    except (json.JSONDecodeError, RecursionError):
        return RowProblem("row", "not valid JSON")
    if not isinstance(value, dict):
        return RowProblem("row", "not a JSON object")
    if _SURROGATE_ESCAPE_BYTES.search(raw) and unpaired_surrogate(value):
        return RowProblem("row", UNPAIRED_SURROGATE)
    return value


def unpaired_surrogate(value) -> bool:
    """Whether decoded JSON holds a string with an unpaired surrogate (`"\\ud800"` alone): valid JSON,
    but no UTF-8 text, so it could be neither stored nor printed."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(unpaired_surrogate(key) or unpaired_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(unpaired_surrogate(item) for item in value)
    return False


def _ndjson(path: Path) -> Iterator[tuple[int, dict | RowProblem]]:
    for number, raw in ndjson_lines(path):
        yield number, parse_line(raw)


def _decoded_lines(path: Path) -> Iterator[str]:
    for number, raw in _lines(path):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"input: line {number}: not valid UTF-8") from None


def _csv(path: Path, fields: tuple[str, ...] | None = None) -> Iterator[tuple[int, dict | RowProblem]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(_decoded_lines(path), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InvalidInput(f"input: the CSV header is broken ({exc})") from None
    header = [name.strip() for name in header]
    if len(set(header)) != len(header) or not all(header):
        raise InvalidInput("input: the CSV header has empty or repeated column names")
    if fields is not None and not set(header) & set(fields):
        # Most likely a file without its header row: the names are the first person's values, so none is repeated.
        raise InvalidInput(f"input: the CSV header names none of the fields ({', '.join(fields)}); is the header row missing?")
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInput(f"input: row {number}: broken CSV ({exc}); nothing imported") from None
        if not row:
            number -= 1
            continue
        if len(row) != len(header):
            yield number, RowProblem("row", f"has {len(row)} fields, the header has {len(header)}")
            continue
        yield number, dict(zip(header, row))


def _json_array(path: Path) -> Iterator[tuple[int, dict | RowProblem]]:
    """Stream the objects of a top-level JSON array without loading the file."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    buffer, position, number, started, done = "", 0, 0, False, False
    with path.open("rb") as handle:
        first = True
        while True:
            chunk = handle.read(_CHUNK)
            if first and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
            first = False
            try:
                buffer = buffer[position:] + utf8.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                raise InvalidInput("input: not valid UTF-8") from None
            position = 0
            while True:
                position = _skip_space(buffer, position)
                if position >= len(buffer):
                    break
                if not started:
                    if buffer[position] != "[":
                        raise InvalidInput("input: a JSON file must hold one array of objects")
                    started, position = True, position + 1
                    continue
                if done:
                    raise InvalidInput("input: text after the end of the JSON array")
                char = buffer[position]
                if char == "]":
                    done, position = True, position + 1
                    continue
                start = position  # where to resume if the element is cut off by the chunk's end
                if char == ",":
                    if not number:
                        raise InvalidInput("input: row 1: unexpected ',' in the JSON array")
                    position = _skip_space(buffer, position + 1)
                    if position >= len(buffer) and chunk:
                        position = start
                        break
                    if position < len(buffer) and buffer[position] == "]":
                        raise InvalidInput(f"input: row {number}: trailing comma in the JSON array")
                elif number:
                    raise InvalidInput(f"input: row {number + 1}: expected ',' or ']' in the JSON array")
                try:
                    value, end = decoder.raw_decode(buffer, position)
                except (json.JSONDecodeError, RecursionError):
                    if chunk:
                        position = start
                        break
                    raise InvalidInput(f"input: row {number + 1}: not valid JSON; nothing imported") from None
                if end == len(buffer) and chunk:
                    position = start  # a number or literal may go on in the next chunk
                    break
                number += 1
                if not isinstance(value, dict):
                    value = RowProblem("row", "not a JSON object")
                elif _SURROGATE_ESCAPE.search(buffer, position, end) and unpaired_surrogate(value):
                    value = RowProblem("row", UNPAIRED_SURROGATE)
                position = end
                yield number, value
            if len(buffer) - position > MAX_RECORD:
                raise InvalidInput(f"input: row {number + 1}: larger than {MAX_RECORD // (1 << 20)} MiB")
            if not chunk:
                break
    if not started:
        return
    if not done:
        raise InvalidInput("input: the JSON array is not closed")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def user_ids(path: Path) -> Iterator[tuple[int, str | RowProblem]]:
    """A file of users (`--users FILE|-`): one user id per line, or NDJSON, a JSON array or CSV with `user_id`."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    first_line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    if head[:1] in (b"{", b"[") or "user_id" in first_line.split(","):
        for number, record in records(path, detect(path)):
            if isinstance(record, RowProblem):
                yield number, record
            elif not isinstance(record.get("user_id"), str) or not record["user_id"].strip():
                yield number, RowProblem("user_id", "missing")
            else:
                yield number, record["user_id"].strip()
        return
    for number, line in enumerate(_decoded_lines(path), 1):
        if line.strip():
            yield number, line.strip()
