"""The production-shaped compose topology (compose/docker-compose.yml) is valid and safe.

Needs no Docker engine: `docker-compose config -q` validates the file, the rest
checks the structure that matters (start order, healthchecks, no literal
passwords) and runs the two helper scripts against stubs.
"""

from __future__ import annotations

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
