"""The process title shows the command, never its values.

Any user of the machine can read a process's arguments (`ps`, `top`,
/proc/PID/cmdline), and pipolicy's arguments can be personal values
(`user add U1 --name 张三`, `user show 138... --by phone`). The first thing
pipolicy does is to rewrite its title to the command's words and
`[redacted]`: `pipolicy user add [redacted]`. Until then (a few
milliseconds) the arguments are visible: a value given as `-` is read from
stdin and is never visible at all.

This runs before typer is imported, so the command words are listed here; a
test keeps them equal to the command tree.
"""

COMMANDS = {
    group: frozenset(words.split())
    for group, words in {
        "": "init status quickstart export erase report completion config user policy consent system data access "
            "request task backup retention breach recipient share transfer disclose pia audit",
        "config": "show set",
        "user": "add show list update cancel import",
        "policy": "purposes categories scopes bases notify-list reconsent-list version",
        "policy version": "add list",
        "consent": "grant withdraw import history list check minors",
        "system": "add list",
        "data": "add list import",
        "access": "log import list violations",
        "request": "open list show verify extend reject complete",
        "task": "list pull done fail",
        "backup": "create list expire restore replay",
        "retention": "sweep history rule",
        "retention rule": "set list remove",
        "breach": "open update show list close affected mark-sent draft",
        "recipient": "add list assign",
        "share": "log list",
        "transfer": "log list thresholds",
        "disclose": "log list",
        "pia": "add list",
        "audit": "list verify head",
    }.items()
}
HARMLESS = {"-h", "--help"}


def title(argv: list[str]) -> str | None:
    """`pipolicy` and the command's words, then `[redacted]` for the rest; None when there is no rest."""
    words: list[str] = []
    while len(words) < len(argv) and argv[len(words)] in COMMANDS.get(" ".join(words), ()):
        words.append(argv[len(words)])
    rest = argv[len(words):]
    if not rest or set(rest) <= HARMLESS:
        return None
    return " ".join(["pipolicy", *words, "[redacted]"])


def hide_arguments(argv: list[str]) -> None:
    redacted = title(argv)
    if redacted is not None:
        from setproctitle import setproctitle

        setproctitle(redacted)  # rewrites the memory /proc/PID/cmdline reads, and the name in /proc/PID/comm
