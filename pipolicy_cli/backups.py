"""Backups through SQLite's backup API, with expiry, and restores that do not bring the erased back.

Erased people stay in backups made before their erasure until those expire
(policy 5.2: removed "when the backup updates"); `status` counts them as
`erasures_pending_in_backups`. `restore` copies a backup over the register and
replays every tombstone, those in the journal beside the key file included.

A backup is written as `NAME.db.partial`, locked with `flock` while it is
written, and renamed to `NAME.db` once whole; its row keeps size 0 until then.
A `backup create` killed half-way leaves a partial file and a row of size 0
that no process holds: the next `backup create` or `backup expire` removes the
file and marks the row deleted (or, killed just after the rename, records the
finished file's size).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from pipolicy_cli import dates, erasure, paths
from pipolicy_cli.errors import InvalidInput, NotFound, StorageError
from pipolicy_cli.register import Register, migrations
from pipolicy_cli.register.connection import storage_problem

DEFAULT_KEEP = "30d"
PARTIAL = ".partial"


def folder(register: Register) -> Path:
    stored = register.setting("backup-dir")
    return Path(stored) if stored else paths.data_dir() / "backups" / register.path.stem


def create(register: Register, actor: str, keep: str = DEFAULT_KEEP) -> dict[str, Any]:
    lasting = dates.parse_duration(keep, "--expires-in")
    now = dates.now()
    target_dir = folder(register)
    paths.private_folder(target_dir)
    clear_unfinished(register, actor)
    # A copy that fills the disk half-way fails, and on a full disk even forgetting its row may: look first.
    pages, page_size = (register.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_count", "page_size"))
    free = shutil.disk_usage(target_dir).free
    if free < pages * page_size:
        raise StorageError(f"backup: the disk is too full: {target_dir} has {free / 2**20:.1f} MiB free, "
                           f"the copy needs {pages * page_size / 2**20:.1f} MiB")
    target = target_dir / f"{register.path.stem}-{now:%Y%m%dT%H%M%S%fZ}.db"
    partial = target.with_name(target.name + PARTIAL)
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    key = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the row has the size: the file is being written
        # Record it first, in the register being copied, so the copy knows itself too.
        with register.transaction(actor, "backup create") as tx:
            key = tx.insert("backups", {"path": str(target), "created_at": dates.to_text(now),
                                        "expires_at": dates.to_text(now + lasting), "size": 0})
        destination = sqlite3.connect(str(partial))
        try:
            register.conn.backup(destination)
        finally:
            destination.close()
        os.replace(partial, target)
        _sync_folder(target_dir)
        with register.transaction(actor, "backup create") as tx:
            tx.update("backups", key, {"size": target.stat().st_size})
    except BaseException as exc:
        # A failed copy (a full disk, an interrupt) leaves neither a file nor a row naming one.
        _remove_partial(partial)
        target.unlink(missing_ok=True)
        if key is not None:
            _forget(register, key, actor)
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"backup failed: {storage_problem(exc)}") from None
        raise
    finally:
        os.close(fd)
    return show(register, key)


def _forget(register: Register, key: int, actor: str) -> None:
    try:
        with register.transaction(actor, "backup create") as tx:
            tx.delete("backups", key)
    except (sqlite3.Error, StorageError):
        pass  # the register's own disk failed too: the row stays, with size 0, and the error that matters is raised


def clear_unfinished(register: Register, actor: str) -> None:
    """Partial files and rows of size 0 that a killed `backup create` left, unless a live one is writing them."""
    for key, path in register.conn.execute("SELECT id, path FROM backups WHERE deleted_at IS NULL AND size = 0").fetchall():
        target = Path(path)
        partial = target.with_name(target.name + PARTIAL)
        if _being_written(target) or _being_written(partial):
            continue
        with register.transaction(actor, "backup create") as tx:
            if target.exists():  # killed between the rename and recording the size: the file is whole
                tx.update("backups", key, {"size": target.stat().st_size})
            else:
                _remove_partial(partial)
                tx.update("backups", key, {"deleted_at": tx.at})
    for partial in folder(register).glob(f"{register.path.stem}-*.db{PARTIAL}"):  # killed before its row was committed
        if not _being_written(partial):
            _remove_partial(partial)


def _being_written(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_partial(partial: Path) -> None:
    for path in (partial, partial.with_name(partial.name + "-journal")):
        path.unlink(missing_ok=True)


def _sync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rows(register: Register) -> list[dict[str, Any]]:
    now = dates.now_text()
    cursor = register.conn.execute(
        """SELECT b.id, b.path, b.created_at, b.expires_at, b.size, b.deleted_at,
                  (SELECT count(*) FROM erasures e WHERE e.erased_at > b.created_at) AS erased_since
           FROM backups b ORDER BY b.id"""
    )
    found = []
    for key, path, created, expires, size, deleted, erased_since in cursor:
        found.append({"id": key, "path": path, "created_at": created, "expires_at": expires, "size": size,
                      "expired": expires < now, "deleted_at": deleted, "exists": Path(path).exists(),
                      "erased_people_inside": erased_since if deleted is None else 0})
    return found


def show(register: Register, key: int) -> dict[str, Any]:
    for row in rows(register):
        if row["id"] == key:
            return row
    raise NotFound(f"backup: no backup {key}")


def expire(register: Register, actor: str, *, dry_run: bool) -> list[dict[str, Any]]:
    """Delete the files of backups past their expiry (S20)."""
    due = [row for row in rows(register) if row["expired"] and row["deleted_at"] is None]
    if dry_run:
        return due
    clear_unfinished(register, actor)
    for row in due:
        Path(row["path"]).unlink(missing_ok=True)
        with register.transaction(actor, "backup expire") as tx:
            tx.update("backups", row["id"], {"deleted_at": tx.at})
    return due


def _check_backup(path: Path) -> None:
    if not path.is_file():
        raise NotFound(f"backup: no such file {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            done = migrations.applied(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        raise InvalidInput(f"backup: {path} is not a SQLite database") from None
    if not done:
        raise InvalidInput(f"backup: {path} is not a pipolicy register")
    if migrations.unknown(done):
        raise InvalidInput(f"backup: {path} was written by a newer pipolicy")


def restore(register: Register, source: Path, actor: str, *, dry_run: bool) -> dict[str, Any]:
    """Copy a backup over the register, migrate it, and erase again everyone a tombstone names."""
    source = source.expanduser().absolute()
    _check_backup(source)
    if source == register.path:
        raise InvalidInput("backup: that is the register itself")
    if dry_run:
        return {"restored_from": str(source), "dry_run": True}
    journal_kept = erasure.tombstones(register)  # the register's own, before they are overwritten
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        origin.backup(register.conn)
    finally:
        origin.close()
    restored, applied = Register.create_or_migrate(register.path, actor)
    try:
        with restored.transaction(actor, "backup restore") as tx:
            tx.record("restore", "register", detail={"migrations": len(applied)})
        erased = erasure.replay(restored, actor, extra=journal_kept)
        erasure.scrub(restored)
    finally:
        restored.close()
    return {"restored_from": str(source), "migrations_applied": applied, "erased_again": len(erased)}

