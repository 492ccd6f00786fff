"""docker-compose.yml validates, and wires everything the worker and the API need through environment variables.

The file is checked with the real `docker-compose config` (Debian's package; .ci/run installs it), which resolves
every `${VAR:-default}`: the tests read that resolved configuration, so they see what `docker compose up` would run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from temporalio.common import SearchAttributeIndexedValueType

from workers.settings import Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
NAMESPACE_SCRIPT = ROOT / "deploy" / "temporal" / "create-namespace.sh"
CLOUD_OVERRIDES = ROOT / "deploy" / "temporal-cloud"
HANDOFF_APPS = ("worker", "api", "ledger-migrate")
ONE_SHOT_JOBS = ("temporal-admin-tools", "temporal-create-namespace", "ledger-migrate")

Config = dict[str, Any]


def _compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed, so docker-compose.yml cannot be checked: "
            "`apt-get install docker-compose` (bash .ci/run installs it when it is missing).",
            pytrace=False,
        )
    return found


def _compose(
    *args: str, files: tuple[Path, ...] = (COMPOSE_FILE,), variables: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run docker-compose on our files with only `variables` set: not the caller's environment, not a local .env."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **(variables or {})}
    with tempfile.TemporaryDirectory() as tmp:
        empty_env_file = Path(tmp) / "empty.env"  # docker-compose 1.x wants a regular file, not /dev/null
        empty_env_file.touch()
        file_args = [arg for file in files for arg in ("-f", str(file))]
        return subprocess.run(
            [_compose_binary(), "--env-file", str(empty_env_file), *file_args, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _yaml_to_data(
    text: str, files: tuple[Path, ...] = (COMPOSE_FILE,), variables: dict[str, str] | None = None
) -> Config:
    """Parse `docker-compose config` output without making PyYAML a dependency of the project.

    docker-compose 1.x (Debian bookworm's) is a Python program that imports PyYAML, so its own interpreter parses
    YAML; docker compose 2.x is a Go binary that prints JSON when asked.
    """
    try:
        import yaml
    except ImportError:
        pass
    else:
        return dict(yaml.safe_load(text))
    binary = Path(_compose_binary())
    first_line = binary.read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
    if first_line.startswith("#!") and "python" in first_line:
        interpreter = first_line[2:].strip().split()
        converted = subprocess.run(
            [*interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return dict(json.loads(converted.stdout))
    as_json = _compose("config", "--format", "json", files=files, variables=variables)
    assert 0 == as_json.returncode, f"`docker-compose config --format json` failed:\n{as_json.stderr}"
    return dict(json.loads(as_json.stdout))


@pytest.fixture(scope="module")
def config() -> Config:
    """docker-compose.yml as `docker-compose config` resolves it."""
    resolved = _compose("config")
    assert 0 == resolved.returncode, f"`docker-compose config` rejected docker-compose.yml:\n{resolved.stderr}"
    return _yaml_to_data(resolved.stdout)


def _services(config: Config) -> dict[str, Config]:
    return dict(config["services"])


def _env(config: Config, service: str) -> dict[str, str]:
    environment = _services(config)[service].get("environment", {})
    if isinstance(environment, list):  # docker compose 2.x may print KEY=VALUE lists
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _seconds(duration: str) -> float:
    """A compose duration ("45s", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_file_validates() -> None:
    """`docker-compose config` accepts docker-compose.yml with every variable at its default."""
    resolved = _compose("config", "--quiet")

    assert 0 == resolved.returncode, resolved.stderr


def test_every_service_is_defined(config: Config) -> None:
    """The stack has Temporal (database, schema job, server, namespace job, UI), the ledger and the Handoff apps."""
    expected = {
        "postgresql",
        "temporal-admin-tools",
        "temporal",
        "temporal-create-namespace",
        "temporal-ui",
        "ledger-db",
        "ledger-migrate",
        "worker",
        "api",
    }

    assert expected == set(_services(config))


def test_start_order_waits_on_health_and_completed_jobs(config: Config) -> None:
    """Each service starts only once what it needs is healthy, or has run to completion for one-shot jobs."""
    healthy, done = "service_healthy", "service_completed_successfully"
    app_needs = {"temporal": healthy, "temporal-create-namespace": done, "ledger-db": healthy, "ledger-migrate": done}
    expected = {
        "postgresql": {},
        "temporal-admin-tools": {"postgresql": healthy},
        "temporal": {"temporal-admin-tools": done},
        "temporal-create-namespace": {"temporal": healthy},
        "temporal-ui": {"temporal": healthy},
        "ledger-db": {},
        "ledger-migrate": {"ledger-db": healthy},
        "worker": app_needs,
        "api": app_needs,
    }

    actual = {
        name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
        for name, service in _services(config).items()
    }

    assert expected == actual


def test_services_waited_on_as_healthy_have_a_healthcheck(config: Config) -> None:
    """A `service_healthy` condition on a service without a healthcheck would never be met."""
    services = _services(config)
    waited_on = {
        dep
        for service in services.values()
        for dep, spec in service.get("depends_on", {}).items()
        if spec["condition"] == "service_healthy"
    }

    missing = sorted(name for name in waited_on if "healthcheck" not in services[name])

    assert [] == missing


def test_long_running_handoff_services_have_a_healthcheck(config: Config) -> None:
    """Worker, API and both databases report their health, so `docker compose ps` shows a stuck one."""
    services = _services(config)

    missing = sorted(
        name for name in ("worker", "api", "postgresql", "ledger-db") if "healthcheck" not in services[name]
    )

    assert [] == missing


def test_one_shot_jobs_do_not_restart_after_success(config: Config) -> None:
    """A job restarted `always` / `unless-stopped` never stays completed, so nothing waiting on it would start."""
    services = _services(config)

    restarting = sorted(
        f"{name}: {services[name]['restart']}"
        for name in ONE_SHOT_JOBS
        if services[name].get("restart", "no") in ("always", "unless-stopped")
    )

    assert [] == restarting


def test_worker_and_api_reach_temporal_by_service_name(config: Config) -> None:
    """HANDOFF_TEMPORAL_ADDRESS of every Handoff process is the `temporal` service's gRPC port."""
    services = _services(config)

    addresses = {app: _env(config, app)["HANDOFF_TEMPORAL_ADDRESS"] for app in HANDOFF_APPS}

    assert {app: "temporal:7233" for app in HANDOFF_APPS} == addresses
    assert services["temporal"]["image"].startswith("temporalio/server:")


def test_ledger_urls_point_at_the_ledger_database(config: Config) -> None:
    """HANDOFF_DATABASE_URL / HANDOFF_SYSTEMS_DATABASE_URL use psycopg 3 and ledger-db's own user, password and DBs."""
    ledger = _env(config, "ledger-db")
    user, password = ledger["POSTGRES_USER"], ledger["POSTGRES_PASSWORD"]
    expected = {
        "HANDOFF_DATABASE_URL": ("postgresql+psycopg", user, password, "ledger-db", 5432, "/" + ledger["POSTGRES_DB"]),
        "HANDOFF_SYSTEMS_DATABASE_URL": (
            "postgresql+psycopg",
            user,
            password,
            "ledger-db",
            5432,
            "/" + ledger["HANDOFF_SYSTEMS_DB"],
        ),
    }

    for app in HANDOFF_APPS:
        env = _env(config, app)
        actual = {}
        for key in expected:
            url = urlsplit(env[key])
            actual[key] = (url.scheme, url.username, url.password, url.hostname, url.port, url.path)
        assert expected == actual, app
    assert _services(config)["ledger-db"]["image"].startswith("postgres:")


def test_temporal_server_and_schema_job_use_the_temporal_database(config: Config) -> None:
    """Server and schema job reach `postgresql` as its user, on the postgres12 plugin, with the same two databases."""
    database = _env(config, "postgresql")
    server = _env(config, "temporal")
    schema_job = _env(config, "temporal-admin-tools")
    credentials = (database["POSTGRES_USER"], database["POSTGRES_PASSWORD"])

    assert ("postgres12", "postgresql", *credentials) == (
        server["DB"],
        server["POSTGRES_SEEDS"],
        server["POSTGRES_USER"],
        server["POSTGRES_PWD"],
    )
    assert ("postgres12", "postgresql", *credentials) == (
        schema_job["SQL_PLUGIN"],
        schema_job["SQL_HOST"],
        schema_job["SQL_USER"],
        schema_job["SQL_PASSWORD"],
    )
    assert (schema_job["TEMPORAL_DB"], schema_job["TEMPORAL_VISIBILITY_DB"]) == (
        server["DBNAME"],
        server["VISIBILITY_DBNAME"],
    )


def test_handoff_variables_are_settings(config: Config) -> None:
    """Every HANDOFF_* variable given to a Handoff process names a field of workers/settings.py (no typos)."""
    known = {f"HANDOFF_{name.upper()}" for name in Settings.model_fields}

    unknown = {
        app: sorted(key for key in _env(config, app) if key.startswith("HANDOFF_") and key not in known)
        for app in HANDOFF_APPS
    }

    assert {app: [] for app in HANDOFF_APPS} == unknown


def test_worker_runs_in_production_mode(config: Config) -> None:
    """The worker logs JSON, serves metrics on 9464, and polls the namespace the namespace job created."""
    worker = _env(config, "worker")
    namespace_job = _env(config, "temporal-create-namespace")

    assert ("json", "9464", namespace_job["HANDOFF_NAMESPACE"], "handoff") == (
        worker["HANDOFF_LOG_FORMAT"],
        worker["HANDOFF_METRICS_PORT"],
        worker["HANDOFF_NAMESPACE"],
        worker["HANDOFF_TASK_QUEUE"],
    )


def test_api_and_worker_share_namespace_and_task_queue(config: Config) -> None:
    """The API starts runs on the queue the workers poll, in the same namespace."""
    worker, api = _env(config, "worker"), _env(config, "api")

    assert (worker["HANDOFF_NAMESPACE"], worker["HANDOFF_TASK_QUEUE"]) == (
        api["HANDOFF_NAMESPACE"],
        api["HANDOFF_TASK_QUEUE"],
    )


def test_api_listens_on_all_interfaces_and_is_published(config: Config) -> None:
    """`handoff api` binds 0.0.0.0 inside its container, and its port is published on the host."""
    api = _services(config)["api"]
    env = _env(config, "api")

    targets = [
        str(port["target"]) if isinstance(port, dict) else str(port).split(":")[-1].split("/")[0]
        for port in api["ports"]
    ]

    assert ("0.0.0.0", [env["HANDOFF_API_PORT"]]) == (env["HANDOFF_API_HOST"], targets)


def test_worker_can_scale(config: Config) -> None:
    """No container_name and no published port on the worker, so `--scale worker=3` starts three."""
    worker = _services(config)["worker"]

    assert (None, []) == (worker.get("container_name"), worker.get("ports", []))


def test_no_service_has_a_fixed_container_name(config: Config) -> None:
    """Fixed container names would stop a second stack (or project name) on the same host."""
    named = {
        name: service["container_name"] for name, service in _services(config).items() if "container_name" in service
    }

    assert {} == named


def test_worker_is_stopped_after_its_graceful_shutdown(config: Config) -> None:
    """Docker waits longer than HANDOFF_GRACEFUL_SHUTDOWN_SECONDS before SIGKILL, so activities can finish."""
    worker = _services(config)["worker"]
    graceful = float(_env(config, "worker")["HANDOFF_GRACEFUL_SHUTDOWN_SECONDS"])

    assert True is (_seconds(str(worker["stop_grace_period"])) > graceful)


def test_images_are_pinned(config: Config) -> None:
    """Every image has an explicit version tag: none floats on `latest` or on no tag at all."""
    unpinned = []
    for name, service in _services(config).items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if "@sha256:" not in image and (not re.match(r"^v?\d+(\.\d+)+", tag) or "latest" in tag):
            unpinned.append(f"{name}: {image}")

    assert [] == unpinned


def test_temporal_server_and_admin_tools_versions_match(config: Config) -> None:
    """The schema job's admin-tools version is the server's, so the schema is the one the server expects."""
    services = _services(config)

    versions = {services[name]["image"].rsplit(":", 1)[1] for name in ("temporal", *ONE_SHOT_JOBS[:2])}

    assert 1 == len(versions), versions


def test_mounted_files_exist(config: Config) -> None:
    """Every file bind-mounted into a container (scripts, dynamic config) exists in the repository."""
    missing = []
    for name, service in _services(config).items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":", 1)[0]
            if source.startswith("/") and not Path(source).exists():
                missing.append(f"{name}: {source}")

    assert [] == missing


def test_namespace_job_registers_every_search_attribute() -> None:
    """deploy/temporal/create-namespace.sh registers exactly workflows.search_attributes.ALL, with their types."""
    type_names = {
        SearchAttributeIndexedValueType.TEXT: "Text",
        SearchAttributeIndexedValueType.KEYWORD: "Keyword",
        SearchAttributeIndexedValueType.INT: "Int",
        SearchAttributeIndexedValueType.DOUBLE: "Double",
        SearchAttributeIndexedValueType.BOOL: "Bool",
        SearchAttributeIndexedValueType.DATETIME: "Datetime",
        SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
    }
    expected = {(key.name, type_names[key.indexed_value_type]) for key in SEARCH_ATTRIBUTES}
    declared = re.search(r'^SEARCH_ATTRIBUTES="([^"]*)"', NAMESPACE_SCRIPT.read_text(), re.MULTILINE)
    assert declared is not None, f'no SEARCH_ATTRIBUTES="..." line in {NAMESPACE_SCRIPT}'

    actual = {tuple(pair.split(":", 1)) for pair in declared.group(1).split()}

    assert expected == actual


def test_dockerfile_runs_handoff_as_a_non_root_user() -> None:
    """The image's final stage runs `handoff worker` by default, as uid/gid 10001 (the `handoff` user), not root."""
    final_stage = (ROOT / "Dockerfile").read_text().rsplit("\nFROM ", 1)[1]

    assert (['ENTRYPOINT ["handoff"]', 'CMD ["worker"]'], ["10001:10001"], True) == (
        re.findall(r"^(?:ENTRYPOINT|CMD) .*$", final_stage, re.MULTILINE),
        re.findall(r"^USER\s+(\S+)", final_stage, re.MULTILINE),
        "--uid 10001 --gid handoff" in final_stage and "--gid 10001 handoff" in final_stage,
    )
