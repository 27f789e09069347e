"""`consent grant|withdraw|import|list|history|check|minors`: proof of every permission."""

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from pipolicy_cli.cli import options
from pipolicy_cli.cli.output import Format
from pipolicy_cli.errors import ExitCode, UsageError
from pipolicy_cli.masking import OTHERS, mask_row

class Signal(str, Enum):
    dnt = "dnt"
    gpc = "gpc"


class State(str, Enum):
    granted = "granted"
    withdrawn = "withdrawn"


app = typer.Typer(help="Consents: grant, withdraw, import, list, history, check, minors.", no_args_is_help=True)

Code = Annotated[str, typer.Argument(metavar="PURPOSE_OR_SCOPE", help="A purpose or consent scope code (see `pipolicy policy purposes`).")]
At = Annotated[Optional[str], typer.Option("--at", help="When (default: now; register zone if none given).", show_default=False)]
Method = Annotated[Optional[str], typer.Option("--method", help="How it was given, e.g. app-toggle, web-form, paper.", show_default=False)]
Evidence = Annotated[Optional[str], typer.Option("--evidence", help="Where the proof is kept, e.g. a form or log reference.", show_default=False)]
COLUMNS = ["id", "user_id", "code", "action", "at", "method", "evidence", "signal", "guardian_name",
           "guardian_relation", "written_consent", "policy_version", "source", "event_id", "recorded_at"]


def _record(action: str, user: str, by: options.By, code: str, actor, db, fmt, as_json, **details) -> None:
    from pipolicy_cli import consents

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        row = options.find_user(register, user, by)
        event = consents.record(register, row, code.strip(), action, options.actor(actor), **details)
    warning = event.pop("warning")
    out.document(mask_row(event, OTHERS))
    if warning:
        out.warning(warning)


@app.command("grant")
def grant(
    user: options.UserArg,
    code: Code,
    at: At = None,
    method: Method = None,
    evidence: Evidence = None,
    by_guardian: Annotated[Optional[str], typer.Option("--by-guardian", help="Given by this parent or guardian (for a minor).", show_default=False)] = None,
    relation: Annotated[Optional[str], typer.Option("--relation", help="The guardian's relation to the person, e.g. mother.", show_default=False)] = None,
    written_consent: Annotated[Optional[str], typer.Option("--written-consent", help="Reference of the guardian's written consent (policy 6).", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Record a consent, with the policy version in force, the method and the evidence."""
    _record("grant", user, by, code, actor, db, fmt, as_json, at=at, method=method, evidence=evidence,
            by_guardian=by_guardian, relation=relation, written_consent=written_consent)


@app.command("withdraw")
def withdraw(
    user: options.UserArg,
    code: Code,
    at: At = None,
    method: Method = None,
    evidence: Evidence = None,
    signal: Annotated[Optional[Signal], typer.Option("--signal", help="A browser's Do Not Track or Global Privacy Control signal (policy 2(c)).", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Record a withdrawal: later use is not allowed; earlier use stays lawful (PIPL Art. 15)."""
    _record("withdraw", user, by, code, actor, db, fmt, as_json, at=at, method=method, evidence=evidence,
            signal=signal.value if signal else None)


@app.command("import")
def import_(
    file: options.InputFile,
    input_format: options.InputFormat = None,
    skip_invalid: options.SkipInvalid = False,
    batch_size: options.BatchSize = 10_000,
    jobs: options.Jobs = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Import grants and withdrawals (user_id, action, purpose, at, method, evidence, by_guardian, relation, written_consent, signal, source, event_id): validated first; resent events skipped."""
    from pipolicy_cli import consents
    from pipolicy_cli.cli.imports import run_import

    run_import(consents.import_consents, file, input_format, skip_invalid, db, actor, fmt, as_json,
               "rows", "inserted", "skipped", "invalid", "written", batch_size=batch_size, jobs=jobs)


@app.command("history")
def history(
    user: options.UserArg,
    code: Annotated[Optional[str], typer.Argument(metavar="[PURPOSE_OR_SCOPE]", help="Only this purpose or scope.", show_default=False)] = None,
    by: options.ByOpt = options.By.user_id,
    reveal: options.Reveal = False,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Every grant and withdrawal for one person: the proof a regulator asks for. A guardian's name is masked
    unless --reveal."""
    from pipolicy_cli import consents, users

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        person = options.find_user(register, user, by)
        rows = consents.history(register, person, code)
        if reveal:
            users.record_reveal(register, [person["id"]], options.actor(actor), "consent history --reveal")
    out.rows((row if reveal else mask_row(row, OTHERS) for row in rows), COLUMNS)


@app.command("list")
def list_(
    code: Annotated[Optional[str], typer.Option("--purpose", help="Only this purpose or scope.", show_default=False)] = None,
    state: Annotated[Optional[State], typer.Option("--state", help="Only where the latest event is a grant or a withdrawal.", show_default=False)] = None,
    limit: options.Limit = None,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Where each person stands, per purpose or scope: the latest grant or withdrawal."""
    from pipolicy_cli import consents

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        out.rows(consents.standing(register, code, state.value if state else None, limit), ["user_id", "code", "state", "at", "policy_version", "guardian"])


@app.command("check")
def check(
    user: options.UserArg,
    code: Annotated[Optional[str], typer.Argument(metavar="PURPOSE_OR_SCOPE", help="The purpose or scope; omitted when USER is '-'.", show_default=False)] = None,
    at: At = None,
    by: options.ByOpt = options.By.user_id,
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Exit 0 when the use is allowed, 5 when not, saying why. `check -` answers NDJSON questions from stdin."""
    from pipolicy_cli import consents, dates, settings

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        checker = consents.Checker(register)
        if user == "-" and code is None:
            worst = _bulk(register, checker, out)
            raise typer.Exit(worst)
        if code is None:
            raise UsageError("PURPOSE_OR_SCOPE: missing")
        row = options.find_user(register, user, by)
        checker.codes.require(code)
        moment = dates.parse_time(at, settings.local_zone(register), "--at") if at else dates.now()
        answer = checker.check(row, code, moment)
    out.document(answer)
    if not answer["allowed"]:
        if not out.machine:
            out.message(f"not allowed: {answer['why']}")
        raise typer.Exit(ExitCode.ATTENTION)


def _bulk(register, checker, out) -> int:
    """One NDJSON answer per question line, in order; exit 4 if a line was bad, else 5 if a use is not allowed."""
    import json

    from pipolicy_cli import dates, readers

    found: dict[str, dict | None] = {}
    worst = ExitCode.OK
    bad_lines: list[int] = []
    write = out.env.stdout.write
    for number, line in enumerate(sys.stdin.buffer, 1):
        if not line.strip():
            continue
        try:
            question = readers.parse_line(line)  # not UTF-8, not JSON, not an object: a RowProblem, no key
            user_id, code = question["user_id"], question["purpose"]
            if not isinstance(user_id, str) or not isinstance(code, str):
                raise TypeError
            moment = dates.parse_time(question["at"], checker.zone, "at") if question.get("at") else dates.now()
        except Exception:  # any malformed question gets its own answer, never a stop
            write(json.dumps({"line": number, "error": "expected {\"user_id\": ..., \"purpose\": ..., \"at\"?: ...}"}) + "\n")
            worst = ExitCode.INVALID
            bad_lines.append(number)
            continue
        if user_id not in found:
            from pipolicy_cli import users
            from pipolicy_cli.errors import NotFound

            try:
                found[user_id] = users.find(register, user_id)
            except NotFound:
                found[user_id] = None
            if len(found) > 100_000:
                found.clear()
        answer = checker.check(found[user_id], code, moment, user_id=user_id)
        write(json.dumps({"line": number, **answer}, ensure_ascii=False) + "\n")
        if not answer["allowed"] and worst == ExitCode.OK:
            worst = ExitCode.ATTENTION
    out.env.stdout.flush()
    if bad_lines:
        out.message(f"pipolicy: error: {len(bad_lines)} malformed question line(s), the first line {bad_lines[0]}; "
                    "each was answered with an error line")
    return worst


@app.command("minors")
def minors(
    db: options.Db = None,
    actor: options.Actor = None,
    fmt: options.FormatOpt = Format.auto,
    as_json: options.Json = False,
) -> None:
    """Minors without a guardian's written consent (exit 5 when any); people of unknown age apart."""
    from pipolicy_cli import consents

    out = options.output(fmt, as_json)
    with options.open_register(db) as register:
        rows = list(consents.minors(register))
    out.rows(rows, ["user_id", "age", "finding", "violation"])
    violations = sum(1 for row in rows if row["violation"])
    unknown = len(rows) - violations
    minors_text = "1 minor" if violations == 1 else f"{violations} minors"
    unknown_text = "1 person" if unknown == 1 else f"{unknown} people"
    out.message(f"{minors_text} without a guardian's written consent; {unknown_text} of unknown age (reported, not violations)")
    if violations:
        raise typer.Exit(ExitCode.ATTENTION)
