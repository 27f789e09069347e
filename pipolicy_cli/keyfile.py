"""The HMAC key kept outside the register.

Tombstones hold HMACs of an erased person's identifiers; a phone number has
few enough possible values that a plain hash could be reversed by trying them
all, so the key must not travel with the register or its backups.
`PIPOLICY_KEY` (the key itself) overrides the file.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from pipolicy_cli.errors import InvalidInput, StorageError


def create(path: Path) -> bool:
    """Create a 0600 key file unless one exists. Returns whether it was created."""
    if path.exists():
        check(path)
        return False
    from pipolicy_cli.paths import private_folder

    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return True


def check(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InvalidInput(f"key-file: {path} does not exist") from None
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"key-file: {path} is not a regular file")
    if mode & 0o077:
        raise InvalidInput(f"key-file: {path} is readable by others; run chmod 600 on it")


def load(path: Path | None) -> bytes:
    env = os.environ.get("PIPOLICY_KEY")
    if env:
        return env.encode("utf-8")
    if path is None:
        raise InvalidInput("key-file: not configured; run `pipolicy config set key-file PATH` or set PIPOLICY_KEY")
    check(path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise InvalidInput(f"key-file: {path} holds too short a key")
    return key.encode("utf-8")
