"""Opening the register's SQLite file with the pragmas every connection needs.

`secure_delete` does not persist, so it is set on every connection: with it,
deleted and de-identified values are overwritten in the file instead of
lingering in free pages and old index pages. Temporary tables and sorts stay in
memory so personal values never reach a temp file.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipolicy_cli.errors import NotFound, StorageError

BUSY_TIMEOUT_MS = 60_000
CACHE_KIB = 256 * 1024  # deletes run about twice as fast as with the 2 MB default

_PRAGMAS = (
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    f"PRAGMA cache_size = -{CACHE_KIB}",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA synchronous = FULL",
)


# What to do about the faults a register meets on a disk, by SQLite's (extended) error name.
_ADVICE = (
    ("SQLITE_CORRUPT", "the register file is damaged: put a backup in its place and run `pipolicy backup replay`"),
    ("SQLITE_FULL", "the disk is full: the change that failed was rolled back; free some space and run the command again"),
    ("SQLITE_READONLY", "the register or its folder is read-only"),
    ("SQLITE_CANTOPEN", "is the file or its folder read-only? SQLite writes the -wal and -shm files beside it"),
    ("SQLITE_IOERR", "the disk failed or is full; a change that failed was rolled back"),
)


def storage_problem(exc: sqlite3.Error) -> str:
    """SQLite's message (it names tables and columns, never values) and what to do about it."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    advice = next((text for prefix, text in _ADVICE if name.startswith(prefix)), None)
    return f"{exc} ({advice})" if advice else str(exc)


@contextmanager
def pragma_for_a_while(conn: sqlite3.Connection, name: str, value: int) -> Iterator[None]:
    """Another value of an integer pragma until the block ends."""
    (previous,) = conn.execute(f"PRAGMA {name}").fetchone()
    conn.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA {name} = {int(previous)}")


def cache_size(conn: sqlite3.Connection, kib: int):
    """Another page cache size for a while (bulk work that reads little back)."""
    return pragma_for_a_while(conn, "cache_size", -kib)


def busy_timeout(conn: sqlite3.Connection, milliseconds: int):
    """Wait at most this long for other connections for a while."""
    return pragma_for_a_while(conn, "busy_timeout", milliseconds)


def create_file(path: Path) -> None:
    """Create an empty register file readable by its owner only."""
    from pipolicy_cli.paths import open_private, private_folder

    private_folder(path.parent)
    os.close(open_private(path, os.O_RDWR))


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    if create and not path.exists():
        try:
            create_file(path)
        except OSError as exc:
            raise StorageError(f"cannot create the register at {path}: {exc.strerror}") from None
    elif not path.exists():
        raise NotFound(f"no register at {path}: run `pipolicy init` (or pass --db)")
    # The WAL and shared-memory files inherit the database file's mode; the
    # umask covers the moment before SQLite has looked at it.
    previous = os.umask(0o077)
    conn = None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        if create:
            if path.stat().st_size == 0:
                # Only an empty file takes it, before WAL writes the header: the retention sweep can then give
                # free pages back in place (incremental vacuum) instead of copying the register.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StorageError(f"register at {path}: cannot switch to WAL journal mode (got {mode})")
        else:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException as exc:
        if conn is not None:
            conn.close()  # else the file stays open until the exception is collected
        if not isinstance(exc, sqlite3.DatabaseError):
            raise
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            raise StorageError(f"register at {path} cannot be read as a SQLite database: {storage_problem(exc)}") from None
        raise StorageError(f"register at {path} cannot be opened: {storage_problem(exc)}") from None
    finally:
        os.umask(previous)
    return conn
