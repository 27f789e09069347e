"""The retention sweep: every rule applied, in batches, by one process at a time, from cron.

- One sweep at a time: an exclusive `flock` on `REGISTER.sweep-lock`, which
  dies with its process, so a sweep killed with SIGKILL never blocks the next.
- Each batch is one transaction: the rows it changes, its audit event, and the
  sweep's counts, together. A sweep killed half-way is resumed by the next one
  (same `as_of`), and nothing is counted twice: a row a batch reached no longer
  matches (deleted, de-identified or restricted).
- `should_stop()` is asked between batches (SIGTERM), and `max_seconds` bounds
  the run; either leaves the sweep "stopped", to be resumed.
- Afterwards: verified deletion requests whose systems are all done are carried
  out, pending scrubs retried, and the WAL checkpointed with TRUNCATE, so with
  `secure_delete` nothing deleted remains in the register's files. Free pages
  past a threshold are given back: in steps of their own transactions, at most
  `GIVE_BACK_PER_RUN` a run (incremental vacuum), or by one VACUUM when the
  register predates incremental auto-vacuum and the disk has room for it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from pipolicy_cli import dates, retention, tasks
from pipolicy_cli.errors import InvalidInput, Locked
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import pragma_for_a_while

VACUUM_FREE_SHARE = 0.25  # give pages back once a quarter of the file is free...
VACUUM_MIN_PAGES = 2048  # ...and that is worth the work
# An incremental vacuum is one write transaction that moves pages from the file's end into free ones: 5M of 10M
# events deleted left 895 MB to give back, 14 s of holding the write lock, and at ten times the size it would
# outlast other writers' 60 s busy timeout. So it goes in steps of GIVE_BACK_STEP, and at most GIVE_BACK_PER_RUN
# a run; what remains is given back by the next sweeps, and meanwhile new rows reuse the free pages.
GIVE_BACK_STEP, GIVE_BACK_PER_RUN = 64 << 20, 256 << 20  # bytes
# While the batches run, checkpoint every 256 MB of WAL (the page cache's size) rather than SQLite's default
# 4 MB: every batch rewrites the index pages it touches (access_log_user_at is in no order the ids follow),
# and a checkpoint after each batch copied them all into the file again each time. The sweep's own
# TRUNCATE checkpoint at the end empties the WAL as before.
BATCH_WAL_PAGES = 65_536
# Without --batch-size, each batch is sized from the last one's rate to take about BATCH_SECONDS (growing at
# most GROWTH-fold, up to MAX_BATCH): a batch rewrites every index page it touches (1M deletes spread over the
# 1M users touch nearly every page of access_log_user_at), so small batches cost nearly as much as big ones;
# other writers wait at most about one batch (their busy timeout is 60 s). With 3 s, 10M events settled at
# 160,000-row batches whose commits and checkpoints (38 s) cost as much as the DELETEs (52 s): 0.57x the raw
# DELETE, against 0.67x with 1,000,000-row batches of ~14 s; doubling from 10,000 spent 7 batches, 34 s, on
# the first 1.27M rows (bench_sweep.py).
FIRST_BATCH, MAX_BATCH, BATCH_SECONDS, GROWTH = 10_000, 1_000_000, 15.0, 8
COLUMNS = ("id", "started_at", "finished_at", "as_of", "state", "stop_reason", "resumed", "counts", "attention", "actor")


@contextmanager
def lock(register: Register) -> Iterator[None]:
    import fcntl

    path = f"{register.path}.sweep-lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Locked("another retention sweep is running on this register") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _cutoff(as_of: str, keep: str) -> str:
    return dates.to_text(dates.parse_time(as_of, dates.zone("UTC")) - dates.parse_duration(keep))


def _where(target: retention.Target, action: str) -> str:
    return f"{target.scope} AND {target.time} < :cutoff AND {target.pending(action)}"


def plan(register: Register, as_of: str) -> dict[str, Any]:
    """What a sweep at `as_of` would do: counts per rule, nothing changed (`--dry-run`)."""
    counts, skipped = {}, []
    for rule in retention.stored(register):
        floor = retention.under_floor(register, rule)
        if floor:
            skipped.append(_floor_note(rule, floor))
            continue
        target = retention.target_of(rule)
        (count,) = register.conn.execute(
            f"SELECT count(*) FROM {target.table} WHERE {_where(target, rule['action'])}",
            {"cutoff": _cutoff(as_of, rule["keep"]), "category": rule["target"]},
        ).fetchone()
        counts[_label(rule)] = count
    counts["requests carried out"] = len(_ready_deletions(register))
    return {"counts": counts, "skipped": skipped}


def _label(rule: dict[str, Any]) -> str:
    return f"{rule['target_kind']} {rule['target']}: {rule['action']}"


def _floor_note(rule: dict[str, Any], floor: dict[str, str]) -> str:
    return f"rule {rule['id']} ({rule['target']}, {rule['keep']}) is under the profile's floor of {floor['keep']} " \
           f"({floor['source']}): not applied"


def _ready_deletions(register: Register) -> list[int]:
    return [key for (key,) in register.conn.execute(
        f"""SELECT r.id FROM requests r WHERE r.status = 'verified' AND r.kind IN ('deletion', 'cancellation')
            AND r.user_key IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.request_id = r.id AND t.state IN {tasks.BLOCKING})
            ORDER BY r.id""")]


class Sweep:
    """One run: resumes an interrupted sweep at the same `as_of`, else starts one."""

    def __init__(self, register: Register, actor: str, *, as_of: str | None = None, batch_size: int | None = None,
                 max_seconds: float | None = None, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[str, int], None] | None = None):
        if batch_size is not None and batch_size < 1:
            raise InvalidInput("--batch-size: at least 1")
        self.register, self.actor = register, actor
        self.fixed_batch = batch_size is not None
        self.batch_size = batch_size or FIRST_BATCH
        self.requested_as_of = as_of
        self.deadline = time.monotonic() + max_seconds if max_seconds is not None else None
        self.should_stop = should_stop
        self.progress = progress or (lambda label, rows: None)
        self.stop_reason: str | None = None

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        with lock(self.register):
            self.key, self.as_of = self._begin()
            attention: list[str] = []
            with pragma_for_a_while(self.register.conn, "wal_autocheckpoint", BATCH_WAL_PAGES):
                for rule in retention.stored(self.register):
                    floor = retention.under_floor(self.register, rule)
                    if floor:
                        attention.append(_floor_note(rule, floor))
                        continue
                    if not self._apply(rule):
                        break
            if self.stop_reason is None:
                self._carry_out_deletions()
            attention += self._tidy()
            attention += _needs_a_person(self.register)
            if self.stop_reason:
                attention.append(f"the sweep stopped early ({self.stop_reason}); the next one resumes it")
            self._finish(attention)
        summary = show(self.register, self.key)
        # every rule appears, also those that reached nothing this time
        summary["counts"] = {**{_label(rule): 0 for rule in retention.stored(self.register)},
                             "requests carried out": 0, **summary["counts"]}
        summary["duration_seconds"] = round(time.monotonic() - started, 3)
        return summary

    def _begin(self) -> tuple[int, str]:
        conn = self.register.conn
        # The latest sweep, if it was killed (still "running": its lock died with it) or stopped early.
        running = conn.execute("SELECT id, as_of FROM sweeps WHERE id = (SELECT max(id) FROM sweeps) "
                               "AND (state = 'running' OR (state = 'stopped' AND stop_reason != 'superseded'))").fetchone()
        with self.register.transaction(self.actor, "retention sweep") as tx:
            if running and self.requested_as_of in (None, running[1]):
                tx.execute("UPDATE sweeps SET resumed = resumed + 1, state = 'running', stop_reason = NULL, finished_at = NULL "
                           "WHERE id = ?", (running[0],))
                tx.record("resume", "sweeps", running[0])
                return running[0], running[1]
            if running:  # asked for another moment: the interrupted one ends here
                tx.update("sweeps", running[0], {"state": "stopped", "stop_reason": "superseded", "finished_at": tx.at})
            as_of = self.requested_as_of or tx.at
            key = tx.insert("sweeps", {"started_at": tx.at, "as_of": as_of, "state": "running", "actor": self.actor})
        return key, as_of

    def _stopping(self) -> bool:
        if self.should_stop():
            self.stop_reason = "terminated"
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.stop_reason = "max-duration"
        return self.stop_reason is not None

    def _apply(self, rule: dict[str, Any]) -> bool:
        """Every batch of one rule; False when the sweep must stop."""
        target, action, label = retention.target_of(rule), rule["action"], _label(rule)
        params = {"cutoff": _cutoff(self.as_of, rule["keep"]), "category": rule["target"]}
        where = _where(target, action)
        last, systems = 0, set()
        while True:
            if self._stopping():
                return False
            params["limit"] = self.batch_size
            started = time.monotonic()
            with self.register.transaction(self.actor, "retention sweep") as tx:
                count, first, final = tx.execute(
                    f"""SELECT count(*), min(id), max(id) FROM (
                            SELECT id FROM {target.table} WHERE id > :last AND {where} ORDER BY id LIMIT :limit)""",
                    {**params, "last": last},
                ).fetchone()
                if not count:
                    break
                span = {**params, "last": last, "final": final, "at": tx.at}
                chosen = f"id > :last AND id <= :final AND {where}"
                if target is retention.ITEMS:
                    systems.update(key for (key,) in tx.execute(
                        f"SELECT DISTINCT system_key FROM data_items WHERE {chosen}", span))
                if action == "delete":
                    changed = tx.execute(f"DELETE FROM {target.table} WHERE {chosen}", span).rowcount
                elif action == "deidentify":
                    changed = tx.execute(f"UPDATE {target.table} SET {target.deidentify} WHERE {chosen}", span).rowcount
                else:
                    changed = tx.execute(f"UPDATE {target.table} SET restricted_at = :at WHERE {chosen}", span).rowcount
                self._count(tx, label, changed)
                tx.record("sweep", target.table, detail={"rule": rule["id"], "action": action, "rows": changed,
                                                          "keys": [first, final], "sweep": self.key})
            last = final
            self.progress(label, changed)
            self._size_next_batch(time.monotonic() - started, count)
        if systems:
            self._tell_systems(rule, params["cutoff"], systems)
        return True

    def _size_next_batch(self, seconds: float, rows: int) -> None:
        if self.fixed_batch or rows < self.batch_size:
            return
        wanted = rows * BATCH_SECONDS / max(seconds, 1e-3)
        self.batch_size = int(max(FIRST_BATCH, self.batch_size // 2, min(wanted, self.batch_size * GROWTH, MAX_BATCH)))

    def _count(self, tx, label: str, rows: int) -> None:
        """Add to the sweep's count in the transaction that changed the rows: a resumed sweep never counts twice."""
        path = '$."' + label + '"'
        tx.execute("UPDATE sweeps SET counts = json_set(counts, :path, coalesce(json_extract(counts, :path), 0) + :rows) "
                   "WHERE id = :key", {"path": path, "rows": rows, "key": self.key})

    def _tell_systems(self, rule: dict[str, Any], cutoff: str, systems: set[int]) -> None:
        """The systems holding what a category rule reached must apply it too: one open task per rule and system,
        carrying the rule, not any person."""
        payload = json.dumps({"retention": {"category": rule["target"], "action": rule["action"], "collected_before": cutoff}})
        with self.register.transaction(self.actor, "retention sweep") as tx:
            for system_key in sorted(systems):
                open_task = tx.execute("SELECT id FROM tasks WHERE rule_id = ? AND system_key = ? AND state = 'open'",
                                       (rule["id"], system_key)).fetchone()
                if open_task:
                    tx.update("tasks", open_task[0], {"payload": payload})
                else:
                    tx.insert("tasks", {"rule_id": rule["id"], "system_key": system_key, "action": rule["action"],
                                        "state": "open", "payload": payload, "created_at": tx.at})

    def _carry_out_deletions(self) -> None:
        from pipolicy_cli import requests

        for key in _ready_deletions(self.register):
            if self._stopping():
                return
            requests.complete(self.register, key, self.actor)
            with self.register.transaction(self.actor, "retention sweep") as tx:
                self._count(tx, "requests carried out", 1)

    def _tidy(self) -> list[str]:
        """Scrub the WAL and give free pages back; what could not be done needs a person."""
        from pipolicy_cli import erasure

        notes = []
        if not erasure.scrub(self.register):
            notes.append("a reader kept the WAL from being checkpointed: deleted pages may remain until the next run")
        given_back, vacuum_notes = give_back(self.register, should_stop=self._stopping)
        if given_back:
            with self.register.transaction(self.actor, "retention sweep") as tx:
                self._count(tx, "free pages given back", given_back)
        return notes + vacuum_notes

    def _finish(self, attention: list[str]) -> None:
        with self.register.transaction(self.actor, "retention sweep") as tx:
            tx.execute("UPDATE sweeps SET state = ?, stop_reason = ?, finished_at = ?, attention = ? WHERE id = ?",
                       ("stopped" if self.stop_reason else "done", self.stop_reason, tx.at, json.dumps(attention), self.key))
            tx.record("finish", "sweeps", self.key, fields=("state", "finished_at", "counts", "attention"))


def give_back(register: Register, *, should_stop: Callable[[], bool] = lambda: False) -> tuple[int, list[str]]:
    """Give free pages back to the file system once they are worth it: (pages given back, notes for a person)."""
    conn = register.conn

    def pragma(name: str) -> int:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    free, pages, page_size = pragma("freelist_count"), pragma("page_count"), pragma("page_size")
    if free < VACUUM_MIN_PAGES or free < VACUUM_FREE_SHARE * pages:
        return 0, []
    if pragma("auto_vacuum") == 2:  # incremental: pages move within the file, no copy needed
        budget = min(free, GIVE_BACK_PER_RUN // page_size)
        while budget > 0 and not should_stop():
            step = min(budget, GIVE_BACK_STEP // page_size)
            # One page per sqlite3_step: execute() would take one; executescript() runs it to the end.
            conn.executescript(f"PRAGMA incremental_vacuum({step});")
            budget -= step
    else:
        needed = 2 * pages * page_size  # the rebuilt copy, and the WAL it passes through
        available = shutil.disk_usage(register.path.parent).free
        if available < needed:
            return 0, [f"VACUUM skipped: it needs about {needed >> 20} MB free beside the register, {available >> 20} MB are"]
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # this VACUUM converts: later sweeps need no copy
        conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return free - pragma("freelist_count"), []


def _needs_a_person(register: Register) -> list[str]:
    from pipolicy_cli import consents, status

    notes = [line for check in status.ATTENTION_CHECKS for line in check(register)]
    minors = sum(1 for row in consents.minors(register) if row["violation"])
    if minors:
        notes.append(f"{minors} minors have no guardian's written consent")
    return notes


def show(register: Register, key: int) -> dict[str, Any]:
    for row in history(register, key=key):
        return row
    raise InvalidInput(f"sweep: no sweep {key}")


def history(register: Register, *, key: int | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM sweeps" + (" WHERE id = ?" if key is not None else "") + " ORDER BY id DESC"
    params: list[Any] = [key] if key is not None else []
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    for values in register.conn.execute(sql, params):
        row = dict(zip(COLUMNS, values))
        row["counts"], row["attention"] = json.loads(row["counts"]), json.loads(row["attention"])
        yield row


def last_success_attention(register: Register, max_age: str | None) -> list[str]:
    """The dead-man check: the last sweep that finished is older than `max_age` (config `sweep-max-age`)."""
    if not max_age:
        return []
    row = register.conn.execute("SELECT max(finished_at) FROM sweeps WHERE state = 'done'").fetchone()
    limit = dates.to_text(dates.now() - dates.parse_duration(max_age))
    if row[0] is None:
        return [f"no retention sweep has finished yet (sweep-max-age is {max_age})"]
    if row[0] < limit:
        return [f"the last retention sweep finished at {row[0]}, longer ago than sweep-max-age ({max_age})"]
    return []
