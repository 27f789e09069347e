"""`quickstart`: a demo register, walked through the main job step by step."""

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from pipolicy_cli.errors import InvalidInput


@dataclass(frozen=True)
class Step:
    title: str  # empty: a further command of the step before
    explanation: str
    argv: list[str]
    expect: int = 0
    table: bool = True  # add --format table (documents such as export have formats of their own)


def steps(folder: Path) -> list[Step]:
    """The walk-through, on the demo register in `folder`."""
    from pipolicy_cli.catalog import data_path

    db = ["--db", str(folder / "register.db")]
    users = str(data_path("demo", "users.csv"))
    inventory = str(data_path("demo", "inventory.csv"))
    night = str(data_path("demo", "access.ndjson"))
    return [
        Step(
            "Create the register",
            "One SQLite file, readable only by you, with the PIPL profile. The HMAC key for "
            "erasure tombstones is kept in a separate 0600 file.",
            ["init", "--jurisdiction", "pipl", "--key-file", str(folder / "register.key"), *db],
        ),
        Step(
            "Say who answers for the data",
            "The contact and the protection officer go into every notice and export (policy section 9).",
            ["config", "set", "organisation", "Demo IoT Co., Ltd.", *db],
        ),
        Step("", "", ["config", "set", "contact", "Customer service hotline 10086-0000, privacy@demo.example", *db]),
        Step("", "", ["config", "set", "dpo", "Wang Fang, protection officer, dpo@demo.example", *db]),
        Step(
            "Import the people the company holds data about",
            "The whole file is validated first: ID numbers (check digit, birth date), phone numbers and "
            "e-mails. It has five bad rows, so nothing is written, and each is named by row and field, "
            "never by its value.",
            ["user", "import", users, *db],
            expect=4,
        ),
        Step(
            "",
            "--skip-invalid writes the good rows and reports the rest.",
            ["user", "import", users, "--skip-invalid", *db],
        ),
        Step(
            "",
            "Importing the same file again changes nothing.",
            ["user", "import", users, "--skip-invalid", *db],
        ),
        Step(
            "List them, masked",
            "Personal values are masked everywhere but the export. Age comes from the birth date or the ID number.",
            ["user", "list", "--limit", "8", *db],
        ),
        Step(
            "Find the minors",
            "Under 18 a guardian's written consent is needed (policy section 6; `config set guardian-age 14` "
            "for PIPL's own minimum).",
            ["user", "list", "--minors", *db],
        ),
        Step(
            "Look one person up by phone, unmasked",
            "--reveal shows the values and is itself an audit event.",
            ["user", "show", "135 0000 0007", "--by", "phone", "--reveal", *db],
        ),
        Step(
            "Correct a record and cancel an account",
            "A correction names the fields it changed in the audit trail (policy 5.1); after a cancellation "
            "the data must no longer be used (policy 1.1.a, 5.3).",
            ["user", "update", "U00000007", "--address", "上海市徐汇区中山路8号", *db],
        ),
        Step("", "", ["user", "cancel", "U00000007", *db]),
        Step(
            "Record consents, and a withdrawal",
            "Each consent is an append-only event with the policy version in force, how it was given and "
            "where the proof is. A withdrawal affects only later use (PIPL Art. 15).",
            ["consent", "grant", "U00000001", "messaging", "--at", "2026-01-10 09:00", "--method", "app-toggle",
             "--evidence", "app-log-88231", *db],
        ),
        Step("", "", ["consent", "grant", "U00000001", "location", "--at", "2026-01-10 09:01", "--method", "app-toggle", *db]),
        Step("", "", ["consent", "withdraw", "U00000001", "location", "--at", "2026-03-01 18:30", "--method", "app-toggle", *db]),
        Step(
            "",
            "A browser's Do Not Track signal is a withdrawal of tracking (policy 2(c)).",
            ["consent", "withdraw", "U00000003", "tracking", "--signal", "dnt", *db],
        ),
        Step(
            "Check a use before it happens",
            "Exit 0 when allowed, 5 when not, with the reason. Systems can ask in bulk with `consent check -`.",
            ["consent", "check", "U00000001", "messaging", *db],
        ),
        Step("", "", ["consent", "check", "U00000001", "location", *db], expect=5),
        Step(
            "Change the policy in a way that reduces rights",
            "\"Continuing to use the service means you agree\" is not consent under PIPL (Art. 14): consents "
            "given before the new version stop counting from its effective date until renewed.",
            ["policy", "version", "add", "2026-06", "--effective", "2026-06-01", "--reduces-rights",
             "--summary", "Order records kept five years instead of three", *db],
        ),
        Step("", "", ["consent", "check", "U00000001", "messaging", *db], expect=5),
        Step("", "These people must be asked again:", ["policy", "reconsent-list", *db]),
        Step(
            "Minors need their guardian",
            "A minor's consent counts only with a guardian's written consent (policy 6). `consent minors` lists "
            "minors without one and exits 5; people of unknown age are reported apart.",
            ["consent", "grant", "U00000002", "personalization", *db],
        ),
        Step("", "", ["consent", "check", "U00000002", "personalization", *db], expect=5),
        Step("", "", ["consent", "grant", "U00000002", "personalization", "--by-guardian", "林芳", "--relation", "mother",
                      "--written-consent", "paper-form-0002", *db]),
        Step("", "", ["consent", "check", "U00000002", "personalization", *db]),
        Step("", "", ["consent", "minors", *db], expect=5),
        Step(
            "Say where the data is held",
            "The company's systems, and processors entrusted under a contract (PIPL Art. 21), then the inventory: "
            "which data of whom each holds, from where (data from partners names them: policy 1.3), since when.",
            ["system", "add", "crm", "--owner", "Customer operations", "--country", "CN", *db],
        ),
        Step("", "", ["system", "add", "sms-gateway", "--kind", "processor", "--contract", "DPA-2025-014", "--country", "CN", *db]),
        Step("", "", ["data", "import", inventory, *db]),
        Step("", "", ["system", "list", *db]),
        Step(
            "Log a night of uses and find the violations",
            "Services ship their access log nightly; a resent event is skipped. Nothing is refused for lacking a "
            "basis: the log must be complete, and `access violations` judges every use now, so a consent "
            "recorded late counts.",
            ["access", "import", night, *db],
        ),
        Step("", "", ["access", "violations", *db], expect=5),
        Step(
            "Answer a person's request before it is due",
            "The due date comes from the profile: under PIPL 15 working days on China's calendar, the day of "
            "receipt not counted and make-up working days counted. The identity is checked before anything is handed out.",
            ["request", "open", "U00000004", "--kind", "copy", "--via", "app", *db],
        ),
        Step("", "", ["request", "verify", "2", "--method", "SMS code to the registered phone", *db]),
        Step(
            "",
            "The export holds everything about the person, unmasked, and completes the request it answers "
            "(--format md is written for the person to read; csv is a zip of one CSV per section).",
            ["export", "U00000004", "--request", "2", "--format", "md", "--out", str(folder / "U00000004-export.md"), *db],
            table=False,
        ),
        Step("", "Cancelling an account opened a deletion request too (policy 5.3):", ["request", "list", *db]),
        Step(
            "Carry a deletion out to every system that holds the person",
            "Verifying the request gives each system the inventory names (the CRM and the SMS processor) a task "
            "with only the identifiers it holds (PIPL Art. 21, 47).",
            ["request", "open", "U00000001", "--kind", "deletion", "--ground", "consent-withdrawn", "--via", "app", *db],
        ),
        Step("", "", ["request", "verify", "3", "--method", "SMS code to the registered phone", *db]),
        Step("", "", ["task", "list", "--request", "3", *db]),
        Step(
            "",
            "Each system's cron job pulls its tasks (audited; a lost pull is handed out again after --lease) and "
            "reports back.",
            ["task", "pull", "--system", "crm", *db],
            table=False,
        ),
        Step("", "", ["task", "done", "3", "--note", "customer record purged", *db]),
        Step("", "While the SMS gateway has not confirmed, the request cannot be completed:",
             ["request", "complete", "3", "--yes", *db], expect=4),
        Step("", "", ["task", "pull", "--system", "sms-gateway", *db], table=False),
        Step("", "", ["task", "done", "4", "--note", "number removed from the send lists", *db]),
        Step(
            "",
            "Both confirmed: completing erases the person from the register, and the tasks keep no identifiers.",
            ["request", "complete", "3", "--yes", *db],
        ),
        Step(
            "Erase a person so nothing of them is left",
            "First a backup, then the dry run: what goes, and what a legal floor keeps de-identified and why.",
            ["config", "set", "backup-dir", str(folder / "backups"), *db],
        ),
        Step("", "", ["backup", "create", *db]),
        Step("", "", ["erase", "U00000005", "--dry-run", *db]),
        Step(
            "",
            "The real run is one transaction, then the WAL is checkpointed so the old pages leave the files. A "
            "tombstone keeps only HMACs of the identifiers, under the key outside the register.",
            ["erase", "U00000005", "--yes", *db],
        ),
        Step(
            "",
            "The backup made before still holds the person until it expires (policy 5.2); restoring it erases them "
            "again from the tombstones.",
            ["backup", "list", *db],
        ),
        Step(
            "Keep data no longer than its purpose needs",
            "Default rules per category and table came with `init`, none under the profile's floors (access logs: "
            "6 months, Cybersecurity Law Art. 21). The dry run counts what the nightly sweep would reach; it needs no --yes.",
            ["retention", "rule", "list", *db],
        ),
        Step("", "", ["retention", "sweep", "--dry-run", "--as-of", "2026-12-01 02:00", *db]),
        Step(
            "",
            "The real run works in batches, each one transaction; systems holding what a category rule reached get a "
            "task carrying the rule, not the person. From cron it needs --yes and prints JSON.",
            ["retention", "sweep", "--yes", "--as-of", "2026-12-01 02:00", *db],
        ),
        Step("", "", ["retention", "history", *db]),
        Step(
            "Handle a security incident",
            "The grade and the reporting clocks come from the profile (PIPL: 4 hours to the provincial CAC from "
            "1,000,000 people; 1 hour for critical infrastructure). A notice missing what PIPL Art. 57 requires "
            "is refused.",
            ["config", "set", "notice-from", "privacy@demo.example", *db],
        ),
        Step("", "", ["breach", "open", "--detected", "2026-11-30 20:00", "--summary",
                      "客服系统的一个查询接口被未经授权的外部程序批量调用。", "--categories", "registration,order",
                      "--cause", "该接口上线时遗漏了访问控制校验。",
                      "--harm", "您的姓名、手机号码和订单记录可能被用于电话诈骗或发送垃圾短信。",
                      "--measures", "我们已于发现当晚关闭该接口、修复漏洞，并已向公安机关报案。",
                      "--advice", "请警惕自称本公司客服的来电和短信，不要向任何人透露短信验证码。", *db]),
        Step("", "Everyone the inventory holds order data of is affected; how many each channel reaches:",
             ["breach", "affected", "1", "--category", "order", *db]),
        Step("", "", ["breach", "affected", "1", "--category", "registration", *db]),
        Step("", "One e-mail per person, as real .eml files (drafting again replaces them):",
             ["breach", "draft", "1", "--audience", "individuals", "--channel", "email", "--out",
              str(folder / "notices"), *db], table=False),
        Step("", "", ["breach", "draft", "1", "--audience", "public", "--lang", "zh", *db], table=False),
        Step("", "", ["breach", "draft", "1", "--audience", "regulator", "--lang", "en", *db], table=False),
        Step("", "", ["breach", "show", "1", *db]),
        Step(
            "Provide data to others, and find what each provision lacks",
            "Sharing with another handler needs the person's separate consent or a legal basis (PIPL Art. 23), a "
            "partner a confidentiality agreement (policy 3), a transfer abroad the separate cross-border consent "
            "(Art. 39), and each an impact assessment (Art. 55). Nothing is refused: what is missing is flagged.",
            ["recipient", "add", "Demo Partner Credit Co.", "--kind", "partner", "--country", "CN", *db],
        ),
        Step("", "", ["recipient", "add", "SG Cloud Pte. Ltd.", "--kind", "processor", "--agreement", "DPA-2026-002",
                      "--country", "SG", *db]),
        Step("", "", ["pia", "add", "--subject", "Hosting order records in Singapore", "--covers", "transfer",
                      "--conclusion", "Acceptable with the standard contract and encryption at rest",
                      "--done-on", "2026-11-28", *db]),
        Step("", "", ["share", "log", "U00000004", "--recipient", "Demo Partner Credit Co.", "--categories", "third-party",
                      "--purpose", "service", "--basis", "contract", "--at", "2026-11-30 10:00", *db]),
        Step("", "", ["transfer", "log", "U00000003", "--country", "SG", "--recipient", "SG Cloud Pte. Ltd.",
                      "--mechanism", "standard-contract", "--categories", "order", "--pia", "1",
                      "--at", "2026-11-30 10:05", *db]),
        Step("", "", ["transfer", "thresholds", "--year", "2026", *db]),
        Step(
            "Ask how the register is",
            "Counts per table, the schema, the profile, and the head of the audit chain. "
            "`--check` also verifies the chain, for monitoring.",
            ["status", "--check", *db],
        ),
        Step(
            "See the audit trail",
            "Every change above is an event: who, which command, which object and fields, never a personal value.",
            ["audit", "list", "--newest-first", "--limit", "8", *db],
        ),
        Step(
            "Prove nothing was altered",
            "Each event's hash covers the one before it; editing, deleting or reordering any event is caught.",
            ["audit", "verify", *db],
        ),
        Step(
            "Anchor the chain outside the register",
            "Keep this count and hash elsewhere (a ticket, a signed mail); `audit verify --head HASH` later "
            "proves the register still contains it, so even a cut-off tail is caught.",
            ["audit", "head", *db],
        ),
        Step(
            "Report to management or an auditor",
            "One page: counts, consent coverage, requests and tasks, findings by kind, minors, erasures, sweeps, "
            "incidents, transfers, assessments, the audit chain, and where the policy falls short of PIPL.",
            ["report", *db],
            table=False,
        ),
    ]


def quickstart(
    folder: Annotated[
        Optional[Path],
        typer.Option("--dir", help="Where to make the demo register (default: a new temporary folder).", show_default=False),
    ] = None,
) -> None:
    """Make a demo register and walk through the main job, step by step."""
    import tempfile

    from pipolicy_cli.cli.output import Output

    out = Output("table")
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="pipolicy-quickstart-"))
    else:
        folder = folder.expanduser().absolute()
        if folder.exists() and any(folder.iterdir()):
            raise InvalidInput(f"--dir: {folder} is not empty; name a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.text(f"pipolicy quickstart: a demo register in {folder}\n")
    all_steps = steps(folder)
    numbered = sum(1 for step in all_steps if step.title)
    number = 0
    for step in all_steps:
        if step.title:
            number += 1
            out.text(f"\nStep {number} of {numbered}: {step.title}\n  {step.explanation}")
        elif step.explanation:
            out.text(f"  {step.explanation}")
        argv = [*step.argv, "--format", "table"] if step.table else step.argv
        out.text(f"$ pipolicy {shlex.join(argv)}")
        _run(argv, step.expect)
    out.text(
        f"\nDone. The demo register stays at {folder / 'register.db'}; try\n"
        f"  pipolicy status --db {folder / 'register.db'}\n"
        "Run `pipolicy --help` for every command."
    )


def _run(argv: list[str], expect: int) -> None:
    """Run one step through the real CLI, in this process; stop if it ends otherwise than expected."""
    from pipolicy_cli.cli.app import app

    code = app(args=argv, prog_name="pipolicy", standalone_mode=False) or 0
    if code != expect:
        raise typer.Exit(code or 1)


def attach(app: typer.Typer) -> None:
    app.command()(quickstart)
