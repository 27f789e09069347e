"""The root Typer app: wiring and the one mapping from exceptions to exit codes."""

import importlib
import os
import signal
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from pipolicy_cli import __version__
from pipolicy_cli.cli import completion, erasure, export, quickstart, register, report
from pipolicy_cli.errors import ExitCode, PipolicyError

# Command groups are built when used: turning every command's signature into a
# click command costs about as much as importing typer, and `pipolicy --help`
# (or `pipolicy user add`) needs one group at most. name -> "module:attribute".
GROUPS = {
    "config": "config:app", "user": "users:app", "policy": "policy:app", "consent": "consent:app",
    "system": "inventory:system_app", "data": "inventory:data_app", "access": "access:app", "request": "requests:app",
    "task": "tasks:app", "backup": "erasure:backup_app", "retention": "retention:app", "breach": "breach:app",
    "recipient": "provisions:recipient_app", "share": "provisions:share_app", "transfer": "provisions:transfer_app",
    "disclose": "provisions:disclose_app", "pia": "provisions:pia_app", "audit": "audit:app",
}


class Terminated(BaseException):
    """SIGTERM: unwind like an interrupt so open transactions roll back."""


class PipolicyGroup(TyperGroup):
    """Maps every exception to one line on stderr and its exit code; builds command groups on first use."""

    _listing = False

    def list_commands(self, ctx) -> list[str]:
        return [*super().list_commands(ctx), *GROUPS]

    def get_command(self, ctx, name: str):
        if name not in GROUPS:
            return super().get_command(ctx, name)
        module, attribute = GROUPS[name].split(":")
        sub_app = getattr(importlib.import_module(f"pipolicy_cli.cli.{module}"), attribute)
        if self._listing:  # the top-level help needs only the name and the help line
            return TyperGroup(name=name, help=sub_app.info.help)
        group = typer.main.get_command(sub_app)
        group.name = name
        # Built as a root, a group gets typer's own completion options; pipolicy has `completion` instead.
        group.params = [param for param in group.params if param.name not in ("install_completion", "show_completion")]
        _same_markup(group, self.rich_markup_mode)
        return group

    def format_help(self, ctx, formatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        ctx.meta[TYPED] = list(args)  # the meta dict is shared by every sub-command's context
        ctx.meta[UNREADABLE] = _unreadable_argument(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        from pipolicy_cli.cli.output import Output

        Output.current = None  # an earlier run in this process (quickstart, tests) must not answer for this one
        unreadable = ctx.meta.get(UNREADABLE)
        if unreadable:
            _report(unreadable, ExitCode.INVALID, "invalid_input")
        try:
            return super().invoke(ctx)
        except SystemExit:
            raise
        except BaseException as exc:
            if type(exc).__module__.split(".")[0] in ("typer", "click"):
                _hide_typed_values(exc, ctx.meta.get(TYPED, []))
                raise  # usage errors and exits are typer's to print
            _map(exc)


TYPED = "pipolicy.typed"
UNREADABLE = "pipolicy.unreadable"


def _map(exc: BaseException) -> None:
    """Every exception to one line on stderr and its exit code (raises typer.Exit)."""
    if isinstance(exc, PipolicyError):
        _report(str(exc), exc.exit_code, exc.kind, getattr(exc, "problems", None))
    if isinstance(exc, KeyboardInterrupt):
        _report("interrupted", ExitCode.INTERRUPTED, "interrupted")
    if isinstance(exc, Terminated):
        _report("terminated", ExitCode.TERMINATED, "terminated")
    if isinstance(exc, BrokenPipeError):
        # `pipolicy ... | head`: stop quietly. Point stdout at /dev/null so that flushing it at exit fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(ExitCode.BROKEN_PIPE)
    if isinstance(exc, UnicodeDecodeError):
        # Files are decoded where they are read, naming the row; this is text read from stdin.
        _report("stdin: not valid UTF-8 text", ExitCode.INVALID, "invalid_input")
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        from pipolicy_cli.register.connection import storage_problem

        _report(f"storage: {storage_problem(exc)}", ExitCode.ERROR, "storage")
    if isinstance(exc, OSError):
        _report(f"{exc.strerror or type(exc).__name__}: {_shortened(exc.filename)}".rstrip(": "), ExitCode.ERROR, "os")
    _report_internal(exc)


def _hide_typed_values(exc: BaseException, typed: list[str]) -> None:
    """Typer's usage errors quote what was typed ("'x' is not a valid int", "No such command 'x'", "unexpected
    extra argument (x)"), and what was typed may be a personal value in the wrong place (a name without its
    --name): keep what the message says about it, not the value."""
    import re

    message = getattr(exc, "message", None)
    if not message or not isinstance(message, str):
        return
    if re.match(r"Got unexpected extra arguments?", message):
        exc.message = re.sub(r" \(.*\)$", "", message, flags=re.S) + " (not shown: they may be personal values)"
        return
    values = {part for arg in typed for part in (arg, arg.partition("=")[2]) if part}
    forms = sorted({form for value in values for form in (repr(value), value)}, key=len, reverse=True)
    if message.startswith("No such command "):
        said = message[len("No such command "):]
        exc.message = "No such command" + next((said[len(form):] for form in forms if said.startswith(form)), ".")
    elif isinstance(exc, typer.BadParameter):
        # A parameter type's complaint starts with the value: "'x' is not one of ...", "0 is not in the range ..."
        exc.message = next(("the value given" + message[len(form):] for form in forms if message.startswith(form + " ")),
                            "not a valid value")


def _unreadable_argument(args: list[str]) -> str | None:
    """Arguments the OS could not decode (invalid UTF-8 arrives as lone surrogates) or holding NUL can be
    neither stored nor used as paths: refuse them up front, naming the option they belong to."""
    for index, arg in enumerate(args):
        if "\x00" in arg:
            fault = "contains a NUL character"
        elif not arg.isascii():
            try:
                arg.encode("utf-8")
                continue
            except UnicodeEncodeError:
                fault = "not valid UTF-8 text"
        else:
            continue
        if arg.startswith("--") and "=" in arg:
            name = arg.split("=", 1)[0]
        elif index and args[index - 1].startswith("-") and args[index - 1] not in ("-", "--"):
            name = args[index - 1]
        else:
            name = f"argument {index + 1}"
        return f"{name}: {fault}"
    return None


def _shortened(filename) -> str:
    text = str(filename or "")
    return text if len(text) <= 200 else text[:100] + "..." + text[-60:]


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


def _same_markup(command, mode) -> None:
    """A group built on its own gets typer's default markup; use the root's (plain when piped)."""
    command.rich_markup_mode = mode
    for sub in getattr(command, "commands", {}).values():
        _same_markup(sub, mode)


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
export.attach(app)
erasure.attach(app)
report.attach(app)
completion.attach(app)

def run() -> None:
    def on_sigterm(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        app(prog_name="pipolicy")
    except SystemExit:
        raise
    except BaseException as exc:
        # What escapes typer (an exception that is not an Exception, a failure before or while a command is
        # invoked) would reach Python's hook, which prints its message: report it like any other.
        try:
            _map(exc)
        except typer.Exit as stop:
            raise SystemExit(stop.exit_code) from None
        except BaseException:  # reporting it failed too: what failed, plainly
            sys.stderr.write(f"pipolicy: error: internal error: {type(exc).__name__}\n")
            raise SystemExit(ExitCode.ERROR) from None
