"""The sources' PostgreSQL: a private cluster started as the postgres user, or an existing server by DSN."""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from trueup.stack.processes import alive

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_ROOT = PROJECT_ROOT / "sql"
PG_OS_USER = "postgres"


class PostgresError(RuntimeError):
    """PostgreSQL could not be started or prepared; the message says what to do."""


def find_binary(name: str, bin_dir: Path | None) -> str:
    """Path of a PostgreSQL server binary, from bin_dir, PATH or Debian's versioned folders."""
    candidates = [bin_dir / name] if bin_dir else []
    found = shutil.which(name)
    if found:
        candidates.append(Path(found))
    candidates += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise PostgresError(
        f"PostgreSQL server binary {name!r} not found. Install PostgreSQL 15+: "
        "on Debian/Ubuntu `sudo apt-get install -y postgresql`, on macOS `brew install postgresql@15` "
        "(or set TRUEUP_POSTGRES__BIN_DIR)"
    )


def _as_postgres(argv: list[str]) -> list[str]:
    """The server refuses root, so root runs its binaries as the postgres user."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", PG_OS_USER, "--"] + argv


def _postgres_can_enter(folder: Path) -> bool:
    if os.geteuid() != 0:
        return True
    result = subprocess.run(_as_postgres(["test", "-x", str(folder)]), capture_output=True)
    return result.returncode == 0


def cluster_home(data_dir: Path) -> Path:
    """Where the private cluster lives: under data_dir when postgres may traverse it, else under the temp folder."""
    wanted = data_dir.resolve() / "pg"
    probe = wanted.parent
    while not probe.exists():
        probe = probe.parent
    if _postgres_can_enter(probe):
        return wanted
    digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"trueup-pg-{digest}"


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of our own: initdb once, logical WAL, loopback only."""

    home: Path
    port: int
    user: str
    password: str
    bin_dir: Path | None = None

    @property
    def pgdata(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "sock"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def dsn(self, database: str) -> str:
        return f"postgresql://{quote(self.user)}:{quote(self.password)}@127.0.0.1:{self.port}/{quote(database)}"

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(_as_postgres(argv), capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(argv[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.home / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            pg = pwd.getpwnam(PG_OS_USER)
            for path in (self.home, self.socket_dir, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        os.chmod(self.home, 0o700)
        os.chmod(pwfile, 0o600)
        try:
            self._run([
                find_binary("initdb", self.bin_dir), "-D", str(self.pgdata), "-U", self.user,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
            ])
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# trueup private cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "wal_level = logical\n"
                "max_replication_slots = 10\n"
                "max_wal_senders = 10\n"
            )

    def start(self) -> None:
        self._run([
            find_binary("pg_ctl", self.bin_dir), "-D", str(self.pgdata), "-l", str(self.log_path),
            "-o", f"-p {self.port}", "-w", "-t", "60", "start",
        ])

    def stop(self, mode: str = "fast", exit_wait_s: float = 10.0) -> None:
        """Stop the server and return once its postmaster has exited.

        pg_ctl's wait ends when postmaster.pid is removed, a moment before the postmaster exits.
        """
        pid = self.pid()
        if not alive(pid):
            return
        self._run([find_binary("pg_ctl", self.bin_dir), "-D", str(self.pgdata), "-m", mode, "-w", "stop"])
        deadline = time.monotonic() + exit_wait_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        return alive(self.pid())

    def ensure_database(self, database: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def new_password() -> str:
    return secrets.token_urlsafe(18)


def require_logical_wal(dsn: str) -> None:
    """Refuse a server that cannot feed logical replication."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        level = conn.execute("SHOW wal_level").fetchone()[0]
    if level != "logical":
        raise PostgresError(
            f"PostgreSQL server has wal_level={level}; trueup needs wal_level=logical "
            "(set it in postgresql.conf and restart the server)"
        )


def migration_files(system: str) -> list[Path]:
    """sql/common/ (control objects every source has) first, then the system's own files, each in order."""
    files = []
    for folder in ("common", system):
        files += sorted((SQL_ROOT / folder).glob("[0-9][0-9][0-9]_*.sql"))
    return files


def apply_schema(dsn: str, system: str) -> list[str]:
    """Apply sql/<system>/NNN_*.sql not yet recorded in trueup.schema_migrations; return what was applied."""
    applied: list[str] = []
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS trueup")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS trueup.schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.commit()
        for path in migration_files(system):
            version = f"{path.parent.name}/{path.name}"
            with conn.transaction():
                # Serialise concurrent appliers (two stacks, a worker and the CLI) on the same database.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('trueup.schema_migrations'))")
                done = conn.execute("SELECT 1 FROM trueup.schema_migrations WHERE version = %s", (version,)).fetchone()
                if done:
                    continue
                conn.execute(path.read_text())
                conn.execute("INSERT INTO trueup.schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
    return applied


def ensure_publication_and_slot(dsn: str, publication: str, slot: str, schema: str = "public") -> None:
    """Create the connector's publication and logical slot up front, before any connector snapshots."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        has_pub = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,)).fetchone()
        if not has_pub:
            conn.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA {}").format(
                    sql.Identifier(publication), sql.Identifier(schema)
                )
            )
        has_slot = conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if not has_slot:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))


def slot_lag_bytes(dsn: str, slot: str) -> int | None:
    """WAL bytes the slot's consumer has not confirmed yet (None when the slot is missing)."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return None if row is None else row[0]


def table_columns(dsn: str, schema: str) -> dict[str, dict[str, str]]:
    """{table: {column: data type}} of one schema, for checking the mapping against the live database."""
    out: dict[str, dict[str, str]] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = %s",
            (schema,),
        ).fetchall()
    for table, column, data_type in rows:
        out.setdefault(table, {})[column] = data_type
    return out
