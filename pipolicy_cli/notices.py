"""Drafting breach notices: to each affected person, to the public, to the regulator.

Templates are Jinja2 files in `data/templates/breach/` (a company's own
`--template-dir` comes first, file by file), rendered in a sandbox with strict
undefined names; HTML is autoescaped. Officer and user text only ever enters as
data, never as template source, so `{{ }}` or `[bold]` in a summary or a name
prints as written.

Individual notices are streamed: one per affected person reachable by the
channel, written into subfolders of at most 1,000 files, one `.mbox`, one
`.zip`, or stdout. A draft into the same place replaces the last one (a
manifest lists what it wrote).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Iterator

from pipolicy_cli import breach, catalog, dates, paths, settings
from pipolicy_cli.errors import Incomplete, InvalidInput
from pipolicy_cli.register import Register
from pipolicy_cli.register.connection import cache_size

AUDIENCES = ("individuals", "public", "regulator")
LANGS = ("zh", "en")
FORMATS = ("md", "txt", "eml", "json")
DEFAULT_FORMAT = {"email": "eml", "letter": "md", "sms": "txt", "push": "txt"}
FILES_PER_FOLDER = 1000
MANIFEST = ".pipolicy-draft"
# Drafting reads each page of the affected once: the register's 256 MB cache would only fill up with them.
DRAFT_CACHE_KIB = 8 * 1024
GSM_7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
            "¿abcdefghijklmnopqrstuvwxyzäöñüà")


def sms_limit(text: str) -> int:
    """One SMS holds 160 GSM-7 characters, or 70 when any character needs UCS-2 (Chinese does)."""
    return 160 if set(text) <= GSM_7 else 70


@dataclass
class Notice:
    user_id: str
    user_key: int
    channel: str
    to: str | None
    subject: str | None
    text: str
    html: str | None = None


def environment(template_dir: Path | None):
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, select_autoescape
    from jinja2.sandbox import SandboxedEnvironment

    loaders = []
    if template_dir is not None:
        if not template_dir.is_dir():
            raise InvalidInput(f"--template-dir: no such folder {template_dir}")
        loaders.append(FileSystemLoader(str(template_dir)))
    loaders.append(FileSystemLoader(str(catalog.data_path("templates"))))
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, keep_trailing_newline=False,
                               autoescape=select_autoescape(enabled_extensions=("html", "htm", "html.j2")))
    env.filters["cell"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    return env


def _rendered(name: str, template, values: dict[str, Any]) -> str:
    try:
        return template.render(values)
    except Exception as exc:
        raise _template_problem(name, exc) from None


def _template_problem(name: str, exc: Exception) -> InvalidInput:
    """A company's template can fail in any way, and a rendering error's message may quote the data (a missing
    key is named by its value): it is named by its type and template line. A syntax error is found before any
    data is seen, so its message, which quotes the template only, is shown."""
    import traceback

    from jinja2 import TemplateSyntaxError

    if isinstance(exc, TemplateSyntaxError):
        return InvalidInput(f"template {exc.name or 'breach/' + name}: line {exc.lineno}: {exc.message}")
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename.endswith(".j2")]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return InvalidInput(f"template breach/{name}: {type(exc).__name__}{where}")


def _when(text: str | None, zone, lang: str) -> str | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)
    if lang == "zh":
        return f"{moment.year}年{moment.month}月{moment.day}日{moment.hour:02d}时{moment.minute:02d}分"
    return f"{moment.day} {moment:%B %Y}, {moment:%H:%M} ({zone})"


def _today(zone, lang: str) -> str:
    today = dates.now().astimezone(zone)
    return f"{today.year}年{today.month}月{today.day}日" if lang == "zh" else f"{today.day} {today:%B %Y}"


class Drafter:
    """Everything a notice about one breach needs; refuses a draft missing what the profile requires."""

    def __init__(self, register: Register, key: int, lang: str, *, template_dir: Path | None = None,
                 allow_incomplete: bool = False):
        if lang not in LANGS:
            raise InvalidInput(f"--lang: must be one of {', '.join(LANGS)}")
        self.register, self.lang = register, lang
        self.breach = breach.show(register, key)
        missing = self.breach["missing_content"]
        if missing and not allow_incomplete:
            raise Incomplete(f"breach {key}: the notice lacks what {self.breach['required_source']} requires: "
                             f"{', '.join(missing)} (set them with `breach update`, or --allow-incomplete for a DRAFT)")
        self.draft = bool(missing)
        self.env = environment(template_dir)
        zone = settings.local_zone(register)
        stored = register.settings()
        titles = {entry["code"]: entry.get("title_zh" if lang == "zh" else "title", entry["title"])
                  for entry in settings.policy_catalog(register)["categories"]}
        self.titles = titles
        shown = dict(self.breach)
        shown["detected"], shown["occurred"] = _when(shown["detected_at"], zone, lang), _when(shown["occurred_at"], zone, lang)
        self.context = {
            "lang": lang, "draft": self.draft, "org": stored.get("organisation") or ("本公司" if lang == "zh" else "We"),
            "contact": self.breach["contact"] or stored.get("contact") or "", "dpo": stored.get("dpo"),
            "breach": shown, "categories": [titles.get(code, code) for code in self.breach["categories"]],
            "today": _today(zone, lang), "regulator": self.breach["regulator"], "clocks": self.breach["clocks"],
            "regulator_zh": breach.profile(register).get("regulator_zh"),
            "notices": self.breach["notices"],
        }
        self.sender = stored.get("notice-from")

    def _template(self, name: str):
        try:
            return self.env.get_template(f"breach/{name}")
        except Exception as exc:
            raise _template_problem(name, exc) from None

    def _render(self, name: str, **extra: Any) -> str:
        return _rendered(name, self._template(name), {**self.context, **extra}).strip() + "\n"

    def document(self, audience: str) -> str:
        """The public announcement or the regulator's report, as Markdown text."""
        if audience not in ("public", "regulator"):
            raise InvalidInput("--audience: public or regulator")
        return self._render(f"{audience}.{self.lang}.md.j2")

    def regulator_json(self) -> dict[str, Any]:
        keep = ("id", "status", "summary", "cause", "categories", "people", "affected_count", "harm", "measures", "advice",
                "remedies", "cii", "grade", "grade_source", "detected_at", "occurred_at", "closed_at", "clocks",
                "missing_content", "required_source", "notices")
        return {"draft": self.draft, "organisation": self.context["org"], "protection_officer": self.context["dpo"],
                "contact": self.context["contact"], "regulator": self.breach["regulator"],
                **{name: self.breach[name] for name in keep}}

    def individuals(self, channel: str) -> Iterator[Notice]:
        """One notice per attached person the channel can reach, streamed in user order.

        Ordered by `b.user_key` (= u.id), the order of the (breach_id, user_key) index: rows stream as read, with no
        sort of everyone in memory (temp_store is MEMORY)."""
        if channel not in breach.CHANNELS:
            raise InvalidInput(f"--channel: must be one of {', '.join(breach.CHANNELS)}")
        if channel == "email" and not self.sender:
            raise InvalidInput("notice-from: set the sender first: pipolicy config set notice-from privacy@example.com")
        cursor = self.register.conn.execute(
            f"""SELECT u.id, u.user_id, u.name, u.email, u.phone, u.address, b.categories
                FROM breach_users b JOIN users u ON u.id = b.user_key
                WHERE b.breach_id = ? AND {breach.REACH[channel]} ORDER BY b.user_key""",
            (self.breach["id"],),
        )
        base = self.context["categories"]
        templates = {part: (name, self._template(name)) for part, name in self._names(channel).items()}
        for key, user_id, name, email, phone, address, categories in cursor:
            person = {"user_id": user_id, "name": name, "address": address,
                      "categories": [self.titles.get(code, code) for code in categories.split(",")] if categories else base}
            values = {**self.context, "person": person, "channel": channel, "categories": person["categories"]}
            rendered = {part: _rendered(name, template, values).strip() + "\n" for part, (name, template) in templates.items()}
            if channel == "sms":
                body = rendered["text"].strip()
                if len(body) > sms_limit(body):
                    raise InvalidInput(f"--channel sms: the notice for row {key} is {len(body)} characters; one SMS holds "
                                       f"{sms_limit(body)} (shorten the organisation's name or use --template-dir)")
            to = {"email": email, "sms": phone, "letter": address, "push": user_id}[channel]
            yield Notice(user_id, key, channel, to, rendered.get("subject", "").strip() or None, rendered["text"],
                         rendered.get("html"))

    def _names(self, channel: str) -> dict[str, str]:
        lang = self.lang
        if channel == "email":
            return {"subject": f"individuals-email-subject.{lang}.txt.j2", "text": f"individuals-email.{lang}.txt.j2",
                    "html": f"individuals-email.{lang}.html.j2"}
        if channel == "letter":
            return {"text": f"individuals-letter.{lang}.md.j2"}
        return {"text": f"individuals-{channel}.{lang}.txt.j2"}


class Mailer:
    """E-mail bytes for many notices: text and HTML alternatives, UTF-8, base64, ready for any mail tool.

    A full `EmailMessage` per person costs about 1.5 ms, mostly header parsing
    and folding, and a million notices need better. Here the email package
    folds each distinct header once (sender, subject, date); per message only the
    recipient, the Message-ID, the boundary and the base64 bodies change. A
    recipient the fast path cannot write verbatim (not ASCII) goes through the
    email package whole. Tests parse every kind back with the email package.
    """

    def __init__(self, sender: str, organisation: str | None, breach_id: int, linesep: bytes = b"\r\n"):
        from email import policy
        from email.headerregistry import Address
        from email.utils import format_datetime

        self.policy = policy.SMTP.clone(linesep=linesep.decode())
        self.linesep, self.breach_id = linesep, breach_id
        self.domain = sender.rsplit("@", 1)[-1]
        local, _, domain = sender.partition("@")
        self.sender = Address(display_name=organisation or "", username=local, domain=domain)
        self.date = format_datetime(dates.now())
        self.head = self._fold("From", self.sender) + self._fold("Date", self.date)
        self._subjects: dict[str, bytes] = {}

    def _fold(self, name: str, value: Any) -> bytes:
        return self.policy.fold_binary(name, self.policy.header_store_parse(name, value)[1])

    def bytes(self, notice: Notice) -> bytes:
        from email.utils import make_msgid

        if not notice.to.isascii():
            return self.message(notice).as_bytes(policy=self.policy)
        subject = self._subjects.get(notice.subject or "")
        if subject is None:
            subject = self._subjects.setdefault(notice.subject or "", self._fold("Subject", notice.subject or ""))
        sep = self.linesep
        msgid = make_msgid(idstring=f"breach{self.breach_id}", domain=self.domain)
        head = (self.head + b"To: " + notice.to.encode("ascii") + sep + subject + b"Message-ID: " + msgid.encode("ascii")
                + sep + b"X-Pipolicy-Breach: " + str(self.breach_id).encode("ascii") + sep + b"MIME-Version: 1.0" + sep)
        if not notice.html:
            return head + self._part("plain", notice.text)
        boundary = f"===============pipolicy{os.urandom(12).hex()}==".encode("ascii")
        return (head + b'Content-Type: multipart/alternative; boundary="' + boundary + b'"' + sep + sep
                + b"--" + boundary + sep + self._part("plain", notice.text) + sep
                + b"--" + boundary + sep + self._part("html", notice.html) + sep
                + b"--" + boundary + b"--" + sep)

    def _part(self, subtype: str, text: str) -> bytes:
        import base64

        sep = self.linesep
        body = base64.encodebytes(text.encode("utf-8"))
        if sep != b"\n":
            body = body.replace(b"\n", sep)
        return (b'Content-Type: text/' + subtype.encode("ascii") + b'; charset="utf-8"' + sep
                + b"Content-Transfer-Encoding: base64" + sep + sep + body)

    def message(self, notice: Notice):
        """The same notice as an `EmailMessage`, for what the fast path leaves to the email package."""
        from email.message import EmailMessage
        from email.utils import make_msgid

        mail = EmailMessage(policy=self.policy)
        mail["From"] = self.sender
        mail["To"] = notice.to
        mail["Subject"] = notice.subject
        mail["Date"] = self.date
        mail["Message-ID"] = make_msgid(idstring=f"breach{self.breach_id}", domain=self.domain)
        mail["X-Pipolicy-Breach"] = str(self.breach_id)
        mail.set_content(notice.text)
        if notice.html:
            mail.add_alternative(notice.html, subtype="html")
        return mail


def notice_bytes(notice: Notice, fmt: str, mailer: "Mailer | None") -> bytes:
    if fmt == "eml":
        return mailer.bytes(notice)
    if fmt == "json":
        return (json.dumps({"user_id": notice.user_id, "channel": notice.channel, "to": notice.to, "subject": notice.subject,
                            "text": notice.text}, ensure_ascii=False) + "\n").encode("utf-8")
    head = f"Subject: {notice.subject}\n\n" if notice.subject else ""
    return (head + notice.text).encode("utf-8")


def safe_name(user_id: str) -> str:
    """A file name from a user id that cannot leave its folder."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in user_id).lstrip(".")
    return cleaned[:80] or "user"


def write_folder(folder: Path, notices: Iterator[Notice], fmt: str, mailer: Mailer | None) -> int:
    """Files in subfolders of at most 1,000 (by the person's key); the previous draft here is replaced.

    The manifest (one file name per line) is written as the files are, so a million notices keep memory flat.
    """
    paths.private_folder(folder)
    manifest = folder / MANIFEST
    if manifest.exists():
        root = folder.resolve()
        with manifest.open(encoding="utf-8") as listed:
            for line in listed:
                target = (folder / line.rstrip("\n")).resolve()
                if root in target.parents:
                    target.unlink(missing_ok=True)
    elif any(folder.iterdir()):
        raise InvalidInput(f"--out: {folder} holds other files; name an empty folder or a previous draft's")
    count = 0
    partial = folder / (MANIFEST + ".part")
    fd = paths.open_private(partial)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as listing:
            made: set[str] = set()
            for count, notice in enumerate(notices, 1):
                sub = f"{notice.user_key // FILES_PER_FOLDER:06d}"
                if sub not in made:
                    (folder / sub).mkdir(mode=0o700, exist_ok=True)
                    made.add(sub)
                name = f"{sub}/{safe_name(notice.user_id)}-{notice.user_key}.{fmt}"
                listing.write(name + "\n")  # listed first: a failure below still finds the file to remove
                _write_private(folder / name, notice_bytes(notice, fmt, mailer))
    except BaseException:
        # A notice that fails (a template, a full disk) leaves none of this draft's files behind.
        with partial.open(encoding="utf-8") as listed:
            for line in listed:
                (folder / line.rstrip("\n")).unlink(missing_ok=True)
        partial.unlink()
        _remove_empty_folders(folder)
        raise
    partial.replace(manifest)
    _remove_empty_folders(folder)
    return count


def _remove_empty_folders(folder: Path) -> None:
    for sub in folder.iterdir():
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()


def _write_private(path: Path, data: bytes) -> None:
    fd = paths.open_private(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_mbox(out: IO[bytes], notices: Iterator[Notice], mailer: Mailer) -> int:
    """Every e-mail in one mbox stream. Bodies are base64, so no line can start with "From "."""
    count = 0
    separator = f"From pipolicy {dates.now():%a %b %d %H:%M:%S %Y}\n".encode("ascii")
    for count, notice in enumerate(notices, 1):
        out.write(separator + mailer.bytes(notice) + b"\n")
    return count


ZIP32_LIMIT = 0xFFFFFFFF  # a count, size or offset at or above this needs zip64 records (0xFFFF for the count)


def write_zip(path: Path, notices: Iterator[Notice], fmt: str, mailer: Mailer | None) -> int:
    """The files of a folder draft in one deflated zip, written in one pass.

    Not with `zipfile`: it keeps an object of about 550 bytes per entry until it writes the central directory (a
    million notices: 586 MB). Here each entry's central-directory record goes to an unlinked 0600 temporary file
    beside the archive as the entry is written, and is copied in at the end, so memory stays flat; zip64 records
    when the count or an offset needs them. Tests read the archive back with `zipfile`.
    """
    import shutil
    import struct
    import tempfile
    import zlib

    moment = dates.now().astimezone()
    dos_time = moment.hour << 11 | moment.minute << 5 | moment.second // 2
    dos_date = (max(moment.year, 1980) - 1980) << 9 | moment.month << 5 | moment.day
    count = offset = 0
    with paths.replaced_whole(path) as out, tempfile.TemporaryFile(dir=path.parent) as central:  # drafting again replaces it whole
        for count, notice in enumerate(notices, 1):
            name = f"{notice.user_key // FILES_PER_FOLDER:06d}/{safe_name(notice.user_id)}-{notice.user_key}.{fmt}".encode()
            data = notice_bytes(notice, fmt, mailer)
            packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            packed = packer.compress(data) + packer.flush()
            # version needed 2.0, UTF-8 names flagged, deflate, time, date, CRC-32, sizes, name length, extra length
            fields = (0 if name.isascii() else 0x800, 8, dos_time, dos_date, zlib.crc32(data), len(packed), len(data))
            out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, *fields, len(name), 0) + name + packed)
            extra = struct.pack("<HHQ", 1, 8, offset) if offset >= ZIP32_LIMIT else b""  # zip64: the offset alone
            central.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 3 << 8 | 45, 45 if extra else 20, *fields,
                                      len(name), len(extra), 0, 0, 0, 0o100600 << 16, _zip32(offset)) + name + extra)
            offset += 30 + len(name) + len(packed)
        size = central.tell()
        central.seek(0)
        shutil.copyfileobj(central, out, 1 << 20)
        if count >= 0xFFFF or offset >= ZIP32_LIMIT or size >= ZIP32_LIMIT:
            out.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 3 << 8 | 45, 45, 0, 0, count, count, size, offset))
            out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, offset + size, 1))
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                              _zip32(size), _zip32(offset), 0))
    return count


def _zip32(value: int) -> int:
    """A 4-byte zip field: the value, or 0xFFFFFFFF when the zip64 record holds it."""
    return 0xFFFFFFFF if value >= ZIP32_LIMIT else value


def write_stream(out: IO[bytes], notices: Iterator[Notice], fmt: str, mailer: Mailer | None) -> int:
    if fmt == "eml":
        return write_mbox(out, notices, mailer)
    count = 0
    for count, notice in enumerate(notices, 1):
        if count > 1 and fmt != "json":
            out.write(b"\f\n")  # a form feed between notices: one page each when printed
        out.write(notice_bytes(notice, fmt, mailer))
    return count


def draft_individuals(drafter: Drafter, channel: str, fmt: str, out_path: Path | None, stdout: IO[bytes]) -> dict[str, Any]:
    """Write every individual notice where `--out` says; returns what was written and who the channel cannot reach."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format: must be one of {', '.join(FORMATS)}")
    if fmt == "eml" and channel != "email":
        raise InvalidInput("--format eml: only for --channel email")
    key = drafter.breach["id"]
    mbox = out_path is None or out_path.suffix == ".mbox"
    mailer = (Mailer(drafter.sender, drafter.context["org"], key, b"\n" if mbox else b"\r\n") if fmt == "eml" else None)
    with cache_size(drafter.register.conn, DRAFT_CACHE_KIB):  # a million people: memory stays flat
        notices = drafter.individuals(channel)
        if out_path is None:
            count, where = write_stream(stdout, notices, fmt, mailer), "stdout"
        elif out_path.suffix == ".mbox":
            if fmt != "eml":
                raise InvalidInput("--out *.mbox: holds e-mail; use --channel email (--format eml)")
            with paths.replaced_whole(out_path) as handle:
                count = write_mbox(handle, notices, mailer)
            where = str(out_path)
        elif out_path.suffix == ".zip":
            count, where = write_zip(out_path, notices, fmt, mailer), str(out_path)
        else:
            count, where = write_folder(out_path, notices, fmt, mailer), str(out_path)
        reach = breach.reachability(drafter.register, key)
    return {"breach": key, "audience": "individuals", "channel": channel, "format": fmt, "lang": drafter.lang,
            "notices": count, "written_to": where, "draft": drafter.draft,
            "not_reachable_by_channel": drafter.breach["notices"]["attached"] - reach[channel]}
