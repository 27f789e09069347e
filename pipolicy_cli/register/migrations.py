"""Schema changes as an ordered list of small functions.

Each runs in its own write transaction and is recorded in `migrations` with
its UTC time and an audit event. A register that records a migration this
version does not know was written by a newer pipolicy and is left untouched.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

Migration = Callable[[sqlite3.Connection], None]


def m001_foundation(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS migrations (
            name TEXT PRIMARY KEY,
            applied_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute(
        """CREATE TABLE config (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) STRICT"""
    )
    # The event's canonical bytes are the record; the other columns are read
    # out of them, so there is nothing to keep in step and nothing unhashed.
    conn.execute(
        """CREATE TABLE audit_events (
            seq INTEGER PRIMARY KEY,
            event TEXT NOT NULL,
            hash TEXT NOT NULL,
            at TEXT GENERATED ALWAYS AS (json_extract(event, '$.at')) VIRTUAL,
            actor TEXT GENERATED ALWAYS AS (json_extract(event, '$.actor')) VIRTUAL,
            command TEXT GENERATED ALWAYS AS (json_extract(event, '$.command')) VIRTUAL,
            action TEXT GENERATED ALWAYS AS (json_extract(event, '$.action')) VIRTUAL,
            object TEXT GENERATED ALWAYS AS (json_extract(event, '$.object')) VIRTUAL,
            object_key INTEGER GENERATED ALWAYS AS (json_extract(event, '$.key')) VIRTUAL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX audit_events_at ON audit_events(at)")


def m002_users(conn: sqlite3.Connection) -> None:
    # Empty values are NULL, so UNIQUE holds only among people who have one.
    # What was given is stored as given; the effective birth date and sex come
    # from the resident ID number when not given (characters 7-14, and the 17th:
    # odd for men), so nothing derived can go stale when the ID is corrected.
    conn.execute(
        """CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            user_id TEXT NOT NULL UNIQUE,
            name TEXT,
            gender TEXT CHECK (gender IN ('male', 'female')),
            birth_date TEXT,
            address TEXT,
            phone TEXT UNIQUE,
            email TEXT UNIQUE COLLATE NOCASE,
            id_number TEXT UNIQUE,
            contact TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
            created_at TEXT NOT NULL,
            updated_at TEXT,
            cancelled_at TEXT,
            born TEXT GENERATED ALWAYS AS (
                coalesce(birth_date, CASE WHEN length(id_number) = 18 THEN
                    substr(id_number, 7, 4) || '-' || substr(id_number, 11, 2) || '-' || substr(id_number, 13, 2)
                END)
            ) VIRTUAL,
            sex TEXT GENERATED ALWAYS AS (
                coalesce(gender, CASE WHEN length(id_number) = 18 THEN
                    CASE WHEN CAST(substr(id_number, 17, 1) AS INTEGER) % 2 = 1 THEN 'male' ELSE 'female' END
                END)
            ) VIRTUAL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX users_created_at ON users(created_at)")
    conn.execute("CREATE INDEX users_born ON users(born)")


def m003_consents(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE policy_versions (
            id INTEGER PRIMARY KEY,
            version TEXT NOT NULL UNIQUE,
            effective_at TEXT NOT NULL,
            changes TEXT NOT NULL DEFAULT '',
            reduces_rights INTEGER NOT NULL DEFAULT 0 CHECK (reduces_rights IN (0, 1)),
            summary TEXT,
            created_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX policy_versions_effective_at ON policy_versions(effective_at)")
    # Append-only: a withdrawal is a new row, never an edit of the grant.
    conn.execute(
        """CREATE TABLE consents (
            id INTEGER PRIMARY KEY,
            user_key INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            code TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('grant', 'withdraw')),
            at TEXT NOT NULL,
            method TEXT,
            evidence TEXT,
            signal TEXT CHECK (signal IN ('dnt', 'gpc')),
            guardian_name TEXT,
            guardian_relation TEXT,
            written_consent TEXT,
            policy_version TEXT,
            recorded_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX consents_user_code_at ON consents(user_key, code, at)")


def m004_inventory_access(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE systems (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'internal' CHECK (kind IN ('internal', 'processor')),
            owner TEXT,
            country TEXT,
            contract TEXT,
            created_at TEXT NOT NULL
        ) STRICT"""
    )
    # What is held about whom and where; `value` only where the register itself keeps it.
    conn.execute(
        """CREATE TABLE data_items (
            id INTEGER PRIMARY KEY,
            user_key INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            system_key INTEGER NOT NULL REFERENCES systems(id),
            category TEXT NOT NULL,
            field TEXT NOT NULL,
            source TEXT NOT NULL,
            collected_at TEXT NOT NULL,
            value TEXT,
            recorded_at TEXT NOT NULL,
            UNIQUE (user_key, system_key, category, field)
        ) STRICT"""
    )
    conn.execute("CREATE INDEX data_items_system ON data_items(system_key)")
    conn.execute("CREATE INDEX data_items_category_collected ON data_items(category, collected_at)")
    # Every use of a person's data. The person's link is cleared, not the row,
    # when a legal floor keeps the log after the person is erased.
    conn.execute(
        """CREATE TABLE access_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            user_key INTEGER REFERENCES users(id) ON DELETE SET NULL,
            categories TEXT NOT NULL,
            purpose TEXT NOT NULL,
            action TEXT NOT NULL,
            basis TEXT NOT NULL,
            source TEXT,
            event_id TEXT,
            recorded_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX access_log_user_at ON access_log(user_key, at)")
    conn.execute("CREATE INDEX access_log_at ON access_log(at)")
    conn.execute("CREATE UNIQUE INDEX access_log_source_event ON access_log(source, event_id) WHERE event_id IS NOT NULL")


def m005_requests(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            user_key INTEGER REFERENCES users(id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('access', 'copy', 'portability', 'correction', 'deletion',
                                              'withdrawal', 'cancellation', 'explanation')),
            ground TEXT,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'verified', 'completed', 'rejected')),
            received_at TEXT NOT NULL,
            via TEXT,
            for_deceased INTEGER NOT NULL DEFAULT 0 CHECK (for_deceased IN (0, 1)),
            requester TEXT,
            relation TEXT,
            due_on TEXT NOT NULL,
            acknowledge_by TEXT,
            extended_due_on TEXT,
            extension_reason TEXT,
            verified_at TEXT,
            verified_by TEXT,
            verify_method TEXT,
            closed_at TEXT,
            closed_by TEXT,
            reason TEXT,
            created_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX requests_user ON requests(user_key)")
    conn.execute("CREATE INDEX requests_status_due ON requests(status, due_on)")


def m006_erasure_backups(conn: sqlite3.Connection) -> None:
    # A tombstone keeps only HMACs of the erased person's identifiers, under the
    # key kept outside the register, so a restored backup can be cleaned again.
    conn.execute(
        """CREATE TABLE erasures (
            id INTEGER PRIMARY KEY,
            erased_at TEXT NOT NULL,
            request_id INTEGER,
            identifiers TEXT NOT NULL,
            scrub_pending INTEGER NOT NULL DEFAULT 1 CHECK (scrub_pending IN (0, 1)),
            scrubbed_at TEXT
        ) STRICT"""
    )
    conn.execute("CREATE INDEX erasures_scrub_pending ON erasures(scrub_pending) WHERE scrub_pending = 1")
    # Records a legal floor keeps after the person is erased: de-identified and restricted to storage.
    conn.execute("ALTER TABLE access_log ADD COLUMN restricted_at TEXT")
    conn.execute("ALTER TABLE requests ADD COLUMN restricted_at TEXT")
    conn.execute(
        """CREATE TABLE backups (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            size INTEGER NOT NULL,
            deleted_at TEXT
        ) STRICT"""
    )


def m007_tasks(conn: sqlite3.Connection) -> None:
    # One row per system that must act on a verified request (or on a retention
    # rule the sweep applied: then request_id is NULL). The payload (the
    # identifiers the system needs, what it holds) lives only while the request
    # is open: closing the request clears it.
    conn.execute(
        """CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            request_id INTEGER REFERENCES requests(id) ON DELETE CASCADE,
            system_key INTEGER NOT NULL REFERENCES systems(id),
            action TEXT NOT NULL CHECK (action IN ('delete', 'correct', 'copy', 'port', 'deidentify', 'restrict')),
            state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'pulled', 'done', 'failed', 'cancelled')),
            payload TEXT,
            created_at TEXT NOT NULL,
            pulled_at TEXT,
            pulls INTEGER NOT NULL DEFAULT 0,
            closed_at TEXT,
            note TEXT,
            UNIQUE (request_id, system_key)
        ) STRICT"""
    )
    conn.execute("CREATE INDEX tasks_system_state ON tasks(system_key, state)")
    conn.execute("CREATE INDEX tasks_state ON tasks(state) WHERE state IN ('open', 'pulled', 'failed')")
    conn.execute("ALTER TABLE requests ADD COLUMN tasks_override TEXT")


def m008_retention(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE retention_rules (
            id INTEGER PRIMARY KEY,
            target_kind TEXT NOT NULL CHECK (target_kind IN ('category', 'table')),
            target TEXT NOT NULL,
            keep TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('delete', 'deidentify', 'restrict')),
            basis TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT,
            UNIQUE (target_kind, target)
        ) STRICT"""
    )
    # One row per sweep; counts are added in the same transaction as each batch,
    # so a sweep killed half-way is resumed without counting anything twice.
    conn.execute(
        """CREATE TABLE sweeps (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            as_of TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('running', 'done', 'stopped', 'failed')),
            stop_reason TEXT,
            resumed INTEGER NOT NULL DEFAULT 0,
            counts TEXT NOT NULL DEFAULT '{}',
            attention TEXT NOT NULL DEFAULT '[]',
            actor TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute("CREATE INDEX sweeps_state ON sweeps(state, finished_at)")
    conn.execute("ALTER TABLE tasks ADD COLUMN rule_id INTEGER REFERENCES retention_rules(id) ON DELETE SET NULL")
    # De-identifying an inventory item cuts its link to the person: user_key becomes nullable.
    conn.execute(
        """CREATE TABLE data_items_new (
            id INTEGER PRIMARY KEY,
            user_key INTEGER REFERENCES users(id) ON DELETE CASCADE,
            system_key INTEGER NOT NULL REFERENCES systems(id),
            category TEXT NOT NULL,
            field TEXT NOT NULL,
            source TEXT NOT NULL,
            collected_at TEXT NOT NULL,
            value TEXT,
            recorded_at TEXT NOT NULL,
            deidentified_at TEXT,
            restricted_at TEXT,
            UNIQUE (user_key, system_key, category, field)
        ) STRICT"""
    )
    conn.execute(
        """INSERT INTO data_items_new (id, user_key, system_key, category, field, source, collected_at, value, recorded_at)
           SELECT id, user_key, system_key, category, field, source, collected_at, value, recorded_at FROM data_items"""
    )
    conn.execute("DROP TABLE data_items")
    conn.execute("ALTER TABLE data_items_new RENAME TO data_items")
    conn.execute("CREATE INDEX data_items_system ON data_items(system_key)")
    conn.execute("CREATE INDEX data_items_category_collected ON data_items(category, collected_at)")


def m009_breaches(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE breaches (
            id INTEGER PRIMARY KEY,
            summary TEXT NOT NULL,
            cause TEXT,
            categories TEXT,
            affected_count INTEGER,
            harm TEXT,
            measures TEXT,
            advice TEXT,
            remedies TEXT,
            contact TEXT,
            cii INTEGER NOT NULL DEFAULT 0 CHECK (cii IN (0, 1)),
            grade TEXT,
            detected_at TEXT NOT NULL,
            occurred_at TEXT,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            closed_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT
        ) STRICT"""
    )
    # Reports to authorities, one row per clock stopped.
    conn.execute(
        """CREATE TABLE breach_reports (
            id INTEGER PRIMARY KEY,
            breach_id INTEGER NOT NULL REFERENCES breaches(id) ON DELETE CASCADE,
            clock TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            late_reason TEXT,
            recorded_at TEXT NOT NULL,
            UNIQUE (breach_id, clock)
        ) STRICT"""
    )
    # Who was affected (erasure cuts the link, so the incident's count stays), and who
    # was told when and how (the person's own rows, gone with them).
    conn.execute(
        """CREATE TABLE breach_users (
            id INTEGER PRIMARY KEY,
            breach_id INTEGER NOT NULL REFERENCES breaches(id) ON DELETE CASCADE,
            user_key INTEGER REFERENCES users(id) ON DELETE SET NULL,
            categories TEXT,
            added_at TEXT NOT NULL,
            restricted_at TEXT,
            UNIQUE (breach_id, user_key)
        ) STRICT"""
    )
    conn.execute("CREATE INDEX breach_users_user ON breach_users(user_key)")
    conn.execute(
        """CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            breach_id INTEGER NOT NULL REFERENCES breaches(id) ON DELETE CASCADE,
            user_key INTEGER REFERENCES users(id) ON DELETE CASCADE,
            channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'letter', 'push')),
            sent_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            restricted_at TEXT,
            UNIQUE (breach_id, user_key, channel)
        ) STRICT"""
    )
    conn.execute("CREATE INDEX notifications_user ON notifications(user_key)")


def m010_sharing(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE recipients (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL CHECK (kind IN ('affiliate', 'partner', 'processor', 'acquirer', 'authority')),
            agreement TEXT,
            agreement_date TEXT,
            country TEXT,
            contact TEXT,
            created_at TEXT NOT NULL
        ) STRICT"""
    )
    conn.execute(
        """CREATE TABLE pias (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            covers TEXT NOT NULL,
            conclusion TEXT NOT NULL,
            file_path TEXT,
            file_sha256 TEXT,
            done_on TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) STRICT"""
    )
    # Each provision of data is also an access event (action share, transfer or
    # disclose), so `access violations` judges it at query time with the rest.
    # access_id is a plain link, not a foreign key: with one, every access event
    # the sweep deletes would cost three child-table lookups (the sweep ran 3x
    # slower), and a provision whose event has gone is simply no longer judged.
    common = """id INTEGER PRIMARY KEY,
            access_id INTEGER,
            user_key INTEGER REFERENCES users(id) ON DELETE SET NULL,
            categories TEXT NOT NULL,
            purpose TEXT NOT NULL,
            pia_id INTEGER REFERENCES pias(id),
            at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            restricted_at TEXT"""
    conn.execute(f"""CREATE TABLE shares ({common},
            recipient_id INTEGER NOT NULL REFERENCES recipients(id)) STRICT""")
    conn.execute(f"""CREATE TABLE transfers ({common},
            recipient_id INTEGER NOT NULL REFERENCES recipients(id),
            country TEXT NOT NULL,
            mechanism TEXT NOT NULL CHECK (mechanism IN ('security-assessment', 'standard-contract', 'certification', 'exempt')),
            sensitive INTEGER NOT NULL DEFAULT 0 CHECK (sensitive IN (0, 1))) STRICT""")
    conn.execute(f"""CREATE TABLE disclosures ({common},
            channel TEXT) STRICT""")
    for table in ("shares", "transfers", "disclosures"):
        conn.execute(f"CREATE INDEX {table}_access ON {table}(access_id)")
        conn.execute(f"CREATE INDEX {table}_user ON {table}(user_key)")
    conn.execute("CREATE INDEX transfers_at ON transfers(at)")
    conn.execute(
        """CREATE TABLE assignments (
            id INTEGER PRIMARY KEY,
            recipient_id INTEGER NOT NULL REFERENCES recipients(id),
            reason TEXT NOT NULL CHECK (reason IN ('merger', 'acquisition', 'bankruptcy')),
            keeps_policy INTEGER NOT NULL CHECK (keeps_policy IN (0, 1)),
            at TEXT NOT NULL,
            recorded_at TEXT NOT NULL
        ) STRICT"""
    )


def m011_consent_source(conn: sqlite3.Connection) -> None:
    # Consents piped in from other systems name where they came from; a resent one is recognised by the pair.
    conn.execute("ALTER TABLE consents ADD COLUMN source TEXT")
    conn.execute("ALTER TABLE consents ADD COLUMN event_id TEXT")
    conn.execute("CREATE UNIQUE INDEX consents_source_event ON consents(source, event_id) WHERE event_id IS NOT NULL")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("001_foundation", m001_foundation),
    ("002_users", m002_users),
    ("003_consents", m003_consents),
    ("004_inventory_access", m004_inventory_access),
    ("005_requests", m005_requests),
    ("006_erasure_backups", m006_erasure_backups),
    ("007_tasks", m007_tasks),
    ("008_retention", m008_retention),
    ("009_breaches", m009_breaches),
    ("010_sharing", m010_sharing),
    ("011_consent_source", m011_consent_source),
]

KNOWN = [name for name, _ in MIGRATIONS]


def applied(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]


def pending(done: list[str]) -> list[tuple[str, Migration]]:
    return [(name, step) for name, step in MIGRATIONS if name not in done]


def unknown(done: list[str]) -> list[str]:
    return [name for name in done if name not in KNOWN]
