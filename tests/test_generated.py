"""Completion scripts and the README's command reference are generated from the CLI and kept current."""

import shutil
import subprocess
from pathlib import Path

import pytest

from pipolicy_cli.cli import completion_scripts as completion, reference
from pipolicy_cli.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"bash": "pipolicy.bash", "zsh": "_pipolicy", "fish": "pipolicy.fish"}


@pytest.mark.parametrize("shell", list(SCRIPTS))
def test_completion_scripts_are_current(shell):
    expected = completion.render(shell, completion.tree(app))
    stored = (ROOT / "completions" / SCRIPTS[shell]).read_text(encoding="utf-8")
    assert stored == expected, f"completions/{SCRIPTS[shell]} is stale: run `pipolicy completion {shell} > completions/{SCRIPTS[shell]}`"


def test_completion_command_prints_the_script(cli):
    result = cli("completion", "bash")
    assert result.exit_code == 0
    assert result.stdout == (ROOT / "completions" / "pipolicy.bash").read_text(encoding="utf-8")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_parse(shell):
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    subprocess.run([shell, "-n", str(ROOT / "completions" / SCRIPTS[shell])], check=True)


def test_bash_completion_completes(tmp_path):
    if not shutil.which("bash"):
        pytest.skip("bash not installed")
    script = ROOT / "completions" / "pipolicy.bash"

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (
            f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
            f"COMP_CWORD={len(words) - 1}; _pipolicy; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        )
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout
        return out.split()

    assert "audit" in complete("pipolicy au")
    assert complete("pipolicy audit v") == ["verify"]
    assert complete("pipolicy init --jurisdiction g") == ["gdpr"]
    assert "--newest-first" in complete("pipolicy audit list --")


def test_every_command_and_option_is_documented():
    import typer

    root = typer.main.get_command(app)
    undocumented = []

    def walk(command, path):
        if not (command.help or "").strip():
            undocumented.append(path or "pipolicy")
        for param in command.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                undocumented.append(f"{path} {param.opts[0]}")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(root, "")
    assert undocumented == []


def test_readme_reference_is_current():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert reference.splice(readme, reference.render()) == readme, (
        "README command reference is stale: run `python -m pipolicy_cli.cli.reference --write README.md`"
    )


def test_readme_opens_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.strip()]
    commands = [line for line in lines[:12] if line.startswith("python3 -m venv")]
    assert len(commands) == 2
    assert "pipolicy quickstart" in commands[0]
    assert "'.[test]'" in commands[1] and "pytest" in commands[1]
    # .ci/run takes both lines from the README by these patterns and runs them as written.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "grep -m1 '^python3 -m venv .* pipolicy quickstart' README.md" in ci
    assert """grep -m1 "^python3 -m venv .* pip install '.\\[test\\]'" README.md""" in ci
