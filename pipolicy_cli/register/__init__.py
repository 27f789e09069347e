"""The register: one SQLite file, its migrations, its one write path and audit chain."""

from pipolicy_cli.register.store import Register, Transaction

__all__ = ["Register", "Transaction"]
