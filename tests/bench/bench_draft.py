"""`breach draft --audience individuals --channel email` for N affected people: a folder, an mbox, a zip.

Set-up, untimed: a register (`pipolicy init`, PIPL profile), then N users with
a Chinese name and an ASCII e-mail address inserted with raw sqlite3 into the
`users` table (`executemany`, one transaction, `created_at` set; this bypasses
the audit chain, so `audit verify` is never run on it), `config set`
organisation, contact and notice-from, and `breach open` with everything PIPL
Art. 57 asks a notice to say (summary, categories, cause, harm, measures,
advice; the contact comes from the config). Then `breach affected 1 --users
FILE` attaches all N user ids from a file, one per line: timed and shown (it is
part of the job) but it has no target.

Timed, each a fresh `pipolicy` process measured by `_common.measure` (wall
clock, peak RSS summed over the process tree), once each:

- `breach draft 1 --audience individuals --channel email --out DIR`: a folder,
  subfolders of 1,000 `.eml` files;
- `... --out FILE.mbox`: one mbox;
- `... --out FILE.zip`: one zip of the `.eml` files.

Linux carries a parent's peak RSS into a (v)forked child's ru_maxrss, so this
process stays small until the last draft child: the folder and mbox checks
stream, and the zip check (the whole central directory) runs last. Its own peak
before each child is printed.

Each output is checked before it is deleted (unless --keep): stderr says "N
notices written", the folder holds N `.eml` files (and its manifest N lines),
the mbox N messages, the zip N entries, and a sample of about 100 messages
(evenly spread, the first and last among them) is parsed back with
`email.message_from_bytes(..., policy=email.policy.default)`: To is the
person's address, the Subject is the notice's, and the text body greets the
person by name and carries the breach's advice.

Targets (the issue): >= 1,000 notices/s and peak memory < 200 MB, per output
kind. For context only, no target:

- baseline: the same notices (text, HTML, subject rendered once per person by
  the project, untimed) turned into bytes by the standard library alone, one
  `email.message.EmailMessage` per person (From, To, Subject, Date,
  Message-ID, text + HTML alternative, `as_bytes()`), in this process, on
  min(N, --baseline) people;
- floor of the folder kind: a fresh `python -c` creating N 0600 files of the
  same size in subfolders of 1,000 (`os.open`/`os.write`/`os.close`, as
  pipolicy does), i.e. what the file system costs alone.

    python tests/bench/bench_draft.py [--users 1000000] [--baseline 5000] [--keep]

Disk: a notice is about 4.7 kB (8 kB on disk as a file): at 1,000,000 the
folder and the floor's files take ~16 GB together, the mbox ~4.7 GB, the zip
~2.4 GB; each output is removed once checked (the folder after the floor).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import Row, environment, leave, measure, memory_below, rate, report, workspace
from bench_startup import launcher

RATE_TARGET = 1_000  # notices per second, each output kind
MEMORY_TARGET_MB = 200
BLOCK = 100_000  # rows per executemany in the set-up
SAMPLE = 100  # messages parsed back per output kind
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞")
ORGANISATION = "示例物联网有限公司"
SENDER = "privacy@notices.example"
SUBJECT = "关于您个人信息安全事件的通知"
ADVICE = "请警惕自称客服的来电和短信，不要向任何人透露验证码；如发现异常，请立即修改密码并联系我们。"
BREACH = [
    "--summary", "订单查询接口缺少访问控制，部分用户的注册和订单信息可能被未授权访问。",
    "--categories", "registration,order",
    "--cause", "一次版本发布中，订单查询接口的访问控制配置被误删除。",
    "--harm", "泄露的姓名、联系方式和订单信息可能被用于冒充客服的诈骗。",
    "--measures", "已于发现当日关闭该接口并恢复访问控制，已保存日志并报告主管部门。",
    "--advice", ADVICE,
]
SEPARATOR_TEXT = b"\nFrom pipolicy "  # what starts every message of the mbox but the first (after a newline)
SEPARATOR = re.compile(re.escape(SEPARATOR_TEXT))
FLOOR = """
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = b"x" * size
os.mkdir(root, 0o700)
for key in range(1, n + 1):
    sub = f"{root}/{key // 1000:06d}"
    if key == 1 or key % 1000 == 0:
        os.mkdir(sub, 0o700)
    fd = os.open(f"{sub}/U{key:08d}-{key}.eml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, data)
    os.close(fd)
"""


def user_id(key: int) -> str:
    return f"U{key:08d}"


def name(key: int) -> str:
    return SURNAMES[key % len(SURNAMES)] + GIVEN[(key // len(SURNAMES)) % len(GIVEN)]


def address(key: int) -> str:
    return f"user{key:08d}@mail.example.com"


def insert_users(db: Path, n: int) -> float:
    """N users by raw SQL (the audit chain is bypassed: set-up only). Returns seconds."""
    start = time.perf_counter()
    created = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1640995200 + 86400 * day + 3600)) for day in range(1000)]
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        for first in range(1, n + 1, BLOCK):
            conn.executemany(
                "INSERT INTO users (id, user_id, name, email, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
                ((k, user_id(k), name(k), address(k), created[k % len(created)])
                 for k in range(first, min(first + BLOCK, n + 1))),
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - start


def check_message(raw: bytes, where: str, ids: set[str], problems: list[str]) -> None:
    """One notice parsed back: To, Subject, text body with the person's name and the advice; HTML present."""
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    match = re.fullmatch(r"user(\d{8})@mail\.example\.com", str(mail["To"] or ""))
    if not match:
        problems.append(f"{where}: To is {mail['To']!r}")
        return
    key = int(match.group(1))
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    body = text.get_content() if text is not None else ""
    if SUBJECT not in str(mail["Subject"] or "") or ORGANISATION not in str(mail["Subject"]):
        problems.append(f"{where}: Subject is {mail['Subject']!r}")
    if f"{name(key)}，您好" not in body or ADVICE not in body:
        problems.append(f"{where}: the text body does not greet {name(key)} or lacks the advice")
    if html is None or ADVICE not in html.get_content():
        problems.append(f"{where}: no HTML alternative with the advice")
    if mail["From"].addresses[0].addr_spec != SENDER:
        problems.append(f"{where}: From is {mail['From']!r}")
    ids.add(str(mail["Message-ID"]))


def sample_indexes(n: int) -> set[int]:
    step = max(1, n // SAMPLE)
    return set(range(0, n, step)) | {n - 1}


def check_folder(folder: Path, n: int) -> tuple[int, int, int]:
    """(files, sampled, bytes): every .eml counted, the manifest's lines counted, a sample parsed back; streamed, so this
    process stays small (its peak RSS would show in the next child's ru_maxrss, see main)."""
    picked = sample_indexes(n)
    problems: list[str] = []
    ids: set[str] = set()
    count = parsed = size = 0
    for sub in sorted(entry.name for entry in os.scandir(folder) if entry.is_dir()):
        files = {entry.name: entry.stat().st_size for entry in os.scandir(folder / sub) if entry.name.endswith(".eml")}
        size += sum(files.values())
        for file in sorted(files):
            if count in picked:
                path, where = folder / sub / file, f"{sub}/{file}"
                if path.stat().st_mode & 0o777 != 0o600:
                    problems.append(f"{where}: mode {path.stat().st_mode & 0o777:o}")
                raw = path.read_bytes()
                check_message(raw, where, ids, problems)
                if address(int(file.rsplit("-", 1)[1].split(".")[0])).encode() not in raw:
                    problems.append(f"{where}: not addressed to the user its name says")
                parsed += 1
            count += 1
    with open(folder / ".pipolicy-draft", "rb") as manifest:
        listed = sum(1 for _ in manifest)
    if count != n or listed != n:
        problems.append(f"{count:,} .eml files, manifest {listed:,} lines; expected {n:,}")
    if len(ids) != parsed:
        problems.append("Message-IDs repeat")
    if problems:
        sys.exit("folder output is wrong: " + "; ".join(problems[:5]))
    return count, parsed, size


def check_mbox(path: Path, n: int, chunk_size: int = 1 << 20) -> tuple[int, int, int]:
    """(messages, sampled, bytes): separators counted in one streaming pass (bodies are base64, so none can look like one)."""
    picked = sample_indexes(n)
    offsets: list[int] = []
    count, position, tail = 0, 0, b"\n"  # as if a newline came before the file's first "From " line
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            data = tail + chunk  # the tail is shorter than a separator: every match here is a new one
            for match in SEPARATOR.finditer(data):
                if count in picked:
                    offsets.append(position - len(tail) + match.start() + 1)
                count += 1
            position += len(chunk)
            tail = data[-(len(SEPARATOR_TEXT) - 1):]
    problems: list[str] = []
    if count != n:
        problems.append(f"{count:,} messages; expected {n:,}")
    ids: set[str] = set()
    with open(path, "rb") as handle:
        for offset in offsets:
            handle.seek(offset)
            block = handle.read(1 << 16)
            first, _, rest = block.partition(b"\n")  # the "From pipolicy DATE" line
            message = SEPARATOR.split(rest, 1)[0]
            check_message(message, f"message at byte {offset:,}", ids, problems)
    if len(ids) != len(offsets):
        problems.append("Message-IDs repeat")
    if problems:
        sys.exit("mbox output is wrong: " + "; ".join(problems[:5]))
    return count, len(offsets), path.stat().st_size


def check_zip(path: Path, n: int) -> tuple[int, int, int]:
    """(entries, sampled, bytes). The central directory is read whole (about 1 kB per entry in this process):
    run it after the last measured child."""
    problems: list[str] = []
    ids: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != n or len(set(names)) != n or not all(x.endswith(".eml") for x in names):
            problems.append(f"{len(names):,} entries ({len(set(names)):,} distinct); expected {n:,} .eml")
        picked = sample_indexes(len(names)) if names else set()
        for i in sorted(picked):
            check_message(archive.read(names[i]), names[i], ids, problems)
    if len(ids) != len(picked):
        problems.append("Message-IDs repeat")
    if problems:
        sys.exit("zip output is wrong: " + "; ".join(problems[:5]))
    return len(names), len(picked), path.stat().st_size


def baseline_rate(db: Path, m: int) -> tuple[float, int]:
    """Notices/s of the standard library's EmailMessage alone on the project's rendered text (context)."""
    from email.headerregistry import Address
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    from pipolicy_cli import notices
    from pipolicy_cli.register import Register

    reg = Register.open(db)
    try:
        drafter = notices.Drafter(reg, 1, "zh")
        rendered = []
        for notice in drafter.individuals("email"):
            rendered.append(notice)
            if len(rendered) >= m:
                break
    finally:
        reg.close()
    smtp = email.policy.SMTP
    sender = Address(display_name=ORGANISATION, username=SENDER.split("@")[0], domain=SENDER.split("@")[1])
    date = format_datetime(datetime.now(timezone.utc))
    size = 0
    start = time.perf_counter()
    for notice in rendered:
        mail = EmailMessage(policy=smtp)
        mail["From"] = sender
        mail["To"] = notice.to
        mail["Subject"] = notice.subject
        mail["Date"] = date
        mail["Message-ID"] = make_msgid(idstring="breach1", domain=SENDER.split("@")[1])
        mail.set_content(notice.text)
        mail.add_alternative(notice.html, subtype="html")
        size += len(mail.as_bytes())
    return len(rendered) / (time.perf_counter() - start), size // max(1, len(rendered))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000, help="affected users, all with e-mail (default 1,000,000)")
    parser.add_argument("--baseline", type=int, default=5_000, help="people in the EmailMessage baseline (default 5,000)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and every output) and print its path")
    args = parser.parse_args()
    n = args.users
    if n < 1:
        parser.error("need --users >= 1")

    pipolicy, how = launcher()
    workdir, env = workspace("draft")
    for var in [k for k in os.environ if k.startswith("PIPOLICY_")]:
        del os.environ[var]  # the in-process baseline sees the same environment as the children
    os.environ["PIPOLICY_HOME"] = env["PIPOLICY_HOME"]
    db = workdir / "register.db"

    def run(*words: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*pipolicy, *words, "--db", str(db)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"pipolicy {' '.join(words)} exited {done.returncode}:\n{done.stderr[-4000:]}")
        return done

    def discard(path: Path) -> None:
        if not args.keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    try:
        print(f"pipolicy breach draft: e-mail notices for {n:,} affected users, a fresh process per output kind, once each")
        print(environment())
        print(f"launcher: {how}")

        # Set-up, untimed.
        start = time.perf_counter()
        run("init", "--key-file", str(workdir / "register.key"), "--format", "json")
        seconds = insert_users(db, n)
        print(f"  inserted {n:,} users by raw SQL in {seconds:.1f} s (untimed)")
        for key, value in (("organisation", ORGANISATION), ("contact", "客服热线 400-000-0000，privacy@notices.example"),
                           ("notice-from", SENDER)):
            run("config", "set", key, value, "--format", "json")
        detected = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        run("breach", "open", "--detected", detected, *BREACH, "--format", "json")
        users_file = workdir / "affected.txt"
        with open(users_file, "w", encoding="ascii") as handle:
            for first in range(1, n + 1, BLOCK):
                handle.write("".join(user_id(k) + "\n" for k in range(first, min(first + BLOCK, n + 1))))
        print(f"  set-up took {time.perf_counter() - start:.1f} s (untimed)")

        attach_s, attach_mb, stdout = measure(
            "affected", [*pipolicy, "breach", "affected", "1", "--users", str(users_file), "--db", str(db), "--format", "json"],
            env, workdir)
        if f'"attached": {n}' not in stdout or f'"email": {n}' not in stdout:
            sys.exit(f"breach affected attached the wrong people:\n{stdout[-2000:]}")
        print(f"  breach affected 1 --users FILE ({n:,} ids): {attach_s:.1f} s, {rate(n / attach_s, ' users/s')}, "
              f"peak {attach_mb:.1f} MB")
        shown = run("breach", "show", "1", "--format", "json").stdout
        if '"missing_content": []' not in shown:
            sys.exit(f"the breach lacks required content:\n{shown}")

        # The draft children. This process must stay small until the last one: Linux carries the parent's peak RSS
        # into a (v)forked child's ru_maxrss, so the folder check streams, and the zip check (which reads the whole
        # central directory) comes last.
        results: dict[str, tuple[float, float]] = {}
        checks = {"folder": ("notices", check_folder), "mbox": ("notices.mbox", check_mbox), "zip": ("notices.zip", check_zip)}
        average = floor_s = 0
        for kind, (target, check) in checks.items():
            out = workdir / target
            before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            seconds, peak_mb, _ = measure(
                f"draft-{kind}", [*pipolicy, "breach", "draft", "1", "--audience", "individuals", "--channel", "email",
                                  "--out", str(out), "--db", str(db)], env, workdir)
            said = (workdir / f"draft-{kind}.err").read_text(encoding="utf-8")
            if f"{n} notice{'s' if n != 1 else ''} written to {out}" not in said:
                sys.exit(f"draft --out {out.name}: stderr says {said.strip()!r}")
            found, sampled, size = check(out, n)
            results[kind] = (seconds, peak_mb)
            print(f"  draft --out {out.name}: {seconds:.1f} s, {rate(n / seconds, ' notices/s')}, peak {peak_mb:.1f} MB "
                  f"(this process's peak before it: {before_mb:.0f} MB); {size / 1e6:,.1f} MB written, {found:,} notices "
                  f"found, {sampled} parsed back")
            if kind == "folder":
                # Context: the file system alone, for the folder kind (the draft's files are removed after it, so it
                # does not run in the wake of a million unlinks).
                average = size // n
                floor_s, _, _ = measure("floor", [sys.executable, "-c", FLOOR, str(workdir / "floor"), str(n), str(average)],
                                        env, workdir)
                print(f"  floor: python -c creating {n:,} 0600 files of {average:,} bytes in subfolders of 1,000: "
                      f"{floor_s:.1f} s, {rate(n / floor_s, ' files/s')}")
                discard(workdir / "floor")
            discard(out)

        m = min(n, args.baseline)
        base_rate, base_size = baseline_rate(db, m)
        print(f"  baseline: EmailMessage per person, {m:,} people in this process: {rate(base_rate, ' notices/s')}, "
              f"{base_size:,} bytes each (project: {average:,})")

        labels = {"folder": "--out DIR (.eml files)", "mbox": "--out FILE.mbox", "zip": "--out FILE.zip"}
        rows = [Row(f"breach affected --users FILE ({n:,}; context)", rate(n / attach_s, " users/s"), "-", None,
                    f"- (peak {attach_mb:.0f} MB)", None, n / attach_s, None, "users/s", attach_mb)]
        for kind, (seconds, peak_mb) in results.items():
            project = n / seconds
            rows.append(Row(f"draft {labels[kind]}, {n:,} e-mails", rate(project, " notices/s"),
                            rate(base_rate, "/s") + " (EmailMessage)", project / base_rate, f">= {RATE_TARGET:,}/s",
                            project >= RATE_TARGET, project, base_rate, "notices/s", peak_mb))
            rows.append(memory_below(f"  peak memory, {kind}", peak_mb, None, MEMORY_TARGET_MB))
        folder_rate = n / results["folder"][0]
        rows.append(Row("floor: python -c, same files (context)", rate(folder_rate, " notices/s"),
                        rate(n / floor_s, " files/s"), folder_rate / (n / floor_s), "-", None, folder_rate, n / floor_s,
                        "notices/s", results["folder"][1]))
        report(rows)
    finally:
        leave(workdir, args.keep)


if __name__ == "__main__":
    main()
