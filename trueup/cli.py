"""The `trueup` command line: stack, connectors, workers and the demo."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from trueup.settings import CONFIG_ENV, Settings, SettingsError, load_settings


class Context:
    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file)
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from None
        return self._settings

    def bootstrap(self) -> str:
        """Kafka from settings, else the running stack's broker."""
        if self.settings.kafka.bootstrap:
            return self.settings.kafka.bootstrap
        from trueup.stack.state import StackState

        state = StackState.load(Path(self.settings.data_dir).resolve())
        if state is None or not state.bootstrap:
            raise click.ClickException("no Kafka: set TRUEUP_KAFKA__BOOTSTRAP or run `trueup stack up`")
        return state.bootstrap

    def api_url(self) -> str:
        """The running stack's worker 0 API URL."""
        from trueup.stack.state import StackState

        state = StackState.load(Path(self.settings.data_dir).resolve())
        workers = state.workers if state else []
        if not workers or not workers[0].port:
            raise click.ClickException("no API: pass --url or run `trueup stack up`")
        host = "127.0.0.1" if self.settings.api.host in ("0.0.0.0", "") else self.settings.api.host
        return f"http://{host}:{workers[0].port}"

    def stack(self):
        from streams.mapping import MappingError
        from trueup.stack.orchestrator import Stack

        try:
            return Stack(self.settings, self.config_file)
        except MappingError as exc:
            raise click.ClickException(str(exc)) from None


def _fail_cleanly(fn):
    """Turn the stack's own errors into one clear line instead of a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from connectors.config_providers import PlaceholderError
        from connectors.debezium_config import ConnectorConfigError
        from streams.mapping import MappingError
        from trueup.stack.broker import BrokerError
        from trueup.stack.orchestrator import StackError
        from trueup.stack.postgres import PostgresError
        from trueup.stack.prerequisites import PrerequisiteError

        try:
            return fn(*args, **kwargs)
        except (StackError, PostgresError, BrokerError, PrerequisiteError, ConnectorConfigError,
                PlaceholderError, MappingError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_file", type=click.Path(path_type=Path), envvar="TRUEUP_CONFIG",
              help="TOML settings file (environment variables TRUEUP_* override it).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """trueup: keep CRM, billing and ERP consistent from their change streams."""
    ctx.obj = Context(config_file)


# ---- stack ------------------------------------------------------------------------------------


@cli.group()
def stack() -> None:
    """Start, inspect and stop the local pipeline (PostgreSQL, broker, connectors, workers)."""


@stack.command("up")
@click.option("--workers", type=click.IntRange(1, 16), default=None, help="Number of workers (default from settings).")
@click.pass_obj
@_fail_cleanly
def stack_up(obj: Context, workers: int | None) -> None:
    """Start everything in the background; return once snapshots are done and workers serve."""
    s = obj.stack()
    s.up(workers=workers)
    _print_status(s.status())


@stack.command("down")
@click.pass_obj
@_fail_cleanly
def stack_down(obj: Context) -> None:
    """Stop every process the stack started (data stays on disk)."""
    obj.stack().down()
    click.echo("stack down")


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object for tools.")
@click.pass_obj
@_fail_cleanly
def stack_status(obj: Context, as_json: bool) -> None:
    """Show each component: state, address, and per connector its phase, last event and slot lag."""
    status = obj.stack().status()
    if as_json:
        click.echo(json.dumps(status))
    else:
        _print_status(status)


@stack.command("pause")
@click.argument("source")
@click.pass_obj
@_fail_cleanly
def stack_pause(obj: Context, source: str) -> None:
    """Stop one source's connector (its slot keeps the WAL until resume)."""
    obj.stack().pause(source)
    click.echo(f"connector {source} paused")


@stack.command("resume")
@click.argument("source")
@click.pass_obj
@_fail_cleanly
def stack_resume(obj: Context, source: str) -> None:
    """Restart one source's connector from its stored offsets."""
    obj.stack().resume(source)
    click.echo(f"connector {source} streaming")


def _print_status(status: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trueup stack")
    for col in ("component", "state", "address", "detail"):
        table.add_column(col)
    for comp in status["components"]:
        detail = []
        if "kind" in comp:  # a poller
            cursors = ", ".join(f"{k}@{v}" for k, v in (comp.get("cursors") or {}).items()) or "-"
            detail.append(f"{comp['kind']} phase={comp['phase']} last_poll={comp.get('last_poll') or '-'}")
            detail.append(f"rows/poll={comp.get('rows_per_poll')} errors={comp.get('errors')} cursor={cursors}")
        elif "phase" in comp:
            detail.append(f"phase={comp['phase']}")
            detail.append(f"last_event={comp.get('last_event_time') or '-'}")
            detail.append(f"slot_lag={comp.get('slot_lag_bytes')}B")
        if comp.get("partitions") is not None:
            detail.append(f"partitions={len(comp['partitions'])} recovery={comp.get('recovery')}")
        if comp.get("log_tail"):
            detail.append("log: " + " | ".join(comp["log_tail"][-3:]))
        table.add_row(comp["name"], comp["state"], comp.get("url") or "", " ".join(detail))
    console = Console()
    console.print(table)
    console.print(f"kafka: {status['kafka']['bootstrap']}   api: {status['api']['url']}")
    for source, dsn in status["postgres"].items():
        console.print(f"{source}: {dsn}")


# ---- sources ----------------------------------------------------------------------------------


@cli.group()
def sources() -> None:
    """Prepare the systems of record."""


@sources.command("init")
@click.pass_obj
@_fail_cleanly
def sources_init(obj: Context) -> None:
    """Apply the versioned schema and create each source's publication and slot (idempotent)."""
    from trueup.stack.state import StackState

    s = obj.stack()
    s.init_sources(s.state() or StackState(data_dir=str(s.data_dir)))


# ---- connectors -------------------------------------------------------------------------------


@cli.group()
def connect() -> None:
    """Run a source connector in the foreground."""


@connect.command("debezium")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Debezium config map (the JSON registered with Kafka Connect).")
@click.pass_obj
@_fail_cleanly
def connect_debezium(obj: Context, config_path: Path) -> None:
    """Run a Debezium PostgreSQL connector in the embedded engine, producing to Kafka."""
    from connectors.debezium_config import engine_properties, load_connector_config
    from connectors.debezium_runner import run_connector

    settings = obj.settings
    if not settings.kafka.bootstrap:
        raise click.ClickException("TRUEUP_KAFKA__BOOTSTRAP is not set: the connector needs a Kafka to produce to")
    cfg = load_connector_config(config_path)
    work_dir = Path(settings.data_dir).resolve() / "connect" / cfg.name
    # Resolve placeholders now so a missing secret fails at start, naming file and field.
    engine_properties(cfg, work_dir / "offsets.dat", settings.connect.secrets_dir)
    _configure_logging(settings)
    sys.exit(
        run_connector(
            cfg,
            bootstrap=settings.kafka.bootstrap,
            work_dir=work_dir,
            secrets_dir=settings.connect.secrets_dir,
            heartbeat_interval_ms=settings.connect.heartbeat_interval_ms,
            offset_flush_interval_ms=settings.connect.offset_flush_interval_ms,
            linger_ms=settings.kafka.producer_linger_ms,
            jvm_max_heap_mb=settings.connect.jvm_max_heap_mb,
            metrics=(settings.connect.metrics_host, settings.connect.metrics_port),
        )
    )


def _poller_setup(obj: Context, config_path: Path, kind: str):
    from connectors.poll_config import PollConfigError, load_poll_config
    from streams.mapping import load_mapping

    settings = obj.settings
    if not settings.kafka.bootstrap:
        raise click.ClickException("TRUEUP_KAFKA__BOOTSTRAP is not set: the poller needs a Kafka to produce to")
    try:
        cfg = load_poll_config(config_path)
    except PollConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if cfg.kind != kind:
        raise click.ClickException(f"{config_path}: field kind: is {cfg.kind}, this command runs {kind}")
    if cfg.source not in settings.sources:
        raise click.ClickException(f"{config_path}: field source: {cfg.source} is not a configured source")
    _configure_logging(settings)
    work_dir = Path(settings.data_dir).resolve() / "connect" / cfg.source
    return settings, cfg, load_mapping(settings.mapping), work_dir


@connect.command("poll-sql")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Poller file (config/pollers/*.yaml, kind poll-sql).")
@click.pass_obj
@_fail_cleanly
def connect_poll_sql(obj: Context, config_path: Path) -> None:
    """Poll a PostgreSQL source by SQL (updated-at watermark, lookback, deletes) into raw topics."""
    from connectors.metrics_server import serve_metrics
    from connectors.signals import run_until_signalled
    from connectors.sql_poller import SqlPoller

    settings, cfg, mapping, work_dir = _poller_setup(obj, config_path, "poll-sql")
    dsn = settings.sources[cfg.source].dsn
    if dsn is None:
        raise click.ClickException(f"sources.{cfg.source}.dsn is not set: the poller needs a database")
    try:
        poller = SqlPoller(cfg, mapping, dsn.get_secret_value(), settings.kafka.bootstrap,
                           settings.topics.poll_cursors, work_dir, settings.kafka.producer_linger_ms)
    except ValueError as exc:
        raise click.ClickException(f"{config_path}: {exc}") from None
    serve_metrics(poller.status, settings.connect.metrics_host, settings.connect.metrics_port)
    sys.exit(run_until_signalled(poller))


@connect.command("poll-api")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Poller file (config/pollers/*.yaml, kind poll-api).")
@click.pass_obj
@_fail_cleanly
def connect_poll_api(obj: Context, config_path: Path) -> None:
    """Poll an events API (Stripe-style cursor pages) into raw topics."""
    from connectors.api_poller import ApiPoller
    from connectors.metrics_server import serve_metrics
    from connectors.signals import run_until_signalled

    settings, cfg, mapping, work_dir = _poller_setup(obj, config_path, "poll-api")
    token = settings.sources[cfg.source].api_token
    try:
        poller = ApiPoller(cfg, mapping, token.get_secret_value() if token else None, settings.kafka.bootstrap,
                           settings.topics.poll_cursors, work_dir, settings.kafka.producer_linger_ms)
    except ValueError as exc:
        raise click.ClickException(f"{config_path}: {exc}") from None
    serve_metrics(poller.status, settings.connect.metrics_host, settings.connect.metrics_port)
    sys.exit(run_until_signalled(poller))


# ---- worker -----------------------------------------------------------------------------------


@cli.command()
@click.option("--index", type=click.IntRange(0, 63), default=0, help="Worker number (its data folder and port).")
@click.option("--web-port", type=click.IntRange(1, 65535), default=None, help="HTTP port (default api.port + index).")
@click.option("--loglevel", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_obj
@_fail_cleanly
def worker(obj: Context, index: int, web_port: int | None, loglevel: str) -> None:
    """Run a Faust worker (joins the consumer group, serves the HTTP API)."""
    from streams.worker import refuse_unjoined_events, run_worker

    settings = obj.settings
    if not settings.kafka.bootstrap:
        raise click.ClickException("TRUEUP_KAFKA__BOOTSTRAP is not set: the worker needs a Kafka")
    # --config also reads TRUEUP_CONFIG, so this is the file whichever way it was named.
    refuse_unjoined_events(settings, settings.kafka.bootstrap, str(obj.config_file) if obj.config_file else None)
    port = web_port or (settings.api.port + index)
    run_worker(settings, settings.kafka.bootstrap, index, port, loglevel)


# ---- canonical events -----------------------------------------------------------------------------


@cli.command()
@click.argument("entity_type")
@click.option("--id", "entity_id", default=None, help="Only events of this entity id.")
@click.pass_obj
@_fail_cleanly
def events(obj: Context, entity_type: str, entity_id: str | None) -> None:
    """Print the canonical events of one entity type as JSON lines (decodes either Avro wire format)."""
    from state.topic_end import read_to_end
    from streams.encoding import Encoder
    from streams.mapping import ENTITY_TYPES

    if entity_type not in ENTITY_TYPES:
        raise click.BadParameter(f"unknown entity type {entity_type!r}; one of {', '.join(ENTITY_TYPES)}",
                                 param_hint="ENTITY_TYPE")
    settings = obj.settings
    encoder = Encoder(settings.kafka.schema_registry_url)
    topic = f"{settings.topics.events_prefix}.{entity_type}"
    for rec in read_to_end(obj.bootstrap(), [topic]):
        _, event = encoder.decode(rec.value)
        if entity_id is None or event["entity_id"] == entity_id:
            click.echo(json.dumps(event, default=str))


# ---- simulator --------------------------------------------------------------------------------


@cli.command()
@click.option("--rate", type=click.FloatRange(0.1, 10000), default=50.0, help="Row changes per second, overall.")
@click.option("--duration", type=click.FloatRange(0.1, None), default=60.0, help="Seconds of new journeys.")
@click.option("--seed", type=int, default=None, help="Seed (default: random, printed).")
@click.option("--faults", type=click.FloatRange(0.0, 1.0), default=0.0, help="Share of journeys with a fault.")
@click.option("--max-delay", type=click.FloatRange(0.0, 3600), default=2.0, help="Longest delay between systems (s).")
@click.option("--ground-truth", type=click.Path(path_type=Path), default=None,
              help="Where to write the expected alerts (default <data dir>/ground-truth-<seed>.json).")
@click.pass_obj
@_fail_cleanly
def simulate(obj: Context, rate: float, duration: float, seed: int | None, faults: float, max_delay: float,
             ground_truth: Path | None) -> None:
    """Write quote-to-cash traffic into the three sources by SQL, injecting faults the rules catch."""
    import random

    from trueup.simulator import Simulator, SimulatorError

    s = obj.stack()
    seed = random.randrange(1, 10**6) if seed is None else seed
    truth = ground_truth or Path(s.data_dir) / f"ground-truth-{seed}.json"
    dsns = {source: s.dsn(source) for source in ("crm", "billing", "erp")}
    click.echo(f"simulating: seed {seed}, {rate:g} changes/s for {duration:g}s, faults {faults:g}; "
               f"ground truth -> {truth}")
    import threading

    try:
        sim = Simulator(dsns, rate=rate, duration_s=duration, seed=seed, faults=faults, max_delay_s=max_delay,
                        ground_truth=truth)
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from None
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = sim.run()
        except Exception as exc:  # reported below, in the main thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="simulator")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        sim.stop()  # finishes the journeys under way so none is left half-written
        worker.join()
    if "error" in result:
        raise click.ClickException(str(result["error"]))
    click.echo(json.dumps(result.get("summary"), default=str))


# ---- alerts -----------------------------------------------------------------------------------


@cli.group()
def alerts() -> None:
    """Read the consistency alerts."""


@alerts.command("tail")
@click.option("--follow", "-f", is_flag=True, help="Keep waiting for new alerts.")
@click.option("--rule", default=None, help="Only this rule id.")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]), default=None)
@click.option("--status", type=click.Choice(["open", "resolved"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="JSON lines for pipes.")
@click.pass_obj
@_fail_cleanly
def alerts_tail(obj: Context, follow: bool, rule: str | None, severity: str | None, status: str | None,
                as_json: bool) -> None:
    """Print alerts (readable lines, or JSON lines with --json); works against any Kafka."""
    from streams.encoding import Encoder
    from trueup import alerts_tail as at

    settings = obj.settings
    encoder = Encoder(settings.kafka.schema_registry_url)
    try:
        for alert in at.tail(obj.bootstrap(), settings.topics.alerts, encoder, follow):
            if at.matches(alert, rule, severity, status):
                click.echo(at.as_json(alert) if as_json else at.line(alert))
    except KeyboardInterrupt:
        pass


# ---- live queries --------------------------------------------------------------------------------


@cli.group()
def query() -> None:
    """Query the live state tables through any worker's HTTP API."""


def _query_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of tables.")(fn)
    return click.option("--url", default=None, help="A worker's API URL (default: the running stack's worker 0).")(fn)


def _query(obj: Context, url: str | None, as_json: bool, path: str, params: dict | None, printer) -> None:
    from rich.console import Console

    from trueup import query as q

    token = obj.settings.api.token.get_secret_value() if obj.settings.api.token else None
    try:
        body = q.fetch(url or obj.api_url(), path, params, token)
    except q.QueryError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(body, indent=2))
    else:
        # Piped output is not cut to 80 columns: lines stay whole for grep and friends.
        printer(Console() if sys.stdout.isatty() else Console(width=240, soft_wrap=True), body)


@query.command("entity")
@click.argument("entity_type")
@click.argument("entity_id")
@_query_options
@click.pass_obj
def query_entity(obj: Context, entity_type: str, entity_id: str, url: str | None, as_json: bool) -> None:
    """One entity's latest canonical state (e.g. `trueup query entity invoice in_123`)."""
    from trueup import query as q

    _query(obj, url, as_json, f"/entities/{q.quote(entity_type)}/{q.quote(entity_id)}", None, q.print_entity)


@query.command("projection")
@click.argument("name", type=click.Choice(["invoice", "account", "quote_to_cash"]))
@click.argument("projection_id")
@_query_options
@click.pass_obj
def query_projection(obj: Context, name: str, projection_id: str, url: str | None, as_json: bool) -> None:
    """A corrected projection with provenance (e.g. `trueup query projection invoice in_123`)."""
    from trueup import query as q

    _query(obj, url, as_json, f"/projections/{name}/{q.quote(projection_id)}", None, q.print_projection)


@query.command("alerts")
@click.option("--status", type=click.Choice(["open", "resolved"]), default=None)
@click.option("--rule", default=None, help="Only this rule id.")
@click.option("--severity", type=click.Choice(["low", "medium", "high", "critical"]), default=None)
@click.option("--entity-type", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=None)
@click.option("--cursor", default=None, help="next_cursor of the previous page.")
@_query_options
@click.pass_obj
def query_alerts(obj: Context, status, rule, severity, entity_type, limit, cursor, url, as_json) -> None:
    """One page of alerts from every worker, ordered by first seen."""
    from trueup import query as q

    _query(obj, url, as_json, "/alerts", {"status": status, "rule": rule, "severity": severity, "entity_type": entity_type,
                            "limit": limit, "cursor": cursor}, q.print_alerts)


@query.command("health")
@_query_options
@click.pass_obj
def query_health(obj: Context, url: str | None, as_json: bool) -> None:
    """Per source lag and watermark, per worker partitions and recovery."""
    from trueup import query as q

    _query(obj, url, as_json, "/health", None, q.print_health)


# ---- verification --------------------------------------------------------------------------------


@cli.command()
@click.option("--system", "systems", multiple=True, help="Only sources of this system (repeatable).")
@click.option("--entity", "entities", multiple=True, help="Only this entity type (repeatable).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Only rows changed since then (UTC).")
@click.option("--repair", is_flag=True, help="Re-read drifted rows and send them through the pipeline as repairs.")
@click.option("--buckets", type=click.Choice([str(1 << n) for n in range(17)]), default="256", show_default=True,
              callback=lambda ctx, param, value: int(value), help="Top-level key buckets (bisected when they differ).")
@click.option("--url", default=None, help="A worker's API URL (default: the running stack's worker 0).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and drift as JSON.")
@click.pass_obj
@_fail_cleanly
def verify(obj: Context, systems, entities, since, repair, buckets, url, as_json) -> None:
    """Prove the live state against the source databases; report drift as alerts; --repair fixes it."""
    from datetime import timezone

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from streams.mapping import load_mapping
    from trueup.verify import Verifier

    settings = obj.settings
    stack = obj.stack()
    status = stack.status()
    token = settings.api.token.get_secret_value() if settings.api.token else None
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, disable=as_json) as progress:
        task = progress.add_task("verify", total=None)

        def step(text: str) -> None:
            done, total = verifier.tables_done
            progress.update(task, description=text, completed=done, total=total or None)

        verifier = Verifier(settings, load_mapping(settings.mapping), url or obj.api_url(), status["postgres"],
                            obj.bootstrap(), buckets=buckets, token=token, progress=step)
        try:
            summary = verifier.run(set(systems) or None, set(entities) or None, repair,
                                   Path(settings.data_dir).resolve() / "verify" / "repairs.jsonl",
                                   since.replace(tzinfo=timezone.utc) if since else None)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    result = summary.as_dict()
    if as_json:
        click.echo(json.dumps({**result, "drift_rows": summary.drift}, indent=2, default=str))
        return
    for d in summary.drift:
        click.echo(f"drift {d['kind']:18} {d['entity_type']}/{d['entity_id']}")
    click.echo(f"checked {result['rows_checked']} rows in {len(result['tables'])} tables, {result['buckets']} buckets "
               f"({result['buckets_differing']} differing, {result['bisections']} bisection step(s), "
               f"{result['rows_fetched_row_level']} rows fetched row by "
               f"row); drift {result['drift']} {result['drift_by_kind'] or ''}; repaired {result['repaired']}; "
               f"{result['alerts_resolved']} drift alert(s) resolved; {result['elapsed_s']} s, "
               f"{result['rows_per_s']} rows/s")


# ---- dead letters ------------------------------------------------------------------------------


@cli.group()
def dlq() -> None:
    """Inspect and re-drive the dead-letter topic."""


@dlq.command("list")
@click.option("--filter", "text", default=None, help="Only letters whose error contains this text.")
@click.option("--topic", default=None, help="Only letters from this source topic.")
@click.option("--stage", default=None, help="Only letters from this stage (decode, normalize, encode).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@_fail_cleanly
def dlq_list(obj: Context, text: str | None, topic: str | None, stage: str | None, as_json: bool) -> None:
    """List dead letters with their reason, stage and source coordinates."""
    import base64

    from streams.dead_letters import matches
    from streams.encoding import Encoder
    from trueup.dlq import letters

    settings = obj.settings
    encoder = Encoder(settings.kafka.schema_registry_url)
    shown = 0
    for partition, offset, letter in letters(obj.bootstrap(), settings.topics.dlq, encoder):
        if not matches(letter, text, topic, stage):
            continue
        shown += 1
        if as_json:
            out = {k: v for k, v in letter.items() if k not in ("key", "value", "headers")}
            out.update(dlq_partition=partition, dlq_offset=offset,
                       key=base64.b64encode(letter["key"]).decode() if letter["key"] else None,
                       value=base64.b64encode(letter["value"]).decode() if letter["value"] else None)
            click.echo(json.dumps(out, default=str))
        else:
            click.echo(f"{partition}:{offset}  {letter['topic']}[{letter['partition']}]@{letter['offset']}  "
                       f"{letter['stage']}: {letter['error']}")
    if not as_json:
        click.echo(f"{shown} dead letter(s)")


@dlq.command("replay")
@click.option("--filter", "text", default=None, help="Only letters whose error contains this text.")
@click.option("--topic", default=None, help="Only letters from this source topic.")
@click.option("--stage", default=None, help="Only letters from this stage.")
@click.option("--dry-run", is_flag=True, help="Count what would be replayed, send nothing.")
@click.pass_obj
@_fail_cleanly
def dlq_replay(obj: Context, text: str | None, topic: str | None, stage: str | None, dry_run: bool) -> None:
    """Re-drive dead letters through normalization (after a mapping or source fix)."""
    from streams.encoding import Encoder
    from trueup.dlq import replay

    settings = obj.settings
    n = replay(obj.bootstrap(), settings.topics.dlq, settings.topics.dlq_replay,
               Encoder(settings.kafka.schema_registry_url), text, topic, stage, dry_run)
    click.echo(f"{n} dead letter(s) {'would be ' if dry_run else ''}replayed")


# ---- demo -------------------------------------------------------------------------------------


SMOKE = {"events": 3000, "runs": 1, "latency_rate": 40.0, "latency_s": 8.0, "snapshot_rows": 3000}


@cli.command()
@click.option("--events", type=click.IntRange(100), default=200_000, show_default=True,
              help="Raw envelopes for the throughput runs.")
@click.option("--runs", type=click.IntRange(1, 9), default=3, show_default=True, help="Throughput runs (median).")
@click.option("--latency-rate", type=click.FloatRange(1, 5000), default=1000.0, show_default=True,
              help="Source changes per second for the latency run.")
@click.option("--latency-seconds", "latency_s", type=click.FloatRange(1, 3600), default=60.0, show_default=True)
@click.option("--latency-workers", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Workers sharing the latency run's partitions.")
@click.option("--snapshot-rows", type=click.IntRange(100), default=1_000_000, show_default=True)
@click.option("--snapshot-workers", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Workers sharing the snapshot's partitions.")
@click.option("--only", "parts", multiple=True, type=click.Choice(["latency", "throughput", "snapshot"]),
              help="Run only these parts (repeatable); default all.")
@click.option("--smoke", is_flag=True, help="A small run of every part (what CI runs): figures, not targets.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True)
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Throughput input saved by an earlier run (<out>/bench-input.jsonl) instead of a new capture.")
@click.pass_obj
@_fail_cleanly
def bench(obj: Context, events, runs, latency_rate, latency_s, latency_workers, snapshot_rows, snapshot_workers,
          parts, smoke, out, input_file) -> None:
    """Measure throughput against baselines, commit-to-alert latency and snapshot speed; print figures."""
    import signal

    from trueup.bench.report import lines
    from trueup.bench.run import PARTS, run_bench

    # A SIGTERM must unwind like Ctrl-C, so the stacks and brokers the run started are stopped by its finally.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if obj.config_file:
        # Every stack and worker the run starts is a child: they read the same file, by absolute path.
        os.environ[CONFIG_ENV] = str(obj.config_file.resolve())
    if smoke:
        events, runs, latency_rate, latency_s, snapshot_rows = (
            SMOKE["events"], SMOKE["runs"], SMOKE["latency_rate"], SMOKE["latency_s"], SMOKE["snapshot_rows"])
    result, json_path, png_path = run_bench(obj.settings, out.resolve(), events, runs, latency_rate, latency_s,
                                            snapshot_rows, tuple(parts) or PARTS,
                                            echo=lambda text: click.echo(text, err=True), input_file=input_file,
                                            snapshot_workers=snapshot_workers, latency_workers=latency_workers)
    for line in lines(result):
        click.echo(line)
    click.echo(f"result: {json_path}\nchart:  {png_path}")


@cli.command()
@click.option("--workers", type=click.IntRange(1, 4), default=1)
@click.option("--rate", type=click.FloatRange(0.1, 1000), default=5.0, help="Business changes per second.")
@click.pass_obj
@_fail_cleanly
def demo(obj: Context, workers: int, rate: float) -> None:
    """Start the stack and the simulator (low fault rate) and show flow, lag and alerts live; Ctrl-C stops all."""
    from trueup.demo import run_demo

    token = obj.settings.api.token
    run_demo(obj.stack(), workers=workers, rate=rate, token=token.get_secret_value() if token else None)


def _configure_logging(settings) -> None:
    from trueup import logs

    logs.apply(settings.log.format, settings.log.level)


def main() -> None:
    cli(prog_name="trueup")


if __name__ == "__main__":
    main()
