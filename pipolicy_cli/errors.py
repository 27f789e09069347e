"""The project's exceptions and exit codes.

The core raises these; the CLI maps them to one line on stderr and an exit
code in one place (`cli/app.py`). Messages name rows, fields and options,
never a personal value.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1  # unexpected or storage error
    USAGE = 2
    NOT_FOUND = 3
    INVALID = 4
    ATTENTION = 5  # a check found something
    LOCKED = 6
    INTERRUPTED = 130
    BROKEN_PIPE = 141  # the reader of stdout went away (`| head`), as a process killed by SIGPIPE
    TERMINATED = 143


class PipolicyError(Exception):
    """Base of every expected error; its message is safe to show."""

    exit_code = ExitCode.ERROR
    kind = "error"


class StorageError(PipolicyError):
    kind = "storage"


class NotFound(PipolicyError):
    exit_code = ExitCode.NOT_FOUND
    kind = "not_found"


class InvalidInput(PipolicyError):
    """Bad input. `problems` holds one `row N: field: reason` line per fault."""

    exit_code = ExitCode.INVALID
    kind = "invalid_input"

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class UsageError(PipolicyError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class Incomplete(PipolicyError):
    """A document lacks what the law requires in it: a check found something."""

    exit_code = ExitCode.ATTENTION
    kind = "incomplete"


class Locked(PipolicyError):
    exit_code = ExitCode.LOCKED
    kind = "locked"


class NewerRegister(StorageError):
    """The register was written by a newer pipolicy; we must not touch it."""

    kind = "newer_register"
