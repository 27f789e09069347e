"""Property tests: validators and the importer never crash, never half-write, never echo a value."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from hypothesis import HealthCheck, given, settings, strategies as st

from pipolicy_cli import dates, validate
from pipolicy_cli.cli.app import app
from synthetic import people
from typer.testing import CliRunner

TODAY = date(2026, 11, 30)
ZONE = dates.zone("Asia/Shanghai")
FIELDS = list(validate.IMPORT_FIELDS)
MARK = "MARK7Q"


@given(st.text(max_size=40), st.booleans())
def test_field_validators_only_raise_field_errors_that_never_echo(value, marked):
    value = MARK + value if marked else value
    for check in (validate.phone, validate.email, validate.gender, validate.user_id,
                  lambda v: validate.id_number(v, TODAY), lambda v: validate.birth_date(v, TODAY)):
        try:
            check(value)
        except validate.FieldError as exc:
            assert MARK not in str(exc)


@given(st.dictionaries(st.sampled_from(FIELDS + ["colour"]), st.none() | st.text(max_size=30) | st.integers() | st.lists(st.text())))
def test_user_validation_collects_every_fault(raw):
    try:
        values = validate.user(raw, TODAY, ZONE)
    except validate.UserErrors as exc:
        assert exc.errors and all(isinstance(error, validate.FieldError) for error in exc.errors)
    else:
        assert values["user_id"]


def test_valid_synthetic_people_validate():
    for person in people(200, seed=3):
        values = validate.user(person, TODAY, ZONE)
        assert values["id_number"] == person["id_number"]


row_values = st.one_of(
    st.text(max_size=20).map(lambda text: MARK + text),
    st.integers().map(str),
    st.just(""),
    st.text(alphabet="0123456789X", min_size=15, max_size=19),
    st.just("x" * 70_000),
)


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=sorted({key for row in rows for key in row}) or ["user_id"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


payloads = st.one_of(
    st.binary(max_size=300),
    st.lists(st.dictionaries(st.sampled_from(FIELDS), row_values, max_size=5), max_size=5).map(_csv),
    st.lists(st.dictionaries(st.sampled_from(FIELDS), row_values | st.integers() | st.none(), max_size=5), max_size=5).map(
        lambda rows: "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    ),
    st.lists(st.dictionaries(st.sampled_from(FIELDS), row_values, max_size=5), max_size=5).map(
        lambda rows: json.dumps(rows, ensure_ascii=False).encode("utf-8")
    ),
    st.binary(max_size=200).map(lambda junk: b"user_id,name\nu1,\"" + junk),
    st.text(max_size=100).map(lambda text: ("user_id,name\n" + text).encode("gb18030", errors="replace")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=payloads)
def test_the_importer_never_crashes_half_writes_or_echoes(tmp_path_factory, payload):
    folder = tmp_path_factory.mktemp("imp")
    db = folder / "r.db"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--db", str(db)]).exit_code == 0
    source = folder / "in.data"
    source.write_bytes(payload)
    result = runner.invoke(app, ["user", "import", str(source), "--db", str(db), "--format", "json"])
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr
    assert MARK not in result.stderr
    status = json.loads(runner.invoke(app, ["status", "--db", str(db), "--format", "json"]).stdout)
    if result.exit_code == 4:
        assert status["counts"]["users"] == 0
    else:
        assert status["counts"]["users"] == json.loads(result.stdout)["inserted"]
