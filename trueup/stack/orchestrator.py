"""`trueup stack up|down|status|pause|resume`: start the whole pipeline as supervised background processes."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connectors.config_providers import write_properties
from connectors.debezium_config import load_connector_config
from connectors.status import read_status
from streams.mapping import MappingError, catalog_problems, load_mapping
from streams.topics import catalog
from trueup.settings import CONFIG_ENV, Settings
from trueup.stack import broker, postgres
from trueup.stack.prerequisites import require_java, require_postgres
from trueup.stack.processes import alive, free_port, log_tail, port_open, spawn, stop
from trueup.stack.state import ProcessRecord, StackState


class StackError(RuntimeError):
    """The stack could not be brought up; the message carries the failing component's log tail."""


class Stack:
    """One stack rooted at settings.data_dir."""

    def __init__(self, settings: Settings, config_file: Path | None = None, echo=print,
                 child_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.extra_env = dict(child_env or {})
        self.data_dir = Path(settings.data_dir).resolve()
        # Children start in other folders: a relative TRUEUP_CONFIG they inherited would name nothing there.
        named = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
        self.config_file = named.resolve() if named else None
        self.echo = echo
        self.mapping = load_mapping(settings.mapping)
        self.sources = settings.enabled_sources
        self.db_sources = [s for s in self.sources if settings.has_database(s)]
        for name in self.sources:
            if name not in self.mapping.sources:
                raise StackError(f"source {name} is enabled in settings but missing from {settings.mapping}")

    # ---- paths -------------------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def connector_dir(self, source: str) -> Path:
        return self.data_dir / "connect" / source

    def state(self) -> StackState | None:
        return StackState.load(self.data_dir)

    # ---- postgres ----------------------------------------------------------------------------

    def _cluster(self, state: StackState) -> postgres.PrivateCluster | None:
        if state.postgres_home is None:
            return None
        return postgres.PrivateCluster(
            home=Path(state.postgres_home),
            port=state.postgres_port,
            user=self.settings.postgres.user,
            password=self._password(),
            bin_dir=self.settings.postgres.bin_dir,
        )

    def _password(self) -> str:
        path = self.secrets_dir / "postgres_password"
        if not path.exists():
            write_properties(path, {})
            path.write_text(postgres.new_password())
        return path.read_text().strip()

    def dsn(self, source: str, state: StackState | None = None) -> str:
        """A DSN usable as printed: the configured one, or the private cluster's."""
        configured = self.settings.sources[source].dsn
        if configured is not None:
            dsn = configured.get_secret_value()
            password_file = self.settings.sources[source].password_file
            if password_file is not None and "password" not in conninfo_to_dict(dsn):
                dsn = make_conninfo(dsn, password=Path(password_file).read_text().strip())
            return dsn
        state = state or self.state()
        cluster = self._cluster(state) if state else None
        if cluster is None:
            raise StackError("the private PostgreSQL cluster is not set up; run `trueup stack up`")
        return cluster.dsn(self.settings.database(source))

    def _connection_properties(self, source: str, state: StackState) -> dict[str, str]:
        parts = conninfo_to_dict(self.dsn(source, state))
        password = parts.get("password")
        return {
            "hostname": parts.get("host") or "127.0.0.1",
            "port": str(parts.get("port") or 5432),
            "user": parts.get("user") or "postgres",
            "password": password or "",
        }

    def _up_postgres(self, state: StackState) -> None:
        if all(self.settings.sources[s].dsn is not None for s in self.db_sources):
            state.postgres_home = None
            return
        home = postgres.cluster_home(self.data_dir)
        state.postgres_home = str(home)
        state.postgres_port = state.postgres_port or self.settings.postgres.port or free_port()
        cluster = self._cluster(state)
        if not cluster.initialised():
            self.echo(f"postgres: initdb into {cluster.pgdata}")
            cluster.init()
        if not cluster.running():
            cluster.start()
        self.echo(f"postgres: up on 127.0.0.1:{cluster.port}")
        for source in self.db_sources:
            if self.settings.sources[source].dsn is None:
                cluster.ensure_database(self.settings.database(source))

    def init_sources(self, state: StackState) -> None:
        """Schema, publication and slot for every source, before any connector starts (pollers need no slot)."""
        for source in self.db_sources:
            dsn = self.dsn(source, state)
            debezium = self.settings.sources[source].kind == "debezium"
            if debezium:
                postgres.require_logical_wal(dsn)
            applied = postgres.apply_schema(dsn, self.mapping.sources[source].system)
            spec = self.mapping.sources[source]
            problems = catalog_problems(source, spec, postgres.table_columns(dsn, spec.schema_))
            if problems:
                raise MappingError(f"{self.settings.mapping}: " + "; ".join(problems))
            if not debezium:
                self.echo(f"source {source}: {', '.join(applied) or 'schema current'}; polled by SQL")
                continue
            cfg = load_connector_config(self.settings.connector_config(source))
            postgres.ensure_publication_and_slot(dsn, cfg.publication, cfg.slot, self.mapping.sources[source].schema_)
            note = f"applied {', '.join(applied)}" if applied else "schema current"
            self.echo(f"source {source}: {note}; publication {cfg.publication}, slot {cfg.slot}")

    # ---- broker ------------------------------------------------------------------------------

    def _up_broker(self, state: StackState) -> bool:
        """Start the bundled broker unless Kafka is external; True when the broker is new (empty)."""
        if self.settings.kafka.bootstrap:
            state.bootstrap = self.settings.kafka.bootstrap
            state.broker = None
            broker.wait_ready(state.bootstrap)
            return False
        rec = state.broker or ProcessRecord()
        if alive(rec.pid) and rec.port and port_open("127.0.0.1", rec.port):
            state.bootstrap = f"127.0.0.1:{rec.port}"
            return False
        rec.port = rec.port if rec.port and not port_open("127.0.0.1", rec.port) else (
            self.settings.kafka.broker_port or free_port()
        )
        rec.log = str(self.logs / "broker.log")
        rec.pid = spawn(broker.broker_argv(rec.port), Path(rec.log))
        state.broker = rec
        state.bootstrap = f"127.0.0.1:{rec.port}"
        self._wait(lambda: port_open("127.0.0.1", rec.port), "broker", rec, 30)
        broker.wait_ready(state.bootstrap)
        self.echo(f"broker: up on {state.bootstrap} (memory storage)")
        return True

    def create_topics(self, state: StackState) -> None:
        specs = catalog(self.mapping, self.sources, self.settings.topics, self.settings.kafka.partitions,
                        self.settings.worker.app_id)
        created = broker.ensure_topics(state.bootstrap, specs, self.settings.kafka.replication_factor)
        self.echo(f"topics: {len(created)} created, {len(specs) - len(created)} already there")

    # ---- children ----------------------------------------------------------------------------

    def child_env(self, state: StackState) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env["TRUEUP_DATA_DIR"] = str(self.data_dir)
        env["TRUEUP_KAFKA__BOOTSTRAP"] = state.bootstrap
        env["TRUEUP_CONNECT__SECRETS_DIR"] = str(self.secrets_dir)
        env["TRUEUP_MAPPING"] = str(Path(self.settings.mapping).resolve())
        env["PYTHONUNBUFFERED"] = "1"
        if self.config_file:
            env["TRUEUP_CONFIG"] = str(self.config_file)
        for source in self.db_sources:
            env[f"TRUEUP_SOURCES__{source.upper()}__DSN"] = self.dsn(source, state)
        return env

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "trueup.cli", *args]

    def start_connector(self, state: StackState, source: str) -> None:
        rec = state.connectors.get(source) or ProcessRecord()
        if alive(rec.pid):
            return
        if self.settings.sources[source].kind == "debezium":
            write_properties(self.secrets_dir / f"{source}.properties", self._connection_properties(source, state))
        status_path = self.connector_dir(source) / "status.json"
        status_path.unlink(missing_ok=True)
        rec.log = str(self.logs / f"connect-{source}.log")
        rec.paused = False
        work_dir = self.connector_dir(source)
        work_dir.mkdir(parents=True, exist_ok=True)
        kind = self.settings.sources[source].kind
        rec.pid = spawn(
            self._cli("connect", kind, "--config", str(self.settings.connector_config(source).resolve())),
            Path(rec.log),
            env=self.child_env(state),
            cwd=work_dir,
        )
        state.connectors[source] = rec
        state.save()

    def wait_connector_streaming(self, state: StackState, source: str, timeout_s: float = 300) -> None:
        rec = state.connectors[source]
        status_path = self.connector_dir(source) / "status.json"

        def streaming() -> bool:
            status = read_status(status_path)
            return bool(status and status.get("phase") == "streaming")

        self._wait(streaming, f"connector {source}", rec, timeout_s)

    def start_worker(self, state: StackState, index: int) -> None:
        while len(state.workers) <= index:
            state.workers.append(ProcessRecord())
        rec = state.workers[index]
        if alive(rec.pid):
            return
        base = self.settings.api.port
        rec.port = rec.port or (base + index if base else free_port(self.settings.api.host))
        rec.log = str(self.logs / f"worker-{index}.log")
        rec.pid = spawn(
            self._cli("worker", "--index", str(index), "--web-port", str(rec.port)),
            Path(rec.log),
            env=self.child_env(state),
        )
        state.save()

    def worker_url(self, rec: ProcessRecord) -> str:
        host = "127.0.0.1" if self.settings.api.host in ("0.0.0.0", "") else self.settings.api.host
        return f"http://{host}:{rec.port}"

    def worker_health(self, rec: ProcessRecord) -> dict | None:
        request = urllib.request.Request(self.worker_url(rec) + "/health?scope=local")
        if self.settings.api.token is not None:
            request.add_header("Authorization", f"Bearer {self.settings.api.token.get_secret_value()}")
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def worker_ready(self, rec: ProcessRecord) -> bool:
        """Serving HTTP, holding partitions and done recovering its tables."""
        health = self.worker_health(rec)
        return bool(health and health.get("recovery") == "done" and health.get("partitions"))

    def _wait(self, ready, what: str, rec: ProcessRecord, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            if not alive(rec.pid):
                tail = "\n    ".join(log_tail(Path(rec.log)) if rec.log else [])
                raise StackError(f"{what} exited during start-up; last lines of {rec.log}:\n    {tail}")
            time.sleep(0.25)
        tail = "\n    ".join(log_tail(Path(rec.log)) if rec.log else [])
        raise StackError(f"{what} not ready after {timeout_s:.0f}s; last lines of {rec.log}:\n    {tail}")

    # ---- verbs -------------------------------------------------------------------------------

    def up(self, workers: int | None = None, before_connectors=None) -> StackState:
        """Bring everything up and return once snapshots are done and workers serve.

        before_connectors(stack, state), when given, runs after the sources are prepared and before any
        connector starts (tests use it to seed rows that must arrive through the initial snapshot).
        """
        require_java()
        if any(self.settings.sources[s].dsn is None for s in self.sources):
            require_postgres(self.settings.postgres.bin_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.state() or StackState(data_dir=str(self.data_dir))
        state.config_file = str(self.config_file) if self.config_file else None
        count = self.settings.worker.count if workers is None else workers
        try:
            self._up_postgres(state)
            state.save()
            fresh_broker = self._up_broker(state)
            state.save()
            if fresh_broker:
                self._forget_derived_state(state)
            self.init_sources(state)
            self.create_topics(state)
            if before_connectors is not None:
                before_connectors(self, state)
            for source in self.sources:
                self.start_connector(state, source)
            for source in self.sources:
                self.wait_connector_streaming(state, source)
                self.echo(f"connector {source}: streaming")
            for index in range(count):
                self.start_worker(state, index)
            for index in range(count):
                rec = state.workers[index]
                self._wait(lambda r=rec: self.worker_ready(r), f"worker {index}", rec, 180)
                self.echo(f"worker {index}: serving on {self.worker_url(rec)}")
            state.save()
        except BaseException:
            self.echo("stack up failed; stopping what was started")
            self.down()
            raise
        return state

    def _forget_derived_state(self, state: StackState) -> None:
        """A new memory broker holds no topics, so re-snapshot the sources and rebuild worker tables."""
        for source in self.sources:
            shutil.rmtree(self.connector_dir(source), ignore_errors=True)
        for worker_dir in self.data_dir.glob("worker-*"):
            shutil.rmtree(worker_dir, ignore_errors=True)

    def down(self) -> None:
        """Stop every process the stack started; leave data on disk."""
        state = self.state()
        if state is None:
            return
        for rec in state.workers:
            stop(rec.pid, timeout=20)
        for rec in state.connectors.values():
            stop(rec.pid, timeout=30)
        if state.broker is not None:
            stop(state.broker.pid, timeout=10)
        cluster = self._cluster(state)
        if cluster is not None:
            try:
                cluster.stop()
            except postgres.PostgresError:
                stop(cluster.pid(), group=False)
        for rec in [*state.workers, *state.connectors.values()] + ([state.broker] if state.broker else []):
            rec.pid = None
        state.workers = []
        state.save()

    def pause(self, source: str) -> None:
        state = self._require_state()
        rec = state.connectors.get(self._known(source))
        if rec is None:
            raise StackError(f"connector {source} was never started")
        stop(rec.pid, timeout=30)
        rec.pid, rec.paused = None, True
        state.save()

    def resume(self, source: str) -> None:
        state = self._require_state()
        self.start_connector(state, self._known(source))
        self.wait_connector_streaming(state, source)

    def _known(self, source: str) -> str:
        if source not in self.sources:
            raise StackError(f"unknown source {source!r}; known: {', '.join(self.sources)}")
        return source

    def _require_state(self) -> StackState:
        state = self.state()
        if state is None:
            raise StackError(f"no stack in {self.data_dir}; run `trueup stack up` first")
        return state

    # ---- status ------------------------------------------------------------------------------

    def status(self) -> dict:
        """The object `trueup stack status --json` prints (contract in DESIGN.md)."""
        state = self.state() or StackState(data_dir=str(self.data_dir))
        components: list[dict] = []
        dsns: dict[str, str | None] = {}
        for source in self.db_sources:
            try:
                dsns[source] = self.dsn(source, state)
            except StackError:
                dsns[source] = None

        cluster = self._cluster(state)
        if cluster is not None:
            up = cluster.running()
            components.append({"name": "postgres", "state": "up" if up else "down",
                               "url": f"postgresql://127.0.0.1:{cluster.port}", "data": str(cluster.pgdata),
                               **({} if up else {"log_tail": log_tail(cluster.log_path, 10)})})
        if state.broker is not None:
            components.append(self._process_component("broker", state.broker, f"kafka://{state.bootstrap}"))
        for source in self.sources:
            rec = state.connectors.get(source)
            if rec is not None:
                components.append(self._connector_component(source, rec, dsns.get(source)))
        api_url = None
        for index, rec in enumerate(state.workers):
            comp = self._process_component(f"worker-{index}", rec, self.worker_url(rec))
            if comp["state"] == "up":
                health = self.worker_health(rec)
                if health is None:
                    comp["state"] = "starting"
                else:
                    comp["partitions"] = health.get("partitions")
                    comp["recovery"] = health.get("recovery")
            if index == 0 and rec.pid:
                api_url = self.worker_url(rec)
            components.append(comp)
        return {
            "kafka": {"bootstrap": state.bootstrap},
            "postgres": dsns,
            "api": {"url": api_url},
            "components": components,
        }

    def _process_component(self, name: str, rec: ProcessRecord, url: str | None) -> dict:
        comp: dict = {"name": name, "pid": rec.pid, "url": url, "log": rec.log}
        if alive(rec.pid):
            comp["state"] = "up"
        elif rec.pid is None or rec.paused:
            comp["state"] = "down"
        else:
            comp["state"] = "failed"
            comp["log_tail"] = log_tail(Path(rec.log)) if rec.log else []
        return comp

    def _connector_component(self, source: str, rec: ProcessRecord, dsn: str | None) -> dict:
        comp = self._process_component(f"connector-{source}", rec, None)
        comp["source"] = source
        comp["paused"] = rec.paused
        status = read_status(self.connector_dir(source) / "status.json") or {}
        phase = status.get("phase", "starting")
        comp["phase"] = phase
        if comp["state"] == "up" and phase in ("starting", "snapshot"):
            comp["state"] = "starting"
        comp["records"] = status.get("records", 0)
        comp["metrics_url"] = status.get("metrics_url")
        ts = status.get("last_event_time_ms")
        comp["last_event_time"] = (
            datetime.fromtimestamp(ts / 1000, tz=timezone.utc).isoformat() if isinstance(ts, int) else None
        )
        if self.settings.sources[source].kind != "debezium":
            comp["kind"] = self.settings.sources[source].kind
            comp["cursors"] = status.get("cursors") or {}
            last_poll = status.get("last_poll_at")
            comp["last_poll"] = (datetime.fromtimestamp(last_poll, tz=timezone.utc).isoformat()
                                 if isinstance(last_poll, (int, float)) else None)
            comp["rows_per_poll"] = status.get("rows_per_poll")
            comp["errors"] = status.get("errors", 0)
            comp["last_error"] = status.get("error")
            return comp
        comp["slot_lag_bytes"] = None
        if dsn:
            try:
                cfg = load_connector_config(self.settings.connector_config(source))
                comp["slot_lag_bytes"] = postgres.slot_lag_bytes(dsn, cfg.slot)
            except Exception as exc:  # a down database must not break status
                comp["slot_error"] = str(exc).splitlines()[0]
        return comp
