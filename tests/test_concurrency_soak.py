"""A sweep, two importers and an officer against one register at once, for a bounded time.

By default about 8 s of running; `pytest tests/test_concurrency_soak.py --soak-seconds 120` for a longer soak.
Every command must succeed (none may give up with "database is locked"), nothing committed may be lost,
and every count must add up: events imported + in the template = events present + events the sweeps deleted.
"""

import json
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

from crash_harness import Scene, Size, build_template, check_whole, pipolicy_command

ERASABLE = range(1, 501)  # the officer erases these people, in order
IMPORTED_FOR = range(501, 1001)  # the importers' events are about these
EVENTS_PER_FILE = 400


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Soak:
    """Loops that each run one command after another until the deadline, and what they saw."""

    def __init__(self, scene: Scene, seconds: float):
        self.scene = scene
        self.deadline = time.monotonic() + seconds
        self.failures: list[str] = []
        self.runs: dict[str, int] = {}
        self.swept: list[int] = []  # what each sweep said it deleted from the access log
        self.imported: dict[str, dict[str, int]] = {}  # per importer: events inserted, and the recent ones among them
        self.erased: list[str] = []
        self.lock = threading.Lock()
        now = datetime.now(timezone.utc)
        self.old, self.recent = stamp(now - timedelta(days=730)), stamp(now - timedelta(hours=1))

    def call(self, loop: str, *args: str) -> dict | None:
        done = subprocess.run([*pipolicy_command(), *args, "--format", "json"], env=self.scene.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=300)
        with self.lock:
            self.runs[loop] = self.runs.get(loop, 0) + 1
            if done.returncode != 0:
                self.failures.append(f"{loop}: pipolicy {' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()}")
                return None
        return json.loads(done.stdout)

    def loop(self, name: str, step) -> threading.Thread:
        def body() -> None:
            number = 0
            while time.monotonic() < self.deadline:
                number += 1
                if not step(number):
                    return
        thread = threading.Thread(target=body, name=name)
        thread.start()
        return thread

    def sweep(self, number: int) -> bool:
        summary = self.call("sweep", "retention", "sweep", "--yes", "--batch-size", "500")
        if summary is not None:
            self.swept.append(summary["counts"]["table access_log: delete"])
        return True

    def importer(self, name: str):
        totals = self.imported.setdefault(name, {"inserted": 0, "recent": 0})

        def step(number: int) -> bool:
            path = self.scene.folder / f"{name}-{number}.ndjson"
            with path.open("w", encoding="utf-8") as handle:
                for index in range(EVENTS_PER_FILE):
                    user = IMPORTED_FOR[(index * 7 + number) % len(IMPORTED_FOR)]
                    handle.write(json.dumps({
                        "at": self.old if index % 2 == 0 else self.recent, "actor": "svc", "user_id": f"U{user:08d}",
                        "categories": "registration", "purpose": "service", "action": "view", "basis": "contract",
                        "source": name, "event_id": f"{number}-{index}"}) + "\n")
            result = self.call(name, "access", "import", str(path), "--batch-size", "100")
            if result is not None:
                totals["inserted"] += result["inserted"]
                totals["recent"] += EVENTS_PER_FILE // 2
            return True
        return step

    def officer(self, number: int) -> bool:
        if number > len(ERASABLE):
            return False
        user = f"U{ERASABLE[number - 1]:08d}"
        exported = self.call("officer", "export", user)
        if exported is not None and exported["person"]["user_id"] != user:
            self.failures.append(f"officer: the export of {user} is someone else's")
        if self.call("officer", "erase", user, "--yes") is not None:
            self.erased.append(user)
        return True


def test_a_sweep_two_importers_and_an_officer_at_once_lose_nothing_and_every_count_adds_up(request, tmp_path):
    template = build_template(tmp_path / "template", Size(1000))
    scene = Scene(template, tmp_path / "soak")
    keys = dict(scene.query("SELECT user_id, id FROM users"))
    soak = Soak(scene, request.config.getoption("--soak-seconds"))
    threads = [soak.loop("sweep", soak.sweep), soak.loop("importer-a", soak.importer("importer-a")),
               soak.loop("importer-b", soak.importer("importer-b")), soak.loop("officer", soak.officer)]
    for thread in threads:
        thread.join()

    print(f"soak: {soak.runs} commands, {len(soak.erased)} people erased, {sum(soak.swept)} events swept")
    assert not soak.failures, "\n".join(soak.failures)
    assert all(soak.runs.get(name) for name in ("sweep", "importer-a", "importer-b", "officer")), soak.runs
    assert soak.erased and sum(soak.swept) > 0, (soak.erased, soak.swept)
    scene.run("status")  # any command finishes a scrub a reader held up
    check_whole(scene, through_the_cli=True)

    history = scene.value("SELECT json_group_array(json_object('state', state, 'counts', json(counts))) FROM sweeps")
    sweeps = json.loads(history)
    assert [s["state"] for s in sweeps] == ["done"] * len(soak.swept)
    swept = sum(s["counts"].get("table access_log: delete", 0) for s in sweeps)
    assert swept == sum(soak.swept), "the sweeps' history and what they reported differ"
    imported = sum(totals["inserted"] for totals in soak.imported.values())
    present = scene.value("SELECT count(*) FROM access_log")
    assert template.size.events + imported == present + swept, (template.size.events, imported, present, swept)

    cutoff = stamp(datetime.now(timezone.utc) - timedelta(days=365))
    for name, totals in soak.imported.items():
        assert totals["inserted"] == soak.runs[name] * EVENTS_PER_FILE  # no import skipped or repeated anything
        recent, distinct = scene.query("SELECT count(*) FILTER (WHERE at >= ?), count(DISTINCT event_id) FROM access_log "
                                       "WHERE source = ?", (cutoff, name))[0]
        assert recent == totals["recent"], f"{name}: {totals['recent'] - recent} recent events committed are gone"
        assert distinct == scene.value("SELECT count(*) FROM access_log WHERE source = ?", (name,))

    erased_keys = [keys[user] for user in soak.erased]
    marks = ",".join("?" * len(erased_keys))
    assert scene.value(f"SELECT count(*) FROM users WHERE id IN ({marks})", tuple(erased_keys)) == 0
    for table in ("data_items", "consents", "access_log"):
        assert scene.value(f"SELECT count(*) FROM {table} WHERE user_key IN ({marks})", tuple(erased_keys)) == 0, table
    assert scene.value("SELECT count(*) FROM users") == template.size.users - len(soak.erased)
    assert scene.value("SELECT count(*) FROM data_items") == 2 * (template.size.users - len(soak.erased))
    assert scene.value("SELECT count(*) FROM erasures WHERE scrub_pending = 0") == len(soak.erased)
    journal = scene.key.with_name(scene.key.name + ".tombstones").read_text().splitlines()
    assert len(journal) == len(soak.erased)
