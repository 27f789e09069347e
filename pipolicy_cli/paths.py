"""Where things live: the register, the user config file, key files.

The register is found by `--db`, else `PIPOLICY_DB`, else the `db` entry of the
user config file, else a fixed file in the user data directory, so cron, which
runs from another working directory, finds the same register as the officer.
`PIPOLICY_HOME` moves the data and config directories (tests, containers).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from pipolicy_cli.errors import InvalidInput

APP = "pipolicy"


def data_dir() -> Path:
    home = os.environ.get("PIPOLICY_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP, appauthor=False))


def config_file() -> Path:
    explicit = os.environ.get("PIPOLICY_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("PIPOLICY_HOME")
    if home:
        return Path(home).expanduser() / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


def read_config_file() -> dict:
    path = config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config file {path}: not valid TOML ({exc.__class__.__name__})") from None


def private_folder(path: Path) -> None:
    """Create `path` and every missing folder above it for its owner only (0700), whatever the umask: `mkdir -p`
    gives the folders above the last one the umask's mode, and a folder others may write to lets them swap the
    register or its -wal file."""
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask


SCRATCH_PREFIX = "pipolicy-scratch-"


def scratch_folder(kind: str) -> Path:
    """A new private temporary folder (0700, mkdtemp's) for an import's spool or stdin, named after this process.
    Those hold personal values, and a process killed with SIGKILL cannot remove its folder: each new one first
    removes the folders of processes that are gone."""
    import re
    import shutil
    import tempfile

    root = Path(tempfile.gettempdir())
    for folder in root.glob(SCRATCH_PREFIX + "*"):
        owner = re.match(re.escape(SCRATCH_PREFIX) + r"[a-z]+-(\d+)-", folder.name)
        if owner and folder.is_dir() and not folder.is_symlink() and not _alive(int(owner[1])):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-", dir=root))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: not ours to remove anyway
    return True


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """A file descriptor of `path`, created or replaced readable by its owner only (0600), also when a file was
    already there with another mode. The folder must exist."""
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_config_file(values: dict[str, str]) -> Path:
    """Write flat string settings; JSON string escapes are valid TOML."""
    path = config_file()
    private_folder(path.parent)
    text = "".join(f"{key} = {json.dumps(str(value))}\n" for key, value in sorted(values.items()))
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class RegisterLocation:
    path: Path
    source: str  # "--db", "PIPOLICY_DB", "config file" or "default"


def locate_register(option: str | None) -> RegisterLocation:
    if option:
        return RegisterLocation(_absolute(option), "--db")
    env = os.environ.get("PIPOLICY_DB")
    if env:
        return RegisterLocation(_absolute(env), "PIPOLICY_DB")
    configured = read_config_file().get("db")
    if configured:
        return RegisterLocation(_absolute(str(configured)), "config file")
    return RegisterLocation(data_dir() / "register.db", "default")


def default_key_file(register: Path) -> Path:
    """A key file outside the register, named after the register's path."""
    digest = hashlib.sha256(str(register).encode("utf-8")).hexdigest()[:16]
    return data_dir() / "keys" / f"{register.stem}-{digest}.key"


def _absolute(value: str) -> Path:
    return Path(value).expanduser().absolute()


@contextmanager
def replaced_whole(path: Path, *, text: bool = False, option: str = "--out") -> Iterator[IO]:
    """A file written as `PATH.part` (0600) and moved over `path` only once complete; removed when anything
    fails, so an export, notice or report cut short by a full disk or a bad row never leaves half a file."""
    if not path.parent.is_dir():
        raise InvalidInput(f"{option}: no such folder {path.parent}")
    if path.is_dir():
        raise InvalidInput(f"{option}: {path} is a folder; name a file")
    partial = path.with_name(path.name + ".part")
    fd = open_private(partial)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb") as handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
