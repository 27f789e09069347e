"""SIGKILL at random moments: the register stays whole, every change is all or nothing, a rerun finishes the job.

A handful of kills by default; the full run is `pytest tests/test_crash_safety.py --crash-kills 100`
(`--crash-users` sets the register's size, `--crash-seed` replays a failure's moments).
"""

import math
import os
import shutil
import time

import pytest

from crash_harness import (COMMANDS, Scene, Size, build_template, check_after_kill, check_after_rerun, kill_at_random,
                           kill_inside, replay_note)


class Crash:
    def __init__(self, config: pytest.Config, folder):
        self.folder = folder
        self.seed = config.getoption("--crash-seed")
        if self.seed is None:
            self.seed = int.from_bytes(os.urandom(4), "big")
        self.kills = config.getoption("--crash-kills")
        self.users = config.getoption("--crash-users")
        self.template = build_template(folder / "template", Size(self.users))
        self.references: dict[str, tuple[dict, float]] = {}

    def kills_for(self, command: str) -> int:
        return math.ceil(self.kills / len(COMMANDS))

    def reference(self, command: str) -> tuple[dict, float]:
        """What an uninterrupted run leaves, and how long it takes."""
        if command not in self.references:
            scene = Scene(self.template, self.folder / f"reference-{command.replace(' ', '-')}")
            started = time.monotonic()
            scene.run(*self.template.arguments(command))
            seconds = time.monotonic() - started
            snapshot = scene.snapshot()
            check_after_rerun(scene, command, snapshot)
            self.references[command] = snapshot, seconds
            shutil.rmtree(scene.folder)
        return self.references[command]

    def replay(self) -> str:
        return f"replay with: pytest {__file__} --crash-seed {self.seed} --crash-kills {self.kills} --crash-users {self.users}"


@pytest.fixture(scope="module")
def crash(request, tmp_path_factory):
    return Crash(request.config, tmp_path_factory.mktemp("crash"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_killed_at_random_moments_leaves_a_whole_register_and_a_rerun_finishes_it(crash, command, tmp_path):
    reference, seconds = crash.reference(command)
    arguments = crash.template.arguments(command)
    wanted = crash.kills_for(command)
    killed = attempt = 0
    moments = {"delay": 0, "writes": 0}
    while killed < wanted:
        attempt += 1
        assert attempt <= 3 * wanted + 5, f"{command} kept finishing before the kill came; {crash.replay()}"
        scene = Scene(crash.template, tmp_path / f"attempt-{attempt}")
        kill = kill_at_random(scene, arguments, f"{crash.seed}-{command}-{attempt}", seconds)
        with replay_note(f"{command}, attempt {attempt}: {kill.describe()}; {crash.replay()}"):
            if kill.killed:
                state = check_after_kill(scene, command)
                scene.run(*arguments, expect=3 if state == "erased" else 0)  # an erased person is no longer found
                killed += 1
                moments[kill.how] += 1
            else:
                assert kill.finished.returncode == 0, kill.finished.stderr
            check_after_rerun(scene, command, reference)
        shutil.rmtree(scene.folder)
    print(f"{command}: {killed} kills in {attempt} runs ({moments['delay']} after a delay, {moments['writes']} "
          f"after writes), seed {crash.seed}")


# Where a kill is most likely to leave something half done, and which call of the function it comes at.
KILL_POINTS = [
    ("user import", "pipolicy_cli.register.store:Transaction.record", 2),  # the second batch is written, not committed
    ("erase", "pipolicy_cli.erasure:_journal", 1),  # committed; the tombstone is not in the journal yet
    ("erase", "pipolicy_cli.erasure:scrub", 1),  # the WAL still holds the person's old pages
    ("backup create", "pipolicy_cli.register.store:Transaction.__exit__", 1),  # the file is started, its row not committed
    ("backup create", "pipolicy_cli.backups:_sync_folder", 1),  # the file is whole and renamed, its size not recorded
]


@pytest.mark.parametrize("command, point, call", KILL_POINTS)
def test_a_kill_at_the_most_fragile_moments_is_finished_by_a_rerun(crash, command, point, call, tmp_path):
    reference, _ = crash.reference(command)
    arguments = crash.template.arguments(command)
    scene = Scene(crash.template, tmp_path / "scene")
    kill_inside(scene, arguments, point, call)
    state = check_after_kill(scene, command)
    scene.run(*arguments, expect=3 if state == "erased" else 0)
    check_after_rerun(scene, command, reference)
