"""Bulk `pipolicy consent check -` against the same questions asked one call at a time.

Set-up, untimed: a fresh register (`pipolicy init`), N synthetic users imported
from NDJSON (`pipolicy user import`), then consents recorded in-process through
the core API (`consents.record`, one audited transaction each): every 2nd user
grants "messaging" at 2026-01-01, every 3rd user withdraws it at 2026-02-01.
A question file of Q NDJSON lines `{"user_id", "purpose", "at"?}` is drawn
(seeded) over random users and the purposes messaging / service / surveys /
location; half the questions carry an "at", the rest mean "now".

Timed, each a fresh process:

1. project: `pipolicy consent check - --db REG --format ndjson` with the
   question file on stdin (stdout to a file), --repeat runs, median. The output
   must hold exactly one JSON answer with "allowed" per question, in order.
   Exit 5 (some use not allowed) is expected; exit 4 (a bad line) is a failure.
2. baseline: K separate `pipolicy consent check USER PURPOSE [--at T] --db REG
   --format json` calls for questions of the same file (exit 0 or 5), median
   per call, extrapolated to Q calls. Each answer must agree with the bulk one.

Target: the bulk run is >= 50x faster than the extrapolated separate calls
(ratio = baseline / project = the speedup).

    python tests/bench/bench_consent_check.py [--users 10000] [--questions 100000] [--calls 20] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, environment, leave, rate, report, workspace
from bench_startup import launcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic import people  # noqa: E402

SPEEDUP_TARGET = 50.0
PURPOSES = ["messaging", "service", "surveys", "location"]
# Times around the recorded grant (2026-01-01) and withdrawal (2026-02-01).
AT_CHOICES = ["2025-12-15T12:00:00", "2026-01-15T12:00:00", "2026-03-01T09:30:00", "2026-06-30"]


def write_users(path: Path, n: int) -> list[str]:
    ids = []
    with open(path, "w", encoding="utf-8") as out:
        for person in people(n):
            ids.append(person["user_id"])
            out.write(json.dumps(person, ensure_ascii=False) + "\n")
    return ids


def record_consents(reg_path: Path, ids: list[str], limit: int | None) -> tuple[int, int]:
    """Grants for every 2nd user, withdrawals for every 3rd, through the core API (one transaction each)."""
    from pipolicy_cli import consents, users
    from pipolicy_cli.register import Register

    grants = withdrawals = 0
    reg = Register.open(reg_path)
    try:
        chosen = ids if limit is None else ids[:limit]
        for i, user_id in enumerate(chosen):
            if i % 2 == 0 or i % 3 == 0:
                row = users.find(reg, user_id)
                if i % 2 == 0:
                    consents.record(reg, row, "messaging", "grant", "bench", at="2026-01-01")
                    grants += 1
                if i % 3 == 0:
                    consents.record(reg, row, "messaging", "withdraw", "bench", at="2026-02-01")
                    withdrawals += 1
    finally:
        reg.close()
    return grants, withdrawals


def write_questions(path: Path, ids: list[str], q: int, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    questions = []
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(q):
            question = {"user_id": rng.choice(ids), "purpose": rng.choice(PURPOSES)}
            if rng.random() < 0.5:
                question["at"] = rng.choice(AT_CHOICES)
            questions.append(question)
            out.write(json.dumps(question) + "\n")
    return questions


def run_bulk(pipolicy: list[str], reg: Path, questions: Path, out_path: Path, env: dict) -> tuple[float, int]:
    with open(questions, "rb") as stdin, open(out_path, "wb") as stdout:
        start = time.perf_counter()
        proc = subprocess.run([*pipolicy, "consent", "check", "-", "--db", str(reg), "--format", "ndjson"],
                              stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
        seconds = time.perf_counter() - start
    if proc.returncode not in (0, 5):
        sys.exit(f"bulk consent check exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-4000:]}")
    return seconds, proc.returncode


def check_bulk_output(out_path: Path, q: int) -> list[dict]:
    answers = []
    with open(out_path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                answer = json.loads(line)
            except ValueError:
                sys.exit(f"bulk output line {number} is not JSON: {line[:200]!r}")
            if not isinstance(answer, dict) or "allowed" not in answer:
                sys.exit(f"bulk output line {number} has no 'allowed': {line[:200]!r}")
            if answer.get("line") != number:
                sys.exit(f"bulk output line {number} answers line {answer.get('line')!r}")
            answers.append(answer)
    if len(answers) != q:
        sys.exit(f"bulk output has {len(answers):,} lines for {q:,} questions")
    return answers


def run_single(pipolicy: list[str], reg: Path, question: dict, env: dict) -> tuple[float, dict]:
    cmd = [*pipolicy, "consent", "check", question["user_id"], question["purpose"], "--db", str(reg), "--format", "json"]
    if "at" in question:
        cmd += ["--at", question["at"]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 5):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout.decode(errors='replace')[-2000:]}\n"
                 f"{proc.stderr.decode(errors='replace')[-2000:]}")
    answer = json.loads(proc.stdout)
    if answer.get("allowed") is not (proc.returncode == 0):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode} but answered allowed={answer.get('allowed')!r}")
    return seconds, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000, help="users in the register (default 10,000)")
    parser.add_argument("--questions", type=int, default=100_000, help="questions in the file (default 100,000)")
    parser.add_argument("--calls", type=int, default=20, help="separate calls timed (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed bulk runs (default 3)")
    parser.add_argument("--consent-users", type=int, default=None,
                        help="record consents only for the first this many users (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    n, q, k = args.users, args.questions, args.calls

    pipolicy, how = launcher()
    workdir, env = workspace("consent")
    # The in-process consents.record must see the same environment (audit key) as the CLI.
    for key in [key for key in os.environ if key.startswith("PIPOLICY_")]:
        del os.environ[key]
    os.environ["PIPOLICY_HOME"] = env["PIPOLICY_HOME"]
    try:
        print(f"pipolicy consent check -: {q:,} questions over {n:,} users, bulk vs {k} separate calls extrapolated")
        print(environment())
        print(f"launcher: {how}")
        reg, key_file = workdir / "register.db", workdir / "register.key"
        subprocess.run([*pipolicy, "init", "--db", str(reg), "--key-file", str(key_file), "--format", "json"],
                       env=env, check=True, capture_output=True)
        data = workdir / "users.ndjson"
        start = time.perf_counter()
        ids = write_users(data, n)
        proc = subprocess.run([*pipolicy, "user", "import", str(data), "--db", str(reg), "--format", "json"],
                              env=env, capture_output=True)
        if proc.returncode != 0 or json.loads(proc.stdout).get("inserted") != n:
            sys.exit(f"user import failed ({proc.returncode}): {proc.stdout[-2000:]!r} {proc.stderr[-2000:]!r}")
        print(f"  imported {n:,} users in {time.perf_counter() - start:.1f} s (untimed)")

        start = time.perf_counter()
        grants, withdrawals = record_consents(reg, ids, args.consent_users)
        print(f"  recorded {grants:,} grants + {withdrawals:,} withdrawals of 'messaging' in-process "
              f"in {time.perf_counter() - start:.1f} s (untimed)")

        questions_path = workdir / "questions.ndjson"
        questions = write_questions(questions_path, ids, q)
        print(f"  wrote {q:,} questions ({questions_path.stat().st_size / 1e6:.1f} MB), "
              f"{sum('at' in x for x in questions):,} with an 'at' (untimed)")

        # Warm-up (page cache, imports' .pyc): one single call, untimed.
        run_single(pipolicy, reg, questions[0], env)

        bulk_times = []
        answers: list[dict] = []
        for i in range(args.repeat):
            out_path = workdir / f"bulk-{i}.ndjson"
            seconds, code = run_bulk(pipolicy, reg, questions_path, out_path, env)
            answers = check_bulk_output(out_path, q)
            bulk_times.append(seconds)
            not_allowed = sum(1 for a in answers if not a["allowed"])
            print(f"  bulk run {i + 1}: {seconds:8.3f} s  {rate(q / seconds, ' questions/s'):>20}  exit {code}, "
                  f"{q - not_allowed:,} allowed / {not_allowed:,} not")
            if code != (5 if not_allowed else 0):
                sys.exit(f"bulk exit code {code} does not match {not_allowed:,} not-allowed answers")
            out_path.unlink()
        reasons: dict[str, int] = {}
        for a in answers:
            reasons[a.get("reason", "?")] = reasons.get(a.get("reason", "?"), 0) + 1
        print("  reasons: " + ", ".join(f"{r} {c:,}" for r, c in sorted(reasons.items(), key=lambda x: -x[1])))

        rng = random.Random(5)
        picks = [rng.randrange(q) for _ in range(k)]
        call_times = []
        mismatches = 0
        for index in picks:
            seconds, answer = run_single(pipolicy, reg, questions[index], env)
            call_times.append(seconds)
            bulk = answers[index]
            # Questions without "at" mean "now" in both; the answers must agree.
            if (answer["allowed"], answer.get("reason")) != (bulk["allowed"], bulk.get("reason")):
                mismatches += 1
                print(f"  MISMATCH line {index + 1} {questions[index]}: single {answer} vs bulk {bulk}")
        per_call = statistics.median(call_times)
        bulk_s = statistics.median(bulk_times)
        extrapolated = per_call * q
        speedup = extrapolated / bulk_s
        print(f"  separate calls: {k} timed, median {per_call * 1e3:.1f} ms/call "
              f"(min {min(call_times) * 1e3:.1f}, max {max(call_times) * 1e3:.1f}); "
              f"answers agreeing with bulk: {k - mismatches}/{k}")
        print(f"  bulk: median {bulk_s:.3f} s over {len(bulk_times)} run(s) "
              f"(min {min(bulk_times):.3f}, max {max(bulk_times):.3f}) = {bulk_s / q * 1e6:.1f} us/question, "
              f"{rate(q / bulk_s, ' questions/s')}")
        print(f"  extrapolated separate calls: {per_call * 1e3:.1f} ms x {q:,} = {extrapolated:,.0f} s "
              f"({extrapolated / 3600:.2f} h); speedup {speedup:,.0f}x")
        report([
            Row(f"consent check - ({q:,} questions; ratio = speedup)",
                f"{bulk_s:.2f} s ({rate(q / bulk_s, ' q/s')})",
                f"{extrapolated:,.0f} s ({k} calls x {per_call * 1e3:.0f} ms, extrap.)",
                speedup, f">= {SPEEDUP_TARGET:g}x", speedup >= SPEEDUP_TARGET, q / bulk_s, q / extrapolated,
                "questions/s"),
        ])
        if mismatches:
            print(f"note: {mismatches} separate answer(s) disagreed with the bulk answer (see above)")
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
