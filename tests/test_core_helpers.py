import os
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from pipolicy_cli import catalog, dates, masking
from pipolicy_cli.errors import InvalidInput

SHANGHAI = dates.zone("Asia/Shanghai")


def test_times_without_a_zone_are_read_in_the_register_zone():
    assert dates.to_text(dates.parse_time("2026-10-01 08:00", SHANGHAI)) == "2026-10-01T00:00:00Z"
    assert dates.to_text(dates.parse_time("2026-10-01", SHANGHAI)) == "2026-09-30T16:00:00Z"
    assert dates.to_text(dates.parse_time("2026-10-01T08:00:00+02:00", SHANGHAI)) == "2026-10-01T06:00:00Z"
    assert dates.to_text(dates.parse_time("1 Oct 2026 08:00", SHANGHAI)) == "2026-10-01T00:00:00Z"


@given(st.text(max_size=40))
def test_parse_time_never_crashes(text):
    try:
        moment = dates.parse_time(text, SHANGHAI)
    except InvalidInput as exc:
        assert str(exc).startswith("time: ")
    else:
        assert moment.tzinfo is not None


def test_durations():
    from dateutil.relativedelta import relativedelta

    assert dates.parse_duration("90d") == relativedelta(days=90)
    assert dates.parse_duration("6 months") == relativedelta(months=6)
    assert dates.parse_duration("P3Y") == relativedelta(years=3)
    assert dates.parse_duration("P1Y6M") == relativedelta(years=1, months=6)
    for bad in ("", "P", "3 fortnights", "-5d", "90"):
        with pytest.raises(InvalidInput):
            dates.parse_duration(bad)


def test_to_text_is_utc_with_z():
    assert dates.to_text(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"


def test_masks():
    assert masking.name("张三") == "张*"
    assert masking.phone("+8613812345678") == "138****5678"
    assert masking.phone("13812345678") == "138****5678"
    assert masking.id_number("11010119900307803X") == "110101********803X"
    assert masking.email("alice@example.com") == "a***@example.com"
    assert masking.name(None) is None


@given(st.text(min_size=1, max_size=60))
def test_masks_never_show_more_than_their_pattern(value):
    assert len([ch for ch in masking.id_number(value) if ch != "*"]) <= 10
    assert len([ch for ch in masking.phone(value) if ch != "*"]) <= 7
    assert len([ch for ch in masking.name(value) if ch != "*"]) <= 1
    local = masking.email(value).split("@")[0]
    assert len(local.replace("*", "")) <= 1


def test_catalog_has_the_policy_codes_with_clauses():
    assert catalog.codes("purposes") == [
        "service", "improvement", "personalization", "messaging",
        "ad-measurement", "software-updates", "surveys", "other-agreed",
    ]
    assert set(catalog.codes("scopes")) == {"sharing", "disclosure", "sensitive", "cross-border", "location", "tracking"}
    assert len(catalog.codes("bases")) == 11
    assert {p["code"]: p["default_basis"] for p in catalog.load_catalog()["purposes"]}["service"] == "contract"


@pytest.mark.parametrize("code", ["pipl", "gdpr", "ccpa"])
def test_every_profile_maps_every_basis_with_a_source(code):
    profile = catalog.load_profile(code)
    assert set(profile["bases"]) == set(catalog.codes("bases"))
    assert all(rule["source"] for rule in profile["bases"].values())
    assert all(floor["source"] and floor["keep"] for floor in profile["retention_floors"])
    dates.zone(profile["timezone"])
    for floor in profile["retention_floors"]:
        dates.parse_duration(floor["keep"])


def test_a_profile_rule_without_a_source_is_refused(tmp_path, monkeypatch):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "bad.toml").write_text('code = "bad"\n[requests]\ndeadline = "1 day"\n')
    monkeypatch.setattr(catalog, "data_path", lambda *parts: tmp_path.joinpath(*parts))
    catalog.load_profile.cache_clear()
    try:
        with pytest.raises(InvalidInput, match="without a source"):
            catalog.load_profile("bad")
    finally:
        catalog.load_profile.cache_clear()


def test_scratch_folders_of_processes_that_are_gone_are_removed(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from pipolicy_cli import paths

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f"{paths.SCRATCH_PREFIX}spool-{int(gone.stdout)}-abc"  # as a killed import leaves it
    (left / "spool.db").parent.mkdir()
    (left / "spool.db").write_text("personal values")
    living = tmp_path / f"{paths.SCRATCH_PREFIX}stdin-{os.getppid()}-def"
    living.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()

    made = paths.scratch_folder("stdin")
    assert made.parent == tmp_path and made.name.startswith(f"{paths.SCRATCH_PREFIX}stdin-{os.getpid()}-")
    assert oct(made.stat().st_mode & 0o777) == "0o700"
    assert not left.exists() and living.exists() and other.exists()
