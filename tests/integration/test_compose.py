"""The production-shaped compose topology (compose/docker-compose.yml) is valid and safe.

Needs no Docker engine: `docker-compose config -q` validates the file, the rest
checks the structure that matters (start order, healthchecks, no literal
passwords) and runs the two helper scripts against stubs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
REGISTER_SCRIPT = COMPOSE_DIR / "register-connectors.sh"
SECRETS_SCRIPT = COMPOSE_DIR / "make-secrets.sh"
DEBEZIUM_DIR = REPO / "debezium"
PROMETHEUS_FILE = COMPOSE_DIR / "prometheus" / "prometheus.yml"
GRAFANA_DIR = COMPOSE_DIR / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "trueup.json"

ONE_SHOTS = {"trueup-init", "connect-register"}
SOURCES = ("crm", "billing", "erp")
REQUIRED_SERVICES = {
    "kafka",
    "schema-registry",
    "crm-db",
    "billing-db",
    "erp-db",
    "trueup-init",
    "connect",
    "connect-register",
    "trueup-worker-1",
    "trueup-worker-2",
    "prometheus",
    "grafana",
}


def _compose() -> dict:
    with COMPOSE_FILE.open() as fh:
        return yaml.safe_load(fh)


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        env = dict(pairs)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _is_one_shot(service: dict) -> bool:
    return str(service.get("restart", "no")) == "no"


def _connector_configs() -> list[Path]:
    configs = sorted(DEBEZIUM_DIR.glob("*.json"))
    assert len(configs) >= 3, f"expected at least 3 connector configs in {DEBEZIUM_DIR}, found {configs}"
    return configs


def test_docker_compose_config_validates() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not installed; run `apt-get update && apt-get install -y docker-compose` "
            "(Debian's docker-compose 1.29.2) to validate compose/docker-compose.yml"
        )
    # No secrets/ files needed: config validation does not open secret files.
    result = subprocess.run(
        [exe, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"`docker-compose -f {COMPOSE_FILE} config -q` exited {result.returncode}\n"
        f"stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    )


def test_every_service_required_is_present() -> None:
    missing = REQUIRED_SERVICES - set(_services())
    assert not missing, f"services missing from {COMPOSE_FILE.name}: {sorted(missing)}"


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart() -> None:
    services = _services()
    one_shots = {name for name, svc in services.items() if _is_one_shot(svc)}
    assert one_shots == ONE_SHOTS, f"one-shot services (restart: 'no') are {sorted(one_shots)}"
    for name, svc in services.items():
        if name in ONE_SHOTS:
            continue
        check = svc.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_every_dependency_waits_for_health_or_completion() -> None:
    services = _services()
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions, got {deps!r}"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = (spec or {}).get("condition")
            if dep in ONE_SHOTS:
                assert condition == "service_completed_successfully", f"{name} -> {dep}: {condition}"
            else:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition}"
                assert services[dep].get("healthcheck"), f"{name} waits for {dep}, which has no healthcheck"


def test_start_order_matches_the_data_flow() -> None:
    services = _services()

    def deps(name: str) -> set[str]:
        return set(services[name].get("depends_on") or {})

    assert {f"{db}-db" for db in SOURCES} <= deps("trueup-init")
    assert {"connect", "trueup-init"} <= deps("connect-register")
    assert "kafka" in deps("connect") and "kafka" in deps("schema-registry")
    for worker in ("trueup-worker-1", "trueup-worker-2"):
        assert {"kafka", "schema-registry", "trueup-init"} <= deps(worker), worker


def test_no_literal_password_anywhere_in_the_environment() -> None:
    for name, svc in _services().items():
        for key, value in _environment(svc).items():
            if "PASSWORD" in key.upper() or "SECRET" in key.upper():
                assert key.upper().endswith("_FILE") and value.startswith("/run/secrets/"), (
                    f"{name}: {key}={value!r} looks like a literal secret; use a *_FILE pointing at /run/secrets/"
                )
            if "://" in value:
                assert urlsplit(value).password is None, f"{name}: {key} embeds a password in a URL"
            assert not re.search(r"password\s*=", value, re.IGNORECASE), f"{name}: {key} carries a password"


def test_password_files_are_docker_secrets_of_that_service() -> None:
    compose = _compose()
    declared = compose.get("secrets") or {}
    for name, svc in compose["services"].items():
        mounted = set()
        for entry in svc.get("secrets") or []:
            source = entry if isinstance(entry, str) else entry["source"]
            assert source in declared, f"{name} uses undeclared secret {source}"
            target = source if isinstance(entry, str) else entry.get("target", source)
            mounted.add(target if target.startswith("/") else f"/run/secrets/{target}")
        for key, value in _environment(svc).items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value in mounted, f"{name}: {key}={value} is not one of its secrets {sorted(mounted)}"


def test_sources_databases_and_dsns() -> None:
    services = _services()
    for db in SOURCES:
        svc = services[f"{db}-db"]
        assert str(svc["image"]).startswith("postgres:15")
        command = " ".join(svc["command"]) if isinstance(svc["command"], list) else svc["command"]
        for setting in ("wal_level=logical", "max_replication_slots=10", "max_wal_senders=10"):
            assert setting in command, f"{db}-db command lacks {setting}"
        env = _environment(svc)
        assert env["POSTGRES_DB"] == db
        assert env["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
        volumes = [str(v) for v in svc.get("volumes") or []]
        assert not any("docker-entrypoint-initdb.d" in v for v in volumes), "trueup-init applies the schema"
        assert "pg_isready" in " ".join(map(str, svc["healthcheck"]["test"]))
    for name in ("trueup-init", "trueup-worker-1", "trueup-worker-2"):
        env = _environment(services[name])
        for db in SOURCES:
            dsn = urlsplit(env[f"TRUEUP_SOURCES__{db.upper()}__DSN"])
            assert dsn.scheme == "postgresql" and dsn.hostname == f"{db}-db" and dsn.path == f"/{db}", (name, dsn)
            assert env[f"TRUEUP_SOURCES__{db.upper()}__PASSWORD_FILE"].startswith("/run/secrets/")


def test_kafka_listeners_and_worker_ports() -> None:
    services = _services()
    kafka = _environment(services["kafka"])
    assert "kafka:29092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert "localhost:9092" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name, host_port in (("trueup-worker-1", 6066), ("trueup-worker-2", 6067)):
        svc = services[name]
        assert svc["command"] in (["trueup", "worker"], "trueup worker")
        assert [str(p) for p in svc["ports"]] == [f"127.0.0.1:{host_port}:6066"], svc["ports"]
        env = _environment(svc)
        assert env["TRUEUP_KAFKA__BOOTSTRAP"] == "kafka:29092"
        assert env["TRUEUP_DATA_DIR"] == "/var/lib/trueup"
        assert any(str(v).endswith(":/var/lib/trueup") for v in svc["volumes"]), svc["volumes"]
    worker_volumes = {str(services[n]["volumes"][0]).split(":")[0] for n in ("trueup-worker-1", "trueup-worker-2")}
    assert len(worker_volumes) == 2, "each worker needs its own table volume"


def test_connect_sees_a_properties_file_for_every_connector_config() -> None:
    compose = _compose()
    connect = compose["services"]["connect"]
    env = _environment(connect)
    assert env["CONNECT_CONFIG_PROVIDERS"] == "file"
    assert env["CONNECT_CONFIG_PROVIDERS_FILE_CLASS"] == "org.apache.kafka.common.config.provider.FileConfigProvider"
    targets = {entry["target"] for entry in connect["secrets"] if isinstance(entry, dict)}
    for config in _connector_configs():
        referenced = set(re.findall(r"\$\{file:([^:}]+):[^}]+\}", config.read_text()))
        assert referenced, f"{config.name} references no ${{file:...}} secret"
        assert referenced <= targets, f"{config.name} needs {sorted(referenced - targets)} mounted in connect"


def _write_stub_curl(bindir: Path) -> None:
    stub = bindir / "curl"
    stub.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            echo "$*" >> "$STUB_LOG"
            case "$*" in
              *"/status"*) cat "$STUB_STATUS_FILE" ;;
              *) printf '{}' ;;
            esac
            """
        )
    )
    stub.chmod(0o755)


def _run_register(tmp_path: Path, connector_dir: Path, status: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    _write_stub_curl(bindir)
    log = tmp_path / "curl.log"
    log.write_text("")
    status_file = tmp_path / "status.json"
    status_file.write_text(status)
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "STUB_LOG": str(log),
        "STUB_STATUS_FILE": str(status_file),
        "CONNECT_URL": "http://connect:8083",
        "CONNECTOR_DIR": str(connector_dir),
        "RETRY_DELAY_S": "0",
        "STATUS_TIMEOUT_S": "2",
    }
    result = subprocess.run(["sh", str(REGISTER_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines()


RUNNING = (
    '{"name":"x","connector":{"state":"RUNNING","worker_id":"connect:8083"},'
    '"tasks":[{"id":0,"state":"RUNNING","worker_id":"connect:8083"}],"type":"source"}'
)


def test_connect_register_puts_every_debezium_config(tmp_path: Path) -> None:
    services = _services()
    register = services["connect-register"]
    env = _environment(register)
    volumes = [str(v) for v in register["volumes"]]
    assert f"../debezium:{env['CONNECTOR_DIR']}:ro" in volumes, volumes
    assert any(v.startswith("./register-connectors.sh:") for v in volumes), volumes
    assert REGISTER_SCRIPT.read_text().startswith("#!/bin/sh")
    assert "set -eu" in REGISTER_SCRIPT.read_text()

    configs = _connector_configs()
    result, calls = _run_register(tmp_path, DEBEZIUM_DIR, RUNNING)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    for config in configs:
        name = config.stem
        put = (
            f"-fsS -X PUT -H Content-Type: application/json --data @{config} "
            f"http://connect:8083/connectors/{name}/config"
        )
        assert put in calls, f"{config.name} was not registered; curl calls: {calls}"
        assert f"-fsS http://connect:8083/connectors/{name}/status" in calls


def test_connect_register_fails_on_failed_task_or_no_configs(tmp_path: Path) -> None:
    failed = RUNNING.replace('"id":0,"state":"RUNNING"', '"id":0,"state":"FAILED","trace":"boom"')
    result, _ = _run_register(tmp_path, DEBEZIUM_DIR, failed)
    assert result.returncode != 0 and "FAILED" in result.stderr, result.stderr

    no_tasks = '{"name":"x","connector":{"state":"RUNNING","worker_id":"connect:8083"},"tasks":[],"type":"source"}'
    result, _ = _run_register(tmp_path, DEBEZIUM_DIR, no_tasks)
    assert result.returncode != 0 and "not RUNNING" in result.stderr, result.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    result, calls = _run_register(tmp_path, empty, RUNNING)
    assert result.returncode != 0 and not calls, result.stderr


def _read_properties(path: Path) -> dict[str, str]:
    props = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def test_make_secrets_generates_every_declared_secret_file(tmp_path: Path) -> None:
    # Run in a copy of compose/ so the real compose/secrets/ is never touched.
    copy = tmp_path / "compose"
    copy.mkdir()
    shutil.copy2(COMPOSE_FILE, copy / COMPOSE_FILE.name)
    shutil.copy2(SECRETS_SCRIPT, copy / SECRETS_SCRIPT.name)
    env = {k: v for k, v in os.environ.items() if k != "SECRETS_DIR"}
    first = subprocess.run(["sh", str(copy / SECRETS_SCRIPT.name)], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr

    declared = _compose()["secrets"]
    for name, spec in declared.items():
        path = (copy / spec["file"]).resolve()
        assert path.is_file() and path.stat().st_size > 0, f"secret {name}: {spec['file']} not generated"
        assert "change-me" not in path.read_text()
    secrets_dir = copy / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700

    for db in SOURCES:
        password = (secrets_dir / f"{db}_password").read_text()
        assert re.fullmatch(r"[0-9a-f]{32}", password), "one line, no newline, URL- and properties-safe"
        props = _read_properties(secrets_dir / f"{db}.properties")
        assert props == {"hostname": f"{db}-db", "port": "5432", "user": "trueup", "password": password}
        example = _read_properties(COMPOSE_DIR / "secrets" / f"{db}.properties.example")
        assert set(example) == set(props) and example["password"] == "change-me"

    # Idempotent: a second run keeps the passwords the databases were initialised with.
    before = {p.name: p.read_text() for p in secrets_dir.iterdir()}
    second = subprocess.run(["sh", str(copy / SECRETS_SCRIPT.name)], env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert {p.name: p.read_text() for p in secrets_dir.iterdir()} == before


def test_generated_secrets_are_git_ignored_and_examples_are_not() -> None:
    ignore = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert "/secrets/*" in ignore and "!/secrets/*.example" in ignore


@pytest.mark.parametrize("service", ["trueup-init", "trueup-worker-1", "trueup-worker-2"])
def test_trueup_services_environment_is_accepted_by_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings forbid unknown fields: a misspelt TRUEUP_* variable would stop the container.
    from trueup.settings import load_settings

    for key in list(os.environ):
        if key.startswith("TRUEUP_"):
            monkeypatch.delenv(key)
    env = _environment(_services()[service])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    for db in SOURCES:
        source = settings.sources[db]
        assert source.dsn is not None and source.password_file == Path(f"/run/secrets/{db}_db_password")
    if service != "trueup-init":
        assert settings.kafka.bootstrap == "kafka:29092"
        assert settings.kafka.schema_registry_url == "http://schema-registry:8081"
        assert (settings.api.host, settings.api.port) == ("0.0.0.0", 6066)
        assert settings.data_dir == Path("/var/lib/trueup")


# --- observability: Prometheus, Grafana and the trueup dashboard ------------------------------------------------
# None of these needs Docker or the session stack: they read the files.

# The contract between the dashboard and the processes it watches: the metric families the workers
# (streams/metrics.py) and the connectors and pollers (connectors/metrics_server.py) serve, by type.
# In the exposition format a counter is `<name>_total` and a histogram `<name>_bucket|_sum|_count`.
SERVED_COUNTERS = {
    "trueup_events_in",
    "trueup_events_out",
    "trueup_records_in",
    "trueup_records_out",
    "trueup_duplicates_dropped",
    "trueup_dead_letters",
    "trueup_control_records",
    "trueup_join_messages",
    "trueup_projections_out",
    "trueup_alerts_out",
    "trueup_records_skipped",
    "trueup_records_lost",
    "trueup_connector_records",
    "trueup_connector_snapshot_records",
    "trueup_connector_offsets_restored",
    "trueup_snapshot_rows_landed",
    "trueup_connector_batches",
    "trueup_connector_errors",
}
SERVED_GAUGES = {
    "trueup_consumer_lag",
    "trueup_source_watermark_age_seconds",
    "trueup_alert_checks_waiting",
    "trueup_records_missing",
    "trueup_open_alerts",
    "trueup_verify_drift",
    "trueup_verify_rows_checked",
    "trueup_connector_phase",
    "trueup_connector_last_event_age_seconds",
}
SERVED_HISTOGRAMS = {"trueup_processing_latency_seconds", "trueup_watermark_stage_seconds"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PANEL_TYPES = {"row", "timeseries", "stat", "bargauge"}
DASHBOARD_ROWS = ["Throughput", "Latency", "Lag & watermarks", "Alerts", "Data quality", "Connectors"]


def _served_series() -> dict[str, str]:
    """Exposition name -> family name, for every series name a query may use."""
    series = {f"{name}_total": name for name in SERVED_COUNTERS}
    series.update({name: name for name in SERVED_GAUGES})
    series.update({f"{name}{suffix}": name for name in SERVED_HISTOGRAMS for suffix in HISTOGRAM_SUFFIXES})
    return series


def _dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def _dashboard_panels() -> list[dict]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    out = []
    for panel in _dashboard()["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def _queries() -> list[str]:
    exprs = [t["expr"] for p in _dashboard_panels() for t in p.get("targets") or [] if t.get("expr")]
    for var in _dashboard().get("templating", {}).get("list", []):
        query = var.get("query")
        exprs.append(query.get("query", "") if isinstance(query, dict) else str(query or ""))
    return exprs


def _worker_services() -> dict[str, dict]:
    return {
        name: svc
        for name, svc in _services().items()
        if svc.get("command") in (["trueup", "worker"], "trueup worker")
    }


def _prometheus_config() -> dict:
    with PROMETHEUS_FILE.open() as fh:
        return yaml.safe_load(fh)


def _bind_mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to compose/) of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes") or []:
        host, container = str(volume).split(":")[:2]
        if host.startswith("."):
            mounts[container] = host
    return mounts


def test_dashboard_queries_only_metrics_the_processes_serve() -> None:
    served = _served_series()
    used: set[str] = set()
    for expr in _queries():
        for name in re.findall(r"trueup_[a-z_]+", expr):
            assert name in served, f"dashboard query uses {name}, which nothing serves: {expr}"
            used.add(name)
    assert used, "the dashboard queries no trueup metric"
    unused = (SERVED_COUNTERS | SERVED_GAUGES | SERVED_HISTOGRAMS) - {served[name] for name in used}
    assert not unused, f"served metrics no panel shows: {sorted(unused)}"


def test_metric_contract_is_what_the_code_registers() -> None:
    # The hard-coded contract above must stay true of the code: every family in it is registered, with its type.
    from connectors.metrics_server import StatusCollector
    from connectors.status import ConnectorStatus
    from streams.metrics import WorkerMetrics

    families = {fam.name: fam.type for fam in WorkerMetrics().registry.collect()}
    status = ConnectorStatus(name="crm", last_event_time_ms=0)
    families.update({fam.name: fam.type for fam in StatusCollector(status).collect()})
    contract = {name: "counter" for name in SERVED_COUNTERS}
    contract.update({name: "gauge" for name in SERVED_GAUGES})
    contract.update({name: "histogram" for name in SERVED_HISTOGRAMS})
    for name, kind in contract.items():
        assert families.get(name) == kind, f"{name}: the contract says {kind}, the code registers {families.get(name)}"


def test_dashboard_panels_use_the_prometheus_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] == 39 and dashboard["uid"] and dashboard["title"]
    panels = _dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert [r for r in rows if r in DASHBOARD_ROWS] == DASHBOARD_ROWS, rows
    for panel in panels:
        title = panel.get("title")
        assert panel["type"] in PANEL_TYPES, f"{title}: panel type {panel['type']}"
        datasource = panel.get("datasource") or {}
        assert datasource.get("uid") == "prometheus", f"{title}: datasource {datasource}"
        if panel["type"] == "row":
            continue
        assert panel.get("description", "").strip(), f"{title} has no description"
        assert "\n" not in panel["description"], f"{title}: description is one line"
        assert panel.get("targets"), f"{title} has no query"
        for target in panel["targets"]:
            assert target.get("expr"), f"{title}: target {target.get('refId')} has no expr"
            assert (target.get("datasource") or {"uid": "prometheus"}).get("uid") == "prometheus", title
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            assert var["datasource"]["uid"] == "prometheus", var["name"]


def test_latency_panels_take_quantiles_of_the_histogram_per_stage() -> None:
    exprs = [e for e in _queries() if "trueup_processing_latency_seconds_bucket" in e]
    assert exprs
    for expr in exprs:
        assert "histogram_quantile(" in expr and re.search(r"rate\(trueup_processing_latency_seconds_bucket\{", expr)
        assert re.search(r"by \([^)]*\ble\b", expr), f"quantile over buckets must keep le: {expr}"
    joined = " ".join(exprs)
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in joined
    for stage in ("normalized", "joined", "alerted"):
        assert f'stage="{stage}"' in joined


def test_prometheus_scrapes_every_worker() -> None:
    config = _prometheus_config()
    workers = _worker_services()
    assert {"trueup-worker-1", "trueup-worker-2"} <= set(workers)
    expected = {f"{name}:{_environment(svc)['TRUEUP_API__PORT']}" for name, svc in workers.items()}
    default_interval = (config.get("global") or {}).get("scrape_interval")
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        job_targets = {t for static in job.get("static_configs") or [] for t in static["targets"]}
        if not job_targets & expected:
            continue
        targets |= job_targets
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        assert job.get("scrape_interval", default_interval) == "5s", job["job_name"]
        tokens = {name for name, svc in workers.items() if "TRUEUP_API__TOKEN" in _environment(svc)}
        if tokens:
            credentials = (job.get("authorization") or {}).get("credentials_file", "")
            assert credentials.startswith("/run/secrets/"), f"{sorted(tokens)} need a bearer token to scrape"
            mounted = {f"/run/secrets/{s if isinstance(s, str) else s.get('target', s['source'])}"
                       for s in _services()["prometheus"].get("secrets") or []}
            assert credentials in mounted, f"{credentials} is not a secret of the prometheus service"
    assert expected <= targets, f"workers Prometheus does not scrape: {sorted(expected - targets)}"
    assert not any(t.startswith("connect:") for t in targets), "Kafka Connect serves no trueup metrics"


def test_prometheus_and_grafana_services() -> None:
    services = _services()
    prometheus, grafana = services["prometheus"], services["grafana"]
    for name, svc, image, port in (("prometheus", prometheus, "prom/prometheus:", 9090),
                                   ("grafana", grafana, "grafana/grafana:", 3000)):
        assert str(svc["image"]).startswith(image), svc["image"]
        assert svc["image"].split(":", 1)[1] not in ("", "latest", "main"), f"{name}: pin the image tag"
        assert [str(p) for p in svc["ports"]] == [f"127.0.0.1:{port}:{port}"], svc["ports"]
        assert str(svc.get("restart")) == "unless-stopped"
    assert "http://localhost:9090/-/healthy" in prometheus["healthcheck"]["test"]
    assert "http://localhost:3000/api/health" in grafana["healthcheck"]["test"]
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}

    # The files each one is configured from exist where compose mounts them from.
    prom_mounts = _bind_mounts(prometheus)
    assert (COMPOSE_DIR / prom_mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS_FILE
    graf_mounts = _bind_mounts(grafana)
    provisioning = COMPOSE_DIR / graf_mounts["/etc/grafana/provisioning"]
    assert provisioning.resolve() == (GRAFANA_DIR / "provisioning").resolve()

    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    [source] = [d for d in datasources if d.get("isDefault")]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    assert urlsplit(source["url"]).hostname == "prometheus" and urlsplit(source["url"]).port == 9090

    providers = yaml.safe_load((provisioning / "dashboards" / "trueup.yml").read_text())["providers"]
    [provider] = providers
    dashboards_dir = provider["options"]["path"]
    assert (COMPOSE_DIR / graf_mounts[dashboards_dir]).resolve() == DASHBOARD_FILE.parent.resolve()

    # The admin password is a Docker secret, never a literal.
    env = _environment(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert "grafana_admin_password" in (grafana.get("secrets") or [])
