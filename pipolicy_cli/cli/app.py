"""The root Typer app: wiring and the one mapping from exceptions to exit codes."""

import os
import signal
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from pipolicy_cli import __version__
from pipolicy_cli.cli import (
    access, audit, breach, completion, config, consent, erasure, export, inventory, policy, provisions, quickstart, register, report,
    requests, retention, tasks, users,
)
from pipolicy_cli.errors import ExitCode, PipolicyError


class Terminated(BaseException):
    """SIGTERM: unwind like an interrupt so open transactions roll back."""


class PipolicyGroup(TyperGroup):
    """Maps every exception to one line on stderr and its exit code."""

    def invoke(self, ctx):
        from pipolicy_cli.cli.output import Output

        Output.current = None  # an earlier run in this process (quickstart, tests) must not answer for this one
        try:
            return super().invoke(ctx)
        except PipolicyError as exc:
            _report(str(exc), exc.exit_code, exc.kind, getattr(exc, "problems", None))
        except KeyboardInterrupt:
            _report("interrupted", ExitCode.INTERRUPTED, "interrupted")
        except Terminated:
            _report("terminated", ExitCode.TERMINATED, "terminated")
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("typer", "click"):
                raise  # usage errors and exits are typer's to print
            import sqlite3

            if isinstance(exc, sqlite3.Error):
                # SQLite's messages name tables and columns, never values.
                _report(f"storage: {exc}", ExitCode.ERROR, "storage")
            elif isinstance(exc, OSError):
                _report(f"{exc.strerror or type(exc).__name__}: {exc.filename or ''}".rstrip(": "), ExitCode.ERROR, "os")
            else:
                _report_internal(exc)


def _report(message: str, code: int, kind: str, problems: list[str] | None = None) -> None:
    from pipolicy_cli.cli.output import Output

    (Output.current or Output()).error(message, int(code), kind, problems)
    raise typer.Exit(int(code))


def _report_internal(exc: Exception) -> None:
    """An unexpected error: where it happened, but not its message, which may hold a value."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    if os.environ.get("PIPOLICY_DEBUG"):
        sys.stderr.write("".join(traceback.format_list(frames)))
    else:
        sys.stderr.write("hint: set PIPOLICY_DEBUG=1 to see the stack (without values)\n")
    _report(f"internal error: {type(exc).__name__}{where}", ExitCode.ERROR, "internal")


def _markup_mode():
    # Rich help on a terminal; plain, fast help when piped (scripts, README).
    return "rich" if sys.stdout.isatty() and "NO_COLOR" not in os.environ else None


app = typer.Typer(
    name="pipolicy",
    cls=PipolicyGroup,
    help="Prove that a personal-information protection policy is kept: a register of people, "
    "consents, uses and requests, with the work a privacy officer owes under PIPL, GDPR and CCPA.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=_markup_mode(),
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"pipolicy {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


register.attach(app)
quickstart.attach(app)
app.add_typer(config.app, name="config")
app.add_typer(users.app, name="user")
app.add_typer(policy.app, name="policy")
app.add_typer(consent.app, name="consent")
app.add_typer(inventory.system_app, name="system")
app.add_typer(inventory.data_app, name="data")
app.add_typer(access.app, name="access")
app.add_typer(requests.app, name="request")
app.add_typer(tasks.app, name="task")
export.attach(app)
erasure.attach(app)
app.add_typer(retention.app, name="retention")
app.add_typer(breach.app, name="breach")
app.add_typer(provisions.recipient_app, name="recipient")
app.add_typer(provisions.share_app, name="share")
app.add_typer(provisions.transfer_app, name="transfer")
app.add_typer(provisions.disclose_app, name="disclose")
app.add_typer(provisions.pia_app, name="pia")
app.add_typer(audit.app, name="audit")
report.attach(app)
completion.attach(app)


def run() -> None:
    def on_sigterm(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    app(prog_name="pipolicy")
