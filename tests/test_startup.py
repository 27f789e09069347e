"""`pipolicy --help` and `--version` stay fast: nothing heavy is imported for them."""

import json
import subprocess
import sys

HEAVY = ["sqlite_utils", "tabulate", "dateutil", "jinja2", "rich.progress", "sqlite3", "phonenumbers", "holidays"]

PROBE = """
import json, sys
sys.argv = ["pipolicy", *json.loads(sys.argv[1])]
from pipolicy_cli.entry import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_imports_nothing_heavy():
    modules = loaded_modules("--help")
    assert "typer" in modules
    assert not [name for name in HEAVY if name in modules]


def test_group_help_imports_nothing_heavy():
    modules = loaded_modules("audit", "--help")
    assert not [name for name in HEAVY if name in modules]


def test_version_is_answered_before_typer_loads():
    modules = loaded_modules("--version")
    assert "typer" not in modules and "rich" not in modules


def test_help_piped_has_no_ansi_codes():
    result = subprocess.run([sys.executable, "-m", "pipolicy_cli", "--help"], capture_output=True, text=True, check=True)
    assert "\x1b[" not in result.stdout
    assert "quickstart" in result.stdout


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "pipolicy_cli", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("pipolicy ")


def test_status_imports_no_validation_library(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPOLICY_HOME", str(tmp_path / "home"))
    db = tmp_path / "r.db"
    subprocess.run([sys.executable, "-m", "pipolicy_cli", "init", "--db", str(db)], check=True, capture_output=True)
    modules = loaded_modules("status", "--db", str(db), "--format", "json")
    assert not [name for name in ("phonenumbers", "email_validator", "stdnum", "holidays", "sqlite_utils") if name in modules]
