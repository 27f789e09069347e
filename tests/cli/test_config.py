import json

from pipolicy_cli import paths


def settings(cli, db):
    return {row["key"]: row for row in cli.json("config", "show", "--db", db)}


def test_set_and_show(cli, db):
    for key, value in (
        ("organisation", "Demo IoT Co., Ltd."),
        ("contact", "hotline 10086"),
        ("dpo", "Wang Fang <dpo@example.com>"),
        ("timezone", "Europe/Berlin"),
    ):
        assert cli.json("config", "set", key, value, "--db", db)["value"] == value
    shown = settings(cli, db)
    assert shown["organisation"]["value"] == "Demo IoT Co., Ltd."
    assert shown["timezone"] == {**shown["timezone"], "value": "Europe/Berlin", "source": "register"}


def test_every_set_is_one_audit_event_naming_the_key_not_the_value(cli, db):
    cli.json("config", "set", "contact", "secret-hotline-4711", "--db", db, )
    events = cli.json("audit", "list", "--db", db, "--command", "config set")
    assert len(events) == 1
    assert events[0]["fields"] == ["contact"]
    assert "secret-hotline-4711" not in json.dumps(cli.json("audit", "list", "--db", db))


def test_bad_values_are_refused_and_change_nothing(cli, db):
    head = cli.json("audit", "head", "--db", db)
    for key, value in (("timezone", "Mars/Olympus"), ("jurisdiction", "xx"), ("nope", "x"), ("contact", " "), ("contact", "a\x00b")):
        result = cli("config", "set", key, value, "--db", db)
        assert result.exit_code == 4, (key, result.stderr)
        assert result.stderr.count("\n") <= 2
    assert cli.json("audit", "head", "--db", db) == head


def test_key_file_must_be_private(cli, db, tmp_path):
    loose = tmp_path / "loose.key"
    loose.write_text("k" * 64)
    loose.chmod(0o644)
    result = cli("config", "set", "key-file", loose, "--db", db)
    assert result.exit_code == 4 and "chmod 600" in result.stderr
    loose.chmod(0o600)
    assert cli.json("config", "set", "key-file", loose, "--db", db)["value"] == str(loose)


def test_timezone_sources(cli, db, monkeypatch):
    assert settings(cli, db)["timezone"]["source"] == "profile pipl"
    assert settings(cli, db)["timezone"]["value"] == "Asia/Shanghai"
    monkeypatch.setenv("PIPOLICY_TZ", "UTC")
    assert settings(cli, db)["timezone"]["source"] == "PIPOLICY_TZ"


def test_jurisdiction_can_be_changed_through_config(cli, db):
    cli.json("config", "set", "jurisdiction", "ccpa", "--db", db)
    assert cli.json("status", "--db", db)["jurisdiction"] == "ccpa"


def test_db_goes_to_the_user_config_file(cli, tmp_path):
    target = tmp_path / "elsewhere.db"
    cli.json("config", "set", "db", str(target))
    assert paths.read_config_file() == {"db": str(target)}
    assert paths.config_file().stat().st_mode & 0o077 == 0


def test_show_without_a_register_still_says_where_it_would_be(cli, home):
    result = cli("config", "show", "--format", "json")
    assert result.exit_code == 0
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert rows["db"]["value"] == str(home / "register.db")
    assert "pipolicy init" in result.stderr


def test_a_broken_config_file_is_reported(cli, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("db = [unterminated")
    result = cli("status")
    assert result.exit_code == 4
    assert "config file" in result.stderr and "Traceback" not in result.stderr
