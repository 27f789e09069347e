"""A private scratch SQLite file for validating a whole import before writing it.

The rows of an import are validated into the spool, checked against each other
and against the register with SQL (the spool is ATTACHed), and only then
copied into the register in batches. Memory stays flat however large the
input; the spool, like stdin's, lives in a 0700 temp folder removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path


class Spool:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pipolicy-spool-"))
        self.path = self.folder / "spool.db"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        self.conn = sqlite3.connect(str(self.path), isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = MEMORY", "cache_size = -16384"):
            self.conn.execute(f"PRAGMA {pragma}")

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc_info) -> None:
        self.conn.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def attach(self, conn: sqlite3.Connection) -> None:
        conn.execute("ATTACH DATABASE ? AS spool", (str(self.path),))

    @staticmethod
    def detach(conn: sqlite3.Connection) -> None:
        conn.execute("DETACH DATABASE spool")
