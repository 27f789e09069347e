"""Hostile input on every way data comes in (issue #12).

Whatever arrives, a command exits 0 or 4 (or reports what it skipped), prints no traceback, names rows and
fields but never a personal value (MARK is planted in them), and a refusal writes nothing at all: every table's
row count, the audit chain's head and the settings are compared before and after.

The properties drive the CLI against a copy of one small populated register. Their example counts scale with
the hypothesis profile: `pytest tests/test_hostile_input.py --hypothesis-profile thorough` runs ten times more.
"""

import csv
import io
import itertools
import json
import re
import zipfile
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from synthetic import people, resident_id_for
from tests_support import MARK, copy_register, populated_register, snapshot

FORMATS = ("csv", "json", "ndjson")
USER_FIELDS = ("user_id", "name", "gender", "birth_date", "address", "phone", "email", "id_number", "contact", "status",
               "created_at", "cancelled_at")
ITEM_FIELDS = ("user_id", "category", "field", "system", "source", "collected_at", "value")
EVENT_FIELDS = ("at", "actor", "user_id", "categories", "purpose", "action", "basis", "source", "event_id")
CONSENT_FIELDS = ("user_id", "action", "purpose", "at", "method", "evidence", "by_guardian", "relation", "written_consent",
                  "signal", "source", "event_id")
INJECTIONS = ["'; DROP TABLE users; --", '" OR 1=1 --', "x'); DELETE FROM audit_events; --", "1 OR 1=1",
              "../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "{{ 7*7 }}", "{% include 'x' %}", "[bold]x[/bold]",
              "<script>alert(1)</script>", "%s%s%n", "$(id)", "\u202eevil", "NULL", "\\N"]
# Lines that break a file's format: an unterminated quote, a ragged row, broken JSON, bad UTF-8, NUL bytes.
JUNK_LINES = [b'"unterminated, quote', b'a,"b"c,d', b'{"broken": ', b"\xff\xfe not UTF-8", b"[1, 2", b"null",
              b'"a string"', b"\x00\x00", b",,,,,,,,,,,,,,,", b"{}", b"[]", b'{"a":' * 2000]
SKIPPED = re.compile(r"warning: skipped (row \d+: [^:]+: .+|\.\.\. and \d+ more invalid rows)\Z")
CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z\Z")


def examples(count: int) -> settings:
    """`count` examples under the default profile, scaled with the active profile's max_examples."""
    return settings(max_examples=max(1, round(count * settings.default.max_examples / 100)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def marked(strategy):
    """The value as drawn, or with MARK before or after it: wherever it lands in a message, MARK shows it."""
    return strategy.flatmap(lambda value: st.sampled_from([value, MARK + value, value + MARK]))


texts = marked(st.one_of(
    st.text(max_size=30),  # any Unicode, control characters included
    st.sampled_from(INJECTIONS),
    st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), min_size=1, max_size=6),
    st.just("x" * 70_000),
    st.from_regex(r"\A[0-9+\-() X]{0,25}\Z"),  # number-like
))
not_text = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.just(MARK), max_size=2),
                     st.dictionaries(st.just(MARK), st.integers(), max_size=1))
unpaired_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3).map(lambda text: MARK + text)
values = st.one_of(texts, not_text, unpaired_surrogates)
_fresh = itertools.count(1000)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return populated_register(tmp_path_factory.mktemp("template"))


@pytest.fixture
def reg(template, tmp_path):
    return copy_register(template, tmp_path / "reg")


@st.composite
def mutations(draw, fields):
    """One fault in a file of valid records: a field replaced, dropped or added, and maybe a line of junk."""
    return {"row": draw(st.integers(0, 2)), "field": draw(st.sampled_from([*fields, None])),
            "drop": draw(st.booleans()), "value": draw(values),
            "junk": draw(st.none() | st.tuples(st.integers(0, 5), st.sampled_from(JUNK_LINES)))}


def mutated(rows: list[dict], mutation: dict) -> list[dict]:
    row = rows[mutation["row"] % len(rows)]
    if mutation["field"] is None:
        row[MARK + " colour"] = mutation["value"]
    elif mutation["drop"]:
        row.pop(mutation["field"], None)
    else:
        row[mutation["field"]] = mutation["value"]
    return rows


def encoded(rows: list[dict], fmt: str, junk) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, list(dict.fromkeys(key for row in rows for key in row)), lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: value if isinstance(value, str) else "" if value is None else json.dumps(value)
                          for key, value in row.items()} for row in rows)
        lines = out.getvalue().encode("utf-8", "surrogatepass").splitlines(keepends=True)  # a surrogate: bad UTF-8
    elif fmt == "ndjson":
        lines = [json.dumps(row).encode() + b"\n" for row in rows]  # ASCII: unpaired surrogates as \ud800 escapes
    else:
        lines = [b"[\n", *(json.dumps(row).encode() + (b",\n" if n < len(rows) else b"\n") for n, row in enumerate(rows, 1)),
                 b"]\n"]
    if junk:
        at, line = junk
        lines.insert(at % (len(lines) + 1), line + b"\n")
    return b"".join(lines)


def assert_safe(result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert MARK.lower() not in result.stderr.lower(), result.stderr


def assert_refused(result, before: dict, db, code: int = 4) -> None:
    """Exit 4 (or 3, not found): one stderr line per problem, then the error and its JSON line; nothing written."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.rstrip("\n").split("\n") if result.stderr else []
    error = json.loads(lines[-1])["error"]
    assert (error["exit_code"], error["kind"]) == (code, {3: "not_found", 4: "invalid_input"}[code])
    assert lines[-2] == "pipolicy: error: " + error["message"]
    problems = error.get("problems", [])
    assert lines[:-2] == ([] if problems == [error["message"]] else problems)
    assert snapshot(db) == before


def assert_imported(result, before: dict, db, table: str) -> None:
    """Exit 4 and nothing written, or exit 0: every row counted, each skipped one reported on its own line."""
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    if result.exit_code == 4:
        assert_refused(result, before, db)
        return
    summary = json.loads(result.stdout)
    assert snapshot(db)[table] - before[table] == summary["inserted"]
    accounted = ("inserted", "updated", "unchanged", "skipped", "invalid")
    assert sum(summary.get(key, 0) for key in accounted) == summary["rows"], summary
    lines = result.stderr.rstrip("\n").split("\n") if result.stderr else []
    assert all(SKIPPED.match(line) for line in lines), lines
    assert bool(lines) == bool(summary["invalid"])


def run_import(cli, db, command: list[str], fmt: str, payload: bytes, skip: bool, stdin: bool):
    path = db.parent / f"input.{fmt}"
    path.write_bytes(payload)
    options = ["--skip-invalid"] if skip else []
    if stdin:
        return cli(*command, "-", "--input-format", fmt, *options, "--db", db, "--format", "json", input=payload)
    return cli(*command, path, *options, "--db", db, "--format", "json")


# Imports ---------------------------------------------------------------------------------------------------------

def fresh_people(count: int) -> list[dict]:
    rows = list(people(count, seed=5, start=next(_fresh) * 10))
    return [{**row, "name": MARK + row["name"], "contact": MARK} for row in rows]


@examples(20)
@given(fmt=st.sampled_from(FORMATS), mutation=mutations(USER_FIELDS), skip=st.booleans(), stdin=st.booleans())
def test_user_import_takes_a_file_whole_or_reports_each_skip(cli, reg, fmt, mutation, skip, stdin):
    before = snapshot(reg)
    payload = encoded(mutated(fresh_people(3), mutation), fmt, mutation["junk"])
    assert_imported(run_import(cli, reg, ["user", "import"], fmt, payload, skip, stdin), before, reg, "users")


@examples(20)
@given(fmt=st.sampled_from(FORMATS), mutation=mutations(ITEM_FIELDS), skip=st.booleans(), stdin=st.booleans())
def test_data_import_takes_a_file_whole_or_reports_each_skip(cli, reg, fmt, mutation, skip, stdin):
    serial = next(_fresh)
    rows = [{"user_id": f"U0000000{n}", "category": category, "field": f"field{serial}", "system": system,
             "source": "provided", "collected_at": "2026-01-02 10:00", "value": MARK + "value"}
            for n, category, system in ((1, "device", "crm"), (2, "location", "crm"), (3, "order", "sms-gateway"))]
    before = snapshot(reg)
    payload = encoded(mutated(rows, mutation), fmt, mutation["junk"])
    assert_imported(run_import(cli, reg, ["data", "import"], fmt, payload, skip, stdin), before, reg, "data_items")


@examples(20)
@given(fmt=st.sampled_from(FORMATS), mutation=mutations(EVENT_FIELDS), skip=st.booleans(), stdin=st.booleans())
def test_access_import_takes_a_file_whole_or_reports_each_skip(cli, reg, fmt, mutation, skip, stdin):
    serial = next(_fresh)
    rows = [{"at": "2026-11-01T10:00:00Z", "actor": "app", "user_id": f"U0000000{n}", "categories": "order",
             "purpose": "service", "action": "use", "basis": "consent", "source": "app", "event_id": f"e{serial}-{n}"}
            for n in (3, 4, 5)]
    before = snapshot(reg)
    payload = encoded(mutated(rows, mutation), fmt, mutation["junk"])
    assert_imported(run_import(cli, reg, ["access", "import"], fmt, payload, skip, stdin), before, reg, "access_log")


@examples(20)
@given(fmt=st.sampled_from(FORMATS), mutation=mutations(CONSENT_FIELDS), skip=st.booleans(), stdin=st.booleans())
def test_consent_import_takes_a_file_whole_or_reports_each_skip(cli, reg, fmt, mutation, skip, stdin):
    serial = next(_fresh)
    # The people are children: a grant carries the guardian's written consent, and no mutation can drop all three.
    rows = [{"user_id": "U00000003", "action": "grant", "purpose": "personalization", "at": "2026-02-01 10:00",
             "method": "paper", "evidence": MARK + "-form", "by_guardian": MARK + "王芳", "relation": "mother",
             "written_consent": MARK + "-signed", "source": "app", "event_id": f"c{serial}-1"},
            {"user_id": "U00000004", "action": "withdraw", "purpose": "sharing", "at": "2026-03-01T10:00:00Z", "signal": "gpc",
             "source": "app", "event_id": f"c{serial}-2"},
            {"user_id": "U00000005", "action": "withdraw", "purpose": "tracking", "signal": "dnt", "source": "app",
             "event_id": f"c{serial}-3"}]
    before = snapshot(reg)
    payload = encoded(mutated(rows, mutation), fmt, mutation["junk"])
    assert_imported(run_import(cli, reg, ["consent", "import"], fmt, payload, skip, stdin), before, reg, "consents")


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_an_unpaired_surrogate_escape_is_a_bad_row_not_a_crash(cli, reg, fmt):
    """`"\\ud800"` is valid JSON but no text: it could be neither stored nor printed."""
    bad = MARK + "\ud800"
    for command, row in ((["user", "import"], {"user_id": "S1", "name": bad}),
                         (["data", "import"], {"user_id": "U00000001", "category": "device", "field": "f", "system": "crm",
                                               "value": bad}),
                         (["access", "import"], {"at": "2026-11-01T10:00:00Z", "actor": "app", "user_id": "U00000001",
                                                 "categories": "order", "purpose": bad, "action": "use", "basis": "consent"}),
                         (["consent", "import"], {"user_id": "U00000001", "action": "grant", "purpose": "messaging",
                                                  "evidence": bad})):
        before = snapshot(reg)
        result = run_import(cli, reg, command, fmt, encoded([row], fmt, None), skip=False, stdin=False)
        assert_refused(result, before, reg)
        assert "row 1: row: holds an unpaired surrogate escape" in result.stderr
    answers = cli("consent", "check", "-", "--db", reg, input=json.dumps({"user_id": bad, "purpose": "messaging"}) + "\n")
    assert answers.exit_code == 4 and "error" in json.loads(answers.stdout)
    noted = cli("task", "done", "-", "--db", reg, "--format", "json", input=json.dumps({"id": 1, "note": bad}) + "\n")
    assert noted.exit_code == 4 and "line 1: row: holds an unpaired surrogate escape" in noted.stderr


def test_an_unknown_field_is_named_only_when_it_reads_like_a_field_name(cli, reg):
    """Keys can be values in the wrong place (a CSV header row that is half data, JSON built by mistake)."""
    person = fresh_people(1)[0]
    rows = [{"user_id": "S2", person["name"]: person["phone"], "colour": "red"}, {person["name"]: person["email"]}]
    for fmt in FORMATS:
        before = snapshot(reg)
        result = run_import(cli, reg, ["user", "import"], fmt, encoded(rows, fmt, None), skip=False, stdin=False)
        assert_refused(result, before, reg)
        assert "row 1: colour: unknown field" in result.stderr and "row 1: field: unknown field" in result.stderr
        if fmt != "csv":  # a CSV row has every column of the header
            assert "row 2: row: no known field (is the header line missing?)" in result.stderr
        assert not any(person[key] in result.stderr for key in ("name", "phone", "email"))


def lines_of(*strategies):
    return st.lists(st.one_of(*strategies, st.sampled_from(JUNK_LINES)), min_size=1, max_size=5)


questions = st.fixed_dictionaries(
    {"user_id": st.sampled_from(["U00000001", "U00000002", "nobody"]) | values,
     "purpose": st.sampled_from(["messaging", "service", "sharing", "no-such-purpose"]) | values},
    optional={"at": st.just("2026-06-01 10:00") | values},
).map(lambda question: json.dumps(question).encode())


@examples(25)
@given(lines=lines_of(questions))
def test_consent_check_answers_every_line_of_a_bulk_question_file(cli, reg, lines):
    before = snapshot(reg)
    result = cli("consent", "check", "-", "--db", reg, input=b"\n".join(lines) + b"\n")
    assert result.exit_code in (0, 4, 5), (result.exit_code, result.stderr)
    assert_safe(result)
    answers = [json.loads(line) for line in result.stdout.split("\n") if line]  # NDJSON: a JSON string may hold U+2028
    assert [answer["line"] for answer in answers] == [n for n, line in enumerate(lines, 1) if line.strip()]
    assert (result.exit_code == 4) == any("error" in answer for answer in answers)
    assert snapshot(reg) == before


reports = st.one_of(
    st.integers(-5, 2**70).map(lambda number: str(number).encode()),
    st.fixed_dictionaries({"id": st.sampled_from([1, 2]) | st.integers() | values}, optional={"note": values}).map(
        lambda report: json.dumps(report).encode()),
)


@examples(25)
@given(lines=lines_of(reports), outcome=st.sampled_from(["done", "fail"]))
def test_task_reports_on_stdin_are_recorded_whole_or_not_at_all(cli, reg, lines, outcome):
    before = snapshot(reg)
    reason = ["--reason", "API down"] if outcome == "fail" else []
    result = cli("task", outcome, "-", *reason, "--db", reg, "--format", "json", input=b"\n".join(lines) + b"\n")
    assert result.exit_code in (0, 3, 4), (result.exit_code, result.stderr)  # 3: the one task named is not there
    assert_safe(result)
    if result.exit_code:
        assert_refused(result, before, reg, result.exit_code)
    else:
        assert {row["id"] for row in json.loads(result.stdout)} <= {1, 2}


user_lines = st.one_of(st.sampled_from([b"U00000003", b"U00000004", b"nobody", MARK.encode()]),
                       values.map(lambda value: json.dumps({"user_id": value}).encode()))


@examples(25)
@given(lines=lines_of(user_lines), command=st.sampled_from(["breach affected", "share log"]))
def test_a_file_of_users_is_taken_whole_or_refused(cli, reg, lines, command):
    path = reg.parent / "users.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    args = (["breach", "affected", "1", "--users", path] if command == "breach affected" else
            ["share", "log", "--users", path, "--recipient", "Partner Co", "--categories", "order", "--purpose", "service"])
    before = snapshot(reg)
    result = cli(*args, "--db", reg, "--format", "json")
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    if result.exit_code == 4:
        assert_refused(result, before, reg)


# Options ---------------------------------------------------------------------------------------------------------

TIME_OPTIONS = {  # the command, and the key of its output that holds the time stored
    "consent grant --at": (["consent", "grant", "U00000003", "messaging", "--at"], "at"),
    "request open --received": (["request", "open", "U00000003", "--kind", "access", "--received"], "received_at"),
    "access log --at": (["access", "log", "U00000003", "--categories", "order", "--purpose", "service", "--action", "use",
                         "--at"], "at"),
    "data add --collected-at": (["data", "add", "U00000003", "--category", "device", "--field", "imei", "--system", "crm",
                                 "--collected-at"], "collected_at"),
    "breach open --detected": (["breach", "open", "--summary", "s", "--detected"], "detected_at"),
    "retention sweep --as-of": (["retention", "sweep", "--dry-run", "--as-of"], "as_of"),
    "access list --since": (["access", "list", "--since"], None),
}
times = st.one_of(
    st.text(max_size=25),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).flatmap(lambda moment: st.sampled_from([
        moment.isoformat(), f"{moment:%Y-%m-%d}", f"{moment:%Y-%m-%d %H:%M}", moment.isoformat() + "Z",
        moment.isoformat() + "+14:00", moment.isoformat() + "-12:00", f"{moment:%d/%m/%Y}", f"{moment:%B %d, %Y}"])),
    st.from_regex(r"\A-?\d{1,6}-\d{1,3}-\d{1,3}([ T]\d{1,3}:\d{1,3}(:\d{1,3})?)?(Z|[+-]\d\d:?\d\d)?\Z"),
    st.sampled_from(["", " ", "now", "today", "0", "1e10", "2026-02-30", "2026-01-01T24:00:00", "1899-12-31T23:59:59+08:00"]),
)


@examples(30)
@given(option=st.sampled_from(sorted(TIME_OPTIONS)), value=times)
def test_a_time_option_is_stored_as_a_canonical_utc_time_or_refused(cli, reg, option, value):
    command, key = TIME_OPTIONS[option]
    before = snapshot(reg)
    result = cli(*command[:-1], f"{command[-1]}={value}", "--db", reg, "--format", "json")
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    if result.exit_code == 4:
        assert_refused(result, before, reg)
    elif key:
        assert CANONICAL_TIME.match(json.loads(result.stdout)[key])  # four digits of year: times compare as text


DURATION_OPTIONS = {
    "retention rule set --keep": ["retention", "rule", "set", "--category", "location", "--action", "delete", "--keep"],
    "task pull --lease": ["task", "pull", "--system", "crm", "--lease"],
    "retention sweep --max-duration": ["retention", "sweep", "--dry-run", "--max-duration"],
    "request list --due-within": ["request", "list", "--due-within"],
}
durations = st.one_of(
    st.text(max_size=15),
    st.from_regex(r"\A ?\d{1,25} ?(d|days|w|weeks|m|months|y|years|h|hours|min)? ?\Z"),
    st.from_regex(r"\A[Pp](\d{1,20}Y)?(\d{1,20}M)?(\d{1,20}W)?(\d{1,20}D)?(T\d{1,20}H)?\Z"),
    st.sampled_from(["0d", "1000 years", "1001 years", "P1000Y", "365250d", "366001d", "-5d", "1.5d", "\u0661\u0662d"]),
)


@examples(25)
@given(option=st.sampled_from(sorted(DURATION_OPTIONS)), value=durations)
def test_a_duration_option_works_or_is_refused(cli, reg, option, value):
    command = DURATION_OPTIONS[option]
    before = snapshot(reg)
    result = cli(*command[:-1], f"{command[-1]}={value}", "--db", reg, "--format", "json")
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    if result.exit_code == 4:
        assert_refused(result, before, reg)


def valid_person_values(serial: int) -> dict:
    number, born = resident_id_for(serial, True, datetime(2026, 11, 30).date())
    return {"--phone": f"139{serial:08d}", "--email": f"h{serial}@example.com", "--id-number": number,
            "--birth-date": born.isoformat(), "--gender": "male", "--name": MARK + "王伟", "--address": MARK + "北京市"}


person_values = {
    "--phone": st.from_regex(r"\A\+?[0-9 ()\-]{0,22}\Z") | st.sampled_from(["+86 138 0013 8000", "1" * 5000]),
    "--email": st.emails() | st.from_regex(r"\A[^@\s]{0,12}@[^@\s]{0,12}\Z") | st.just("a" * 300 + "@example.com"),
    "--id-number": st.from_regex(r"\A\d{6}(18|19|20|21)\d\d[01]\d[0-3]\d\d{3}[\dXx]\Z") | st.from_regex(r"\A[\dXx]{0,20}\Z"),
    "--birth-date": times,
    "--gender": st.sampled_from(["male", "F", "男", "other"]),
}


@examples(25)
@given(data=st.data())
def test_user_add_normalises_or_refuses_identifiers(cli, reg, data):
    serial = next(_fresh)
    options = valid_person_values(serial)
    for option in data.draw(st.sets(st.sampled_from(sorted(person_values)), min_size=1, max_size=3)):
        options[option] = data.draw(marked(person_values[option] | st.text(max_size=20)))
    before = snapshot(reg)
    result = cli("user", "add", f"H{serial}", *(f"{option}={value}" for option, value in options.items()),
                 "--db", reg, "--format", "json")
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    if result.exit_code == 4:
        assert_refused(result, before, reg)
    else:
        assert snapshot(reg)["users"] == before["users"] + 1


@examples(25)
@given(by=st.sampled_from(["phone", "email", "id-number", "user-id"]), data=st.data())
def test_looking_someone_up_by_any_value_finds_them_or_says_not_found(cli, reg, by, data):
    value = data.draw(marked(person_values.get(f"--{by}", texts) | st.text(max_size=20)))
    before = snapshot(reg)
    result = cli("user", "show", f"--by={by}", "--db", reg, "--format", "json", "--", value)
    assert result.exit_code in (0, 3, 4), (result.exit_code, result.stderr)
    assert_safe(result)
    assert snapshot(reg) == before


BREACH_TEXT = ("--summary", "--cause", "--harm", "--measures", "--advice", "--contact")


@examples(20)
@given(data=st.data())
def test_breach_text_goes_into_a_notice_as_written(cli, reg, data):
    given_text = {option: data.draw(texts) for option in data.draw(st.sets(st.sampled_from(BREACH_TEXT), min_size=1))}
    complete = {"--summary": "s", "--cause": "c", "--harm": "h", "--measures": "m", "--advice": "a", **given_text}
    before = snapshot(reg)
    opened = cli("breach", "open", "--detected=2026-11-02 10:00", "--categories=order",
                 *(f"{option}={value}" for option, value in complete.items()), "--db", reg, "--format", "json")
    assert opened.exit_code in (0, 4), (opened.exit_code, opened.stderr)
    assert_safe(opened)
    if opened.exit_code == 4:
        assert_refused(opened, before, reg)
        return
    key = str(json.loads(opened.stdout)["id"])
    drafted = cli("breach", "draft", key, "--audience", "public", "--lang", "en", "--format", "json", "--db", reg)
    assert drafted.exit_code in (0, 5), (drafted.exit_code, drafted.stderr)  # 5: a text that was only blanks
    assert_safe(drafted)
    if drafted.exit_code == 0:
        text = json.loads(drafted.stdout)["text"]
        assert all(value.strip() in text for value in given_text.values())  # never read as template code or markup


names = marked(st.text(max_size=30) | st.sampled_from(INJECTIONS) | st.just("x" * 300))


@examples(20)
@given(kind=st.sampled_from(["system", "recipient"]), name=names)
def test_system_and_recipient_names_are_stored_as_written_and_found_again(cli, reg, kind, name):
    before = snapshot(reg)
    extra = ["--kind", "partner"] if kind == "recipient" else []
    result = cli(kind, "add", *extra, "--db", reg, "--format", "json", "--", name)
    assert result.exit_code in (0, 4), (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if result.exit_code == 4:
        assert_refused(result, before, reg)
        return
    stored = json.loads(result.stdout)["name"]
    assert stored == name.strip()
    assert stored in [row["name"] for row in json.loads(cli(kind, "list", "--db", reg, "--format", "json").stdout)]
    use = (["data", "add", "U00000004", "--category", "device", "--field", "imei", f"--system={stored}"] if kind == "system" else
           ["share", "log", "U00000004", f"--recipient={stored}", "--categories", "order", "--purpose", "service"])
    assert cli(*use, "--db", reg, "--format", "json").exit_code == 0


# Pure helpers: many examples cost little --------------------------------------------------------------------------

@examples(100)
@given(moment=times, span=durations)
def test_a_time_and_a_duration_either_are_refused_or_can_be_added_and_subtracted(moment, span):
    from pipolicy_cli import dates
    from pipolicy_cli.errors import InvalidInput

    try:
        parsed, length = dates.parse_time(moment, dates.zone("Asia/Shanghai")), dates.parse_duration(span)
    except InvalidInput:
        return
    assert CANONICAL_TIME.match(dates.to_text(parsed))
    for result in (parsed + length, parsed - length):
        assert CANONICAL_TIME.match(dates.to_text(result))


# SQL injection and path traversal ----------------------------------------------------------------------------------

SQL = ["'; DROP TABLE users; --", '" OR 1=1 --', "x'); DELETE FROM audit_events; --", "1; UPDATE users SET name = NULL"]
FREE_TEXT = {  # the command (VALUE replaced), the table and column the value must land in verbatim
    "request open --via": (["request", "open", "U00000003", "--kind", "access", "--via", "VALUE"], "requests", "via"),
    "task fail --reason": (["task", "fail", "1", "--reason", "VALUE"], "tasks", "note"),
    "request reject --reason": (["request", "reject", "1", "--reason", "VALUE"], "requests", "reason"),
    "retention rule set --basis": (["retention", "rule", "set", "--category", "location", "--keep", "2y", "--action", "delete",
                                    "--basis", "VALUE"], "retention_rules", "basis"),
    "recipient add NAME": (["recipient", "add", "VALUE", "--kind", "partner"], "recipients", "name"),
    "system add NAME": (["system", "add", "VALUE"], "systems", "name"),
    "access log --purpose": (["access", "log", "U00000003", "--categories", "order", "--action", "use", "--purpose", "VALUE"],
                             "access_log", "purpose"),
    "breach open --summary": (["breach", "open", "--detected", "2026-11-02", "--summary", "VALUE"], "breaches", "summary"),
    "consent grant --evidence": (["consent", "grant", "U00000003", "messaging", "--evidence", "VALUE"], "consents", "evidence"),
    "pia add --subject": (["pia", "add", "--covers", "sharing", "--conclusion", "ok", "--subject", "VALUE"], "pias", "subject"),
    "config set organisation": (["config", "set", "organisation", "VALUE"], "config", "value"),
    "user update --name": (["user", "update", "U00000003", "--name", "VALUE"], "users", "name"),
}


def test_sql_in_free_text_is_stored_verbatim_and_changes_nothing_else(cli, reg):
    import sqlite3

    for (label, (command, table, column)), injection in zip(FREE_TEXT.items(), itertools.cycle(SQL)):
        before = snapshot(reg)
        result = cli(*[injection if part == "VALUE" else part for part in command], "--db", reg, "--format", "json")
        assert result.exit_code == 0, (label, result.stderr)
        after = snapshot(reg)
        changed = {name for name in before if before[name] != after[name]} - {"audit_events", "audit head", "config values", table}
        assert not changed, (label, changed)
        stored = [value for (value,) in sqlite3.connect(reg).execute(f"SELECT {column} FROM {table}")]
        assert injection in stored, label
    assert cli("audit", "verify", "--db", reg).exit_code == 0


@pytest.mark.parametrize("value", ["a\x00b", "\udcff", "x\ud800"])
def test_an_argument_the_os_could_not_decode_or_with_nul_is_refused_by_its_option(cli, reg, tmp_path, value):
    """Real argv cannot hold NUL, and bytes that are not UTF-8 arrive as lone surrogates: neither can be stored
    or used as a path, so they are refused before the command runs, naming the option."""
    before, files = snapshot(reg), sorted(tmp_path.rglob("*"))
    for command, named in ((["user", "add", "H1", "--name", value], "--name"), (["system", "add", "s", "--owner", value], "--owner"),
                           (["export", "U00000001", "--out", value], "--out"),
                           (["breach", "draft", "1", "--audience", "public", f"--template-dir={value}"], "--template-dir"),
                           (["config", "set", "backup-dir", value], "argument 4"), (["user", "show", value], "argument 3")):
        result = cli(*command, "--db", reg, "--format", "json")
        assert_refused(result, before, reg)
        assert result.stderr.startswith(f"pipolicy: error: {named}: ")
    assert sorted(tmp_path.rglob("*")) == files


def test_notice_files_stay_inside_their_folder_whatever_the_user_ids(cli, reg, tmp_path):
    for user_id in ("../../escaped", "/etc/passwd", "..", "a/../../b", "\u202e.eml", "con"):
        assert cli("user", "add", "--address", "北京市朝阳区1号", "--db", reg, "--", user_id).exit_code == 0
    ids = "".join(f"{json.dumps({'user_id': user_id})}\n" for user_id in ("../../escaped", "/etc/passwd", "..", "a/../../b",
                                                                          "\u202e.eml", "con"))
    assert cli("breach", "affected", "1", "--users", "-", "--db", reg, input=ids).exit_code == 0
    folder = tmp_path / "out" / "notices"
    assert cli("breach", "draft", "1", "--audience", "individuals", "--channel", "letter", "--out", folder, "--db", reg).exit_code == 0
    archive = tmp_path / "out" / "notices.zip"
    assert cli("breach", "draft", "1", "--audience", "individuals", "--channel", "letter", "--out", archive, "--db", reg).exit_code == 0
    written = [path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file()]
    assert all(path.parts[0] in ("out", "reg") for path in written), written
    letters = [path for path in written if path.parts[:2] == ("out", "notices") and path.suffix == ".md"]
    assert len(letters) == 8  # the six above and the two people attached already
    with zipfile.ZipFile(archive) as opened:
        assert all(".." not in name.split("/") and not name.startswith("/") for name in opened.namelist())


def test_path_options_write_where_they_name_and_nowhere_else(cli, reg, tmp_path, monkeypatch):
    """`--out ../x` is the user's choice of place; nothing else appears anywhere, and a file that is not a register
    is neither taken over nor changed."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert cli("export", "U00000001", "--out", "../../export.json", "--db", reg).exit_code == 0
    assert cli("report", "--format", "md", "--out", "../report.md", "--db", reg).exit_code == 0
    files = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*") if path.is_file())
    assert [name for name in files if not name.startswith(("reg/", "home/"))] == ["a/report.md", "export.json"]
    text_file = tmp_path / "a" / "notes.txt"
    text_file.write_text("not a register\n" * 100)
    for command in (["init"], ["status"], ["user", "add", "x"]):
        result = cli(*command, "--db", text_file, "--format", "json")
        assert result.exit_code == 1 and "cannot be read as a SQLite database" in result.stderr
    assert text_file.read_text() == "not a register\n" * 100
    assert not list(tmp_path.rglob("*-wal")) and not list(tmp_path.rglob("*.part"))
    restore = cli("backup", "restore", text_file, "--yes", "--db", reg, "--format", "json")
    assert restore.exit_code == 4 and snapshot(reg)["users"] == 6


# Templates ---------------------------------------------------------------------------------------------------------

HOSTILE_TEMPLATES = {
    "syntax error": "{{ person.name ",
    "undefined name": "{{ nothing_of_the_kind }}",
    "a key named by a person's name": "{{ {}[person.name] }}",
    "division by zero": "{{ 1 / 0 }}",
    "unsafe attribute": "{{ ''.__class__.__mro__ }}",
    "include above the folder": "{% include '../../../../etc/passwd' %}",
    "include an absolute path": "{% include '/etc/passwd' %}",
    "a huge range": "{% for i in range(10**9) %}{% endfor %}",
    "the second person fails": "{{ person.name }}{% if person.user_id == 'U00000002' %}{{ 1 / 0 }}{% endif %}",
    "not UTF-8": b"\xff\xfe{{ person.name }}",
}


@pytest.mark.parametrize(("hostile", "out"), [
    *((name, "folder") for name in sorted(HOSTILE_TEMPLATES)),
    *(("the second person fails", out) for out in ("notices.zip", "notices.mbox", None)),  # the first notice is done
])
def test_a_hostile_template_is_refused_naming_the_template_and_leaves_no_file(cli, reg, tmp_path, hostile, out):
    own = tmp_path / "own" / "breach"
    own.mkdir(parents=True)
    source = HOSTILE_TEMPLATES[hostile]
    channel = "email" if out == "notices.mbox" else "letter"
    name = "individuals-email.en.txt.j2" if channel == "email" else "individuals-letter.en.md.j2"
    (own / name).write_bytes(source if isinstance(source, bytes) else source.encode())
    (tmp_path / "drafts").mkdir()
    target = tmp_path / "drafts" / out if out else None
    before = snapshot(reg)
    result = cli("breach", "draft", "1", "--audience", "individuals", "--channel", channel, "--lang", "en",
                 "--template-dir", own.parent, *(["--out", target] if target else []), "--db", reg)
    assert_refused(result, before, reg)
    assert result.stderr.startswith("pipolicy: error: template breach/")
    assert_safe(result)
    assert not [path for path in (tmp_path / "drafts").rglob("*") if path.is_file()]
