"""Kill pipolicy commands with SIGKILL at random moments and check what they leave behind.

The installed CLI runs in a subprocess, each time on a fresh copy of one template
register (`build_template`, built once per test module at a size it chooses).
A kill comes either after a random delay within the time an uninterrupted run
takes, or once the command has written a random number of times (the WAL or a
backup file grew), so that many land while a batch is being committed. The whole
process group is killed, worker processes included. `kill_inside` kills at a
named function instead: the few moments known to be fragile, every time.

After each kill the register must be whole (`PRAGMA integrity_check`, `audit
verify`) and every change all or nothing (`check_after_kill`); then the same
command runs again and must leave exactly what an uninterrupted run leaves
(`check_after_rerun`). Every random choice comes from a seed printed in the
failure message; the moments still depend on the machine's load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import Iterator

from synthetic import people

COMMANDS = ("user import", "access import", "retention sweep", "erase", "backup create")
ERASED = "U00000007"  # the person `erase` removes: has inventory items, consents and access events
RUN_TIMEOUT = 600


def pipolicy_command() -> list[str]:
    """The installed console script beside this Python, else the module."""
    script = Path(sys.executable).parent / "pipolicy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipolicy_cli"]


def clean_environment(home: Path, db: Path, tmp: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPOLICY_") and key != "NO_COLOR"}
    env.update(PIPOLICY_HOME=str(home), PIPOLICY_DB=str(db), TMPDIR=str(tmp))
    return env


def run(env: dict[str, str], *args: str, expect: int | tuple[int, ...] = 0) -> subprocess.CompletedProcess:
    done = subprocess.run([*pipolicy_command(), *map(str, args)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    expected = (expect,) if isinstance(expect, int) else expect
    assert done.returncode in expected, f"pipolicy {' '.join(map(str, args))} exited {done.returncode}: {done.stderr.strip()}"
    return done


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def value(db: Path, sql: str, params: tuple = ()):
    return query(db, sql, params)[0][0]


def digest(rows: list[tuple]) -> str:
    return hashlib.sha256(repr(sorted(rows)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Size:
    """The template's size, from its number of people; every other count follows."""

    users: int

    @property
    def events(self) -> int:
        return self.users * 10

    @property
    def old_events(self) -> int:  # every other event is older than the access log's retention rule (1 year)
        return (self.events + 1) // 2

    @property
    def new_users(self) -> int:
        return self.users // 4

    @property
    def new_events(self) -> int:
        return self.events // 4

    def batch(self, command: str) -> int:
        """Each writing command runs in about ten batches."""
        rows = {"user import": self.new_users, "access import": self.new_events, "retention sweep": self.old_events}[command]
        return max(1, rows // 10)


@dataclass
class Template:
    folder: Path
    size: Size
    as_of: str  # the sweep judges ages as at this moment
    audit_count: int  # events in the template: checks look at the ones after
    target_key: int  # ERASED's row key
    target_items: int
    target_consents: int
    target_events: list[int]
    target_markers: list[bytes]  # ERASED's e-mail and ID number as stored

    @property
    def db(self) -> Path:
        return self.folder / "register.db"

    @property
    def key(self) -> Path:
        return self.folder / "register.key"

    def arguments(self, command: str) -> list[str]:
        batch = ["--batch-size", str(self.size.batch(command))] if command in ("user import", "access import", "retention sweep") else []
        return {
            "user import": ["user", "import", str(self.folder / "new-users.ndjson"), *batch],
            "access import": ["access", "import", str(self.folder / "new-events.ndjson"), *batch],
            "retention sweep": ["retention", "sweep", "--yes", "--as-of", self.as_of, *batch],
            "erase": ["erase", ERASED, "--yes"],
            "backup create": ["backup", "create"],
        }[command] + ["--format", "json"]


def _write_ndjson(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _event(number: int, user: int, at: str, source: str) -> dict:
    return {"at": at, "actor": "svc-app", "user_id": f"U{user:08d}", "categories": "registration", "purpose": "service",
            "action": "view", "basis": "contract", "source": source, "event_id": str(number)}


def build_template(folder: Path, size: Size) -> Template:
    """A register of `size.users` people (two inventory items each) and `size.events` access events, half of
    them old enough for the sweep, plus the files the import commands read."""
    folder.mkdir(parents=True)
    from typer.testing import CliRunner

    from pipolicy_cli.cli.app import app

    runner = CliRunner()
    db = folder / "register.db"
    env = {key: None for key in os.environ if key.startswith("PIPOLICY_")}
    env.update(PIPOLICY_HOME=str(folder / "home"), PIPOLICY_DB=str(db))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    as_of = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    old, recent = ((now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ") for days in (730, 1))
    users = size.users
    _write_ndjson(folder / "users.ndjson", people(users, seed=21))
    _write_ndjson(folder / "new-users.ndjson", people(size.new_users, seed=22, start=users + 1))
    _write_ndjson(folder / "events.ndjson", (_event(n, n % users + 1, old if n % 2 == 0 else recent, "app")
                                             for n in range(size.events)))
    _write_ndjson(folder / "new-events.ndjson", (_event(n, n % users + 1, recent, "night-batch") for n in range(size.new_events)))
    _write_ndjson(folder / "items.ndjson", (
        {"user_id": f"U{user:08d}", "category": category, "field": field_name, "system": "crm", "collected_at": recent}
        for user in range(1, users + 1) for category, field_name in (("registration", "phone"), ("order", "invoices"))))
    steps = [("init", "--db", db, "--key-file", folder / "register.key"),
             ("user", "import", folder / "users.ndjson", "--jobs", "1"),
             ("access", "import", folder / "events.ndjson", "--jobs", "1"),
             ("system", "add", "crm"),
             ("data", "import", folder / "items.ndjson", "--jobs", "1"),
             *(("consent", "grant", ERASED, purpose) for purpose in ("messaging", "surveys"))]
    for step in steps:  # in this process: the template is not what is under test, and starting up costs
        result = runner.invoke(app, [str(arg) for arg in step], env=env)
        assert result.exit_code == 0, (step, result.stderr)
    query(db, "PRAGMA wal_checkpoint(TRUNCATE)")  # copies need the file alone
    assert not (folder / "register.db-wal").exists() or not (folder / "register.db-wal").stat().st_size
    key = value(db, "SELECT id FROM users WHERE user_id = ?", (ERASED,))
    email, id_number = query(db, "SELECT email, id_number FROM users WHERE id = ?", (key,))[0]
    return Template(
        folder=folder, size=size, as_of=as_of, audit_count=value(db, "SELECT count(*) FROM audit_events"),
        target_key=key,
        target_items=value(db, "SELECT count(*) FROM data_items WHERE user_key = ?", (key,)),
        target_consents=value(db, "SELECT count(*) FROM consents WHERE user_key = ?", (key,)),
        target_events=[row[0] for row in query(db, "SELECT id FROM access_log WHERE user_key = ?", (key,))],
        target_markers=[email.encode("utf-8"), id_number.encode("utf-8")],
    )


class Scene:
    """One copy of the template with its own home, temp folder, key file and so tombstone journal."""

    def __init__(self, template: Template, folder: Path):
        self.template = template
        self.folder = folder
        folder.mkdir(parents=True)
        self.db = folder / "register.db"
        self.key = folder / "register.key"
        self.home, self.tmp = folder / "home", folder / "tmp"
        self.tmp.mkdir()
        shutil.copyfile(template.db, self.db)
        shutil.copyfile(template.key, self.key)
        os.chmod(self.db, 0o600)
        os.chmod(self.key, 0o600)
        # The stored path points at the template's key; each copy keeps its own key and journal beside it.
        conn = sqlite3.connect(self.db)
        with conn:
            conn.execute("UPDATE config SET value = ? WHERE key = 'key-file'", (str(self.key),))
        conn.close()
        self.env = clean_environment(self.home, self.db, self.tmp)

    def run(self, *args: str, expect: int | tuple[int, ...] = 0) -> subprocess.CompletedProcess:
        return run(self.env, *args, expect=expect)

    def start(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen([*pipolicy_command(), *args], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return query(self.db, sql, params)

    def value(self, sql: str, params: tuple = ()):
        return value(self.db, sql, params)

    def backup_folder(self) -> Path:
        return self.home / "backups" / self.db.stem

    def writes(self) -> tuple:
        """What changes while a command writes: the WAL, and the files in the backup folder."""
        marks = []
        for path in (self.db.with_name(self.db.name + "-wal"), *sorted(self.backup_folder().glob("*"))):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            marks.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(marks)

    def new_audit_events(self) -> list[dict]:
        return [json.loads(text) for (text,) in self.query("SELECT event FROM audit_events WHERE seq > ? ORDER BY seq",
                                                            (self.template.audit_count,))]

    def snapshot(self) -> dict:
        """The tables the five commands change, as counts and digests (not the backups' own rows)."""
        return {
            "users": self.value("SELECT count(*) FROM users"),
            "user ids": digest(self.query("SELECT user_id FROM users")),
            "access_log": self.value("SELECT count(*) FROM access_log"),
            "events": digest(self.query("SELECT source, event_id, user_key, restricted_at IS NULL FROM access_log")),
            "data_items": self.value("SELECT count(*) FROM data_items"),
            "consents": self.value("SELECT count(*) FROM consents"),
            "erasures": self.value("SELECT count(*) FROM erasures"),
            "swept": sum(json.loads(counts).get("table access_log: delete", 0)
                         for (counts,) in self.query("SELECT counts FROM sweeps")),
        }


@dataclass
class Kill:
    seed: str
    how: str  # "delay" or "writes"
    delay: float = 0.0
    writes: int = 0
    killed: bool = False
    finished: subprocess.CompletedProcess | None = None  # the command ended before the kill came

    def describe(self) -> str:
        moment = f"after {self.delay:.3f} s" if self.how == "delay" else f"after {self.writes} writes"
        return f"seed {self.seed}, killed {moment}" if self.killed else f"seed {self.seed}: finished before the kill {moment}"


def kill_at_random(scene: Scene, args: list[str], seed: str, typical_seconds: float) -> Kill:
    """Start the command and SIGKILL its process group at a moment drawn from `seed`."""
    rng = Random(seed)
    kill = Kill(seed, rng.choice(("delay", "writes")))
    process = scene.start(args)
    try:
        if kill.how == "delay":
            kill.delay = rng.uniform(0.0, typical_seconds)
            try:
                process.wait(timeout=kill.delay)
            except subprocess.TimeoutExpired:
                pass
        else:
            kill.writes = rng.randint(1, 4)
            seen, moves = scene.writes(), 0
            deadline = time.monotonic() + RUN_TIMEOUT
            while process.poll() is None and moves < kill.writes and time.monotonic() < deadline:
                now = scene.writes()
                if now != seen:
                    seen, moves = now, moves + 1
                else:
                    time.sleep(0.0005)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            kill.killed = True
    finally:
        out, err = process.communicate()
    if not kill.killed:
        kill.finished = subprocess.CompletedProcess(args, process.returncode, out, err)
    return kill


# Run the CLI with one function replaced by one that kills the process group at its Nth call, before it runs.
_KILL_INSIDE = """
import importlib, os, signal, sys
point, call = sys.argv[1], int(sys.argv[2])
module, _, path = point.partition(":")
owner = importlib.import_module(module)
*parents, name = path.split(".")
for parent in parents:
    owner = getattr(owner, parent)
original, calls = getattr(owner, name), []
def killer(*args, **kwargs):
    calls.append(1)
    if len(calls) == call:
        os.killpg(0, signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, killer)
sys.argv = ["pipolicy", *sys.argv[3:]]
from pipolicy_cli.entry import main
main()
"""


def kill_inside(scene: Scene, args: list[str], point: str, call: int) -> None:
    """Run the command and kill it when it calls `point` ("module:function" or "module:Class.method") the
    `call`th time: the moments the random ones reach only seldom."""
    done = subprocess.run([sys.executable, "-c", _KILL_INSIDE, point, str(call), *args], env=scene.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          start_new_session=True)
    assert done.returncode == -signal.SIGKILL, f"{point} call {call} was not reached: exit {done.returncode} {done.stderr}"


@contextmanager
def replay_note(note: str) -> Iterator[None]:
    """Put the seed and moment in front of any failed check."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{note}\n{exc}") from exc


def check_whole(scene: Scene, *, through_the_cli: bool = False) -> None:
    """integrity_check, and the audit chain: by `pipolicy audit verify`, or by the same function in this process."""
    assert scene.query("PRAGMA integrity_check") == [("ok",)], "PRAGMA integrity_check failed"
    if through_the_cli:
        verified = scene.run("audit", "verify", "--format", "json", expect=(0, 1, 4, 5))
        assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], f"audit verify: {verified.stdout} {verified.stderr}"
        return
    from pipolicy_cli.register import audit

    conn = sqlite3.connect(scene.db)
    try:
        verification = audit.verify(conn)
    finally:
        conn.close()
    assert verification.ok, f"audit chain broken at event {verification.first_bad}: {verification.reason}"


def _imported(scene: Scene, command: str) -> tuple[int, list[list[int]]]:
    events = [e for e in scene.new_audit_events() if e["command"] == command and e["action"] == "import"]
    return sum(e["detail"]["inserted"] for e in events), [e["detail"]["keys"] for e in events]


def _check_import(scene: Scene, command: str, table: str, before: int, total: int) -> None:
    inserted, ranges = _imported(scene, command)
    present = scene.value(f"SELECT count(*) FROM {table}")
    assert present == before + inserted, f"{table}: {present - before} rows new, committed batches say {inserted}"
    for first, final in ranges:
        found = scene.value(f"SELECT count(*) FROM {table} WHERE id BETWEEN ? AND ?", (first, final))
        assert found == final - first + 1, f"{table}: batch {first}..{final} is not whole ({found} rows)"
    batch = scene.template.size.batch(command)
    assert inserted % batch == 0 or inserted == total, f"{inserted} rows committed is no whole number of batches of {batch}"


def _old_cutoff(template: Template) -> str:
    as_of = datetime.strptime(template.as_of, "%Y-%m-%dT%H:%M:%SZ")
    return (as_of - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_sweep(scene: Scene) -> None:
    batches = [e for e in scene.new_audit_events()
               if e["command"] == "retention sweep" and e["action"] == "sweep" and e["object"] == "access_log"]
    deleted = sum(e["detail"]["rows"] for e in batches)
    counted = sum(json.loads(counts).get("table access_log: delete", 0) for (counts,) in scene.query("SELECT counts FROM sweeps"))
    cutoff = _old_cutoff(scene.template)
    left = scene.value("SELECT count(*) FROM access_log WHERE at < ?", (cutoff,))
    assert counted == deleted, f"the sweep counted {counted} deletions, its committed batches {deleted}"
    assert deleted + left == scene.template.size.old_events, f"{deleted} deleted + {left} left is not every old event"
    if batches:
        last = max(e["detail"]["keys"][1] for e in batches)
        behind = scene.value("SELECT count(*) FROM access_log WHERE at < ? AND id <= ?", (cutoff, last))
        assert behind == 0, f"{behind} old events remain inside committed batches"


def erased_state(scene: Scene) -> str:
    """'present' or 'erased', after checking the person is wholly one or the other."""
    template = scene.template
    key = template.target_key
    row = scene.query("SELECT id FROM users WHERE user_id = ?", (ERASED,))
    items = scene.value("SELECT count(*) FROM data_items WHERE user_key = ?", (key,))
    consents = scene.value("SELECT count(*) FROM consents WHERE user_key = ?", (key,))
    marks = ",".join("?" * len(template.target_events))
    linked, restricted = scene.query(
        f"SELECT count(*) FILTER (WHERE user_key = ?), count(*) FILTER (WHERE user_key IS NULL AND restricted_at IS NOT NULL) "
        f"FROM access_log WHERE id IN ({marks})", (key, *template.target_events))[0]
    erasures = scene.value("SELECT count(*) FROM erasures")
    erase_events = [e for e in scene.new_audit_events() if e["action"] == "erase"]
    if row:
        assert (items, consents, linked, restricted, erasures, len(erase_events)) == (
            template.target_items, template.target_consents, len(template.target_events), 0, 0, 0), \
            f"half erased: items {items}, consents {consents}, events linked {linked} / cut {restricted}, erasures {erasures}"
        return "present"
    assert (items, consents, linked, restricted, erasures, len(erase_events)) == (
        0, 0, 0, len(template.target_events), 1, 1), \
        f"half erased: no user row, but items {items}, consents {consents}, events linked {linked} / cut {restricted}, erasures {erasures}"
    return "erased"


def _complete_backup(path: Path, users: int) -> str | None:
    """Why the file is not a whole copy of the register, or None."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)  # no -wal or -shm beside it
        try:
            if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
                return "fails integrity_check"
            copied = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"cannot be read ({exc})"
    return None if copied == users else f"holds {copied} of {users} users"


def check_backups(scene: Scene) -> list[str]:
    """Every file named like a finished backup is a whole copy, and so is every backup the register lists.
    Returns the names of the finished backups."""
    users = scene.value("SELECT count(*) FROM users")
    finished = sorted(scene.backup_folder().glob("*.db"))
    for path in finished:
        problem = _complete_backup(path, users)
        assert problem is None, f"{path.name} looks like a finished backup but {problem}"
    for (path,) in scene.query("SELECT path FROM backups WHERE deleted_at IS NULL AND size > 0"):
        assert Path(path).exists(), f"the register lists backup {Path(path).name}, which does not exist"
    return [path.name for path in finished]


def check_after_kill(scene: Scene, command: str) -> str:
    """The register as the kill left it; returns what state the command's work is in, for the rerun."""
    assert scene.query("PRAGMA integrity_check") == [("ok",)], "PRAGMA integrity_check failed"
    size = scene.template.size
    state = ""
    if command == "user import":
        _check_import(scene, command, "users", size.users, size.new_users)
    elif command == "access import":
        _check_import(scene, command, "access_log", size.events, size.new_events)
    elif command == "retention sweep":
        _check_sweep(scene)
    elif command == "erase":
        state = erased_state(scene)
    else:
        check_backups(scene)
    check_whole(scene, through_the_cli=True)
    return state


def check_after_rerun(scene: Scene, command: str, reference: dict) -> None:
    """What an uninterrupted run leaves, and nothing twice."""
    check_whole(scene)
    assert scene.snapshot() == reference, f"after the rerun {scene.snapshot()}, uninterrupted {reference}"
    size = scene.template.size
    if command in ("user import", "access import"):
        inserted, _ = _imported(scene, command)
        expected = size.new_users if command == "user import" else size.new_events
        assert inserted == expected, f"the committed batches add up to {inserted} rows, not {expected}"
    elif command == "retention sweep":
        _check_sweep(scene)
        assert scene.value("SELECT count(*) FROM sweeps WHERE state != 'done'") == 0, "a sweep was left unfinished"
    elif command == "erase":
        assert erased_state(scene) == "erased"
        assert scene.value("SELECT count(*) FROM erasures WHERE scrub_pending = 1") == 0, "the scrub is still pending"
        journal = scene.key.with_name(scene.key.name + ".tombstones")
        stored = json.loads(scene.value("SELECT identifiers FROM erasures"))
        lines = [json.loads(line)["identifiers"] for line in journal.read_text().splitlines()] if journal.exists() else []
        assert lines == [stored], f"the tombstone journal holds {len(lines)} entries, not the erasure's one"
        for path in (scene.db, scene.db.with_name(scene.db.name + "-wal")):
            if path.exists():
                content = path.read_bytes()
                assert not any(marker in content for marker in scene.template.target_markers), f"{path.name} still holds the person"
    else:
        finished = check_backups(scene)
        assert finished, "no finished backup"
        leftovers = [path.name for path in scene.backup_folder().iterdir() if not path.name.endswith(".db")]
        assert not leftovers, f"unfinished backup files are left: {leftovers}"
        unfinished = scene.value("SELECT count(*) FROM backups WHERE deleted_at IS NULL AND size = 0")
        assert unfinished == 0, f"the register lists {unfinished} unfinished backups as live"
    spools = sorted(path.name for path in scene.tmp.iterdir())
    assert not spools, f"temporary files are left behind: {spools}"
