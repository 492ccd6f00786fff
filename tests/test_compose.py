"""docker-compose.yml is a valid compose file, and wires everything the worker and the API need through variables.

No docker or docker-compose binary is needed, so `make test` checks the stack on any machine: the files are read with
PyYAML and resolved here the way `docker compose config` resolves them, as far as our files need it:

- interpolation of `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `$VAR` and
  `$$`, from only the variables a test passes: never the caller's environment nor a local `.env`, so the tests see the
  defaults `docker compose up` uses on a fresh machine, and a missing required variable is refused by name;
- override files (deploy/temporal-cloud/) merged as compose merges them: mappings key by key, `environment` key by key
  in either syntax, `command` / `entrypoint` / healthcheck `test` replaced, other lists extended;
- the structure `docker compose config` would refuse to run: top-level keys, an image or a build per service,
  depends_on naming services with a known condition, the shapes of environment, ports, volumes and secrets, declared
  named volumes and secrets, restart policies and durations (test_broken_documents_are_refused shows each one bites).
  Two checks are stricter than compose: PyYAML reads YAML 1.1, where a bare `no` is false and `22:22` a base-60
  number, so restart policies and short-syntax ports must be quoted strings.

On that configuration the tests check the wiring: every service present, start order on health and finished jobs,
healthchecks, Temporal and ledger addresses and credentials, HANDOFF_* names that are settings, pinned images, mounted
files, registered search attributes, the Temporal Cloud overrides, and the image's non-root user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from temporalio.common import SearchAttributeIndexedValueType

from handoff.workers.settings import Settings
from handoff.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
NAMESPACE_SCRIPT = ROOT / "deploy" / "temporal" / "create-namespace.sh"
CLOUD_OVERRIDES = ROOT / "deploy" / "temporal-cloud"
API_KEY_OVERRIDE = CLOUD_OVERRIDES / "api-key.yml"
MTLS_OVERRIDE = CLOUD_OVERRIDES / "mtls.yml"
REQUIRED_VARIABLES = {"HANDOFF_DECISION_KEY": "decision-key-from-the-secret-store-0123456789"}
"""What an operator must set: the stack refuses to start without it (docs/operations.md)."""
CLOUD_VARIABLES = {
    **REQUIRED_VARIABLES,
    "TEMPORAL_CLOUD_ADDRESS": "billing.a1b2c.tmprl.cloud:7233",
    "TEMPORAL_CLOUD_NAMESPACE": "billing.a1b2c",
    "TEMPORAL_CLOUD_API_KEY": "key-from-the-secret-store",
    "TEMPORAL_CLIENT_CERT_FILE": "/etc/handoff/client.pem",
    "TEMPORAL_CLIENT_KEY_FILE": "/etc/handoff/client.key",
}
HANDOFF_APPS = ("worker", "api", "ledger-migrate")
ONE_SHOT_JOBS = ("temporal-admin-tools", "temporal-create-namespace", "ledger-migrate")

Config = dict[str, Any]


class ComposeFileError(Exception):
    """A compose file `docker compose` would refuse; the message says where (file, service, key) and why."""


# ---- interpolation ------------------------------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|\{(?P<braced>[^}]*)\}|(?P<unclosed>\{))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^$]*))?", re.DOTALL)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`text` with compose's `$` references resolved from `variables` alone."""

    def resolve(reference: re.Match[str]) -> str:
        if reference["escaped"]:
            return "$"
        if reference["named"]:
            return variables.get(reference["named"], "")
        braced = _BRACED.fullmatch(reference["braced"] or "")
        if braced is None:  # unclosed, `:+`, nested references: compose knows more forms than our files use
            raise ComposeFileError(
                f"cannot resolve {reference[0]!r}: this test knows ${{NAME}}, ${{NAME-default}}, ${{NAME:-default}}, "
                "${NAME?message}, ${NAME:?message}, $NAME and $$"
            )
        name, operator, argument = braced["name"], braced["operator"], braced["argument"]
        value = variables.get(name)
        # With a colon an empty variable counts as missing; without one only an unset variable does.
        missing = value is None or (value == "" and operator is not None and operator.startswith(":"))
        if not missing or operator is None:
            return value or ""
        if operator.endswith("-"):
            return str(argument)
        raise ComposeFileError(f"required variable {name} is missing a value: {argument or 'set it'}")

    return _REFERENCE.sub(resolve, text)


def _interpolate_tree(node: Any, variables: Mapping[str, str], where: str) -> Any:
    """Every string value under `node` interpolated (keys are names and stay as written, as in compose)."""
    if isinstance(node, str):
        try:
            return interpolate(node, variables)
        except ComposeFileError as error:
            raise ComposeFileError(f"{where}: {error}") from None
    if isinstance(node, dict):
        return {
            key: _interpolate_tree(value, variables, f"{where}.{key}" if where else str(key))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_interpolate_tree(item, variables, f"{where}[{index}]") for index, item in enumerate(node)]
    return node


# ---- merging override files ---------------------------------------------------------------------------------------

_REPLACED_LISTS = {"command", "entrypoint", "test"}  # `test` is a healthcheck's: a command, not a list of things


def _env_mapping(environment: Any) -> dict[str, Any]:
    """An `environment` in either syntax as a mapping; a bare `KEY` item has no value."""
    if not isinstance(environment, list):
        return dict(environment or {})
    mapping: dict[str, Any] = {}
    for item in environment:
        key, equals, value = str(item).partition("=")
        mapping[key] = value if equals else None
    return mapping


def _merge(base: Any, override: Any, key: str = "") -> Any:
    """`override` merged into `base` by compose's rules (compose-spec merge.md), as far as our files need them."""
    if key == "environment":
        return {**_env_mapping(base), **_env_mapping(override)}
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = _merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED_LISTS:
        # Compose appends; ports, volumes and secrets are also unique by target, which for our overrides (secrets on
        # services that had none) comes to appending what is not there yet.
        return base + [item for item in override if item not in base]
    return override


# ---- structure ----------------------------------------------------------------------------------------------------

TOP_LEVEL_KEYS = ("services", "volumes", "networks", "configs", "secrets", "name")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_PORT = re.compile(
    r"(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]*\]):)?(?:(?P<published>\d+(?:-\d+)?)?:)?"
    r"(?P<target>\d+(?:-\d+)?)(?:/(?:tcp|udp|sctp))?"
)
_EXPOSE = re.compile(r"\d+(?:-\d+)?(?:/(?:tcp|udp|sctp))?")
_ENV_ITEM = re.compile(r"[^=\s]+(?:=.*)?", re.DOTALL)
_RESTART = re.compile(r"no|always|unless-stopped|on-failure(?::\d+)?")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_DURATION = re.compile(f"(?:{_DURATION_PART.pattern})+")


def _volume(entry: Any) -> tuple[str, str]:
    """(source, target) of a service volume in either syntax; the source is "" for an anonymous volume."""
    if isinstance(entry, dict):
        return str(entry.get("source", "")), str(entry.get("target", ""))
    parts = str(entry).split(":")
    return ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _valid_port(port: Any) -> bool:
    if isinstance(port, dict):
        return str(port.get("target", "")).isdigit()
    match = _PORT.fullmatch(port) if isinstance(port, str) else None
    numbers = re.findall(r"\d+", f"{match['published'] or ''} {match['target']}") if match else []
    return match is not None and all(int(number) <= 65535 for number in numbers)


def _depends_on_problems(where: str, depends_on: Any, services: Config) -> list[str]:
    if isinstance(depends_on, list):  # the short syntax: started, nothing more
        depends_on = {str(name): {"condition": "service_started"} for name in depends_on}
    if not isinstance(depends_on, dict):
        return [f"{where}: must list services, or map each to {{condition: ...}}"]
    problems = [f"{where}.{name}: no such service" for name in depends_on if name not in services]
    for name, spec in depends_on.items():
        condition = spec.get("condition") if isinstance(spec, dict) else None
        if condition not in CONDITIONS:
            problems.append(f"{where}.{name}.condition: {condition!r} is not one of {', '.join(CONDITIONS)}")
    return problems


def _environment_problems(where: str, environment: Any) -> list[str]:
    if isinstance(environment, list):
        return [
            f"{where}: {item!r} is not KEY=VALUE"
            for item in environment
            if not (isinstance(item, str) and _ENV_ITEM.fullmatch(item))
        ]
    if isinstance(environment, dict):
        return [
            f"{where}.{key}: {value!r} is not a string, number or boolean"
            for key, value in environment.items()
            if not isinstance(value, str | int | float | bool | None)
        ]
    return [f"{where}: must be a mapping or a list of KEY=VALUE, not {environment!r}"]


def _service_problems(where: str, service: Config, config: Config) -> list[str]:
    problems = []
    if "image" not in service and "build" not in service:
        problems.append(f"{where}: needs an `image` or a `build`")
    problems += _depends_on_problems(f"{where}.depends_on", service.get("depends_on", {}), config["services"])
    problems += _environment_problems(f"{where}.environment", service.get("environment", {}))
    lists = {key: service.get(key, []) for key in ("ports", "expose", "volumes", "secrets")}
    for key, value in lists.items():
        if not isinstance(value, list):
            problems.append(f"{where}.{key}: must be a list, not {value!r}")
            lists[key] = []
    problems += [
        f'{where}.ports: {port!r} is neither a mapping with a target nor "[[ip:]published:]target[/protocol]" '
        "in quotes (YAML 1.1 reads an unquoted 22:22 as the number 1342)"
        for port in lists["ports"]
        if not _valid_port(port)
    ]
    problems += [
        f"{where}.expose: {port!r} is not a port" for port in lists["expose"] if not _EXPOSE.fullmatch(str(port))
    ]
    for volume in lists["volumes"]:
        source, target = _volume(volume)
        if not target.startswith("/") or str(volume).count(":") > 2:
            problems.append(f"{where}.volumes: {volume!r} is not [source:]/container/path[:mode]")
        elif source and not _is_bind(source) and source not in (config.get("volumes") or {}):
            problems.append(f"{where}.volumes: named volume {source!r} is not declared under the top-level `volumes`")
    declared_secrets = config.get("secrets") or {}
    problems += [
        f"{where}.secrets: {secret!r} is not declared under the top-level `secrets`"
        for secret in lists["secrets"]
        if (secret.get("source") if isinstance(secret, dict) else secret) not in declared_secrets
    ]
    restart = service.get("restart", "no")
    if not (isinstance(restart, str) and _RESTART.fullmatch(restart)):
        problems.append(
            f'{where}.restart: {restart!r} is not "no", always, unless-stopped or on-failure[:N] '
            '(quote "no": YAML 1.1 reads a bare no as false)'
        )
    healthcheck = service.get("healthcheck", {})
    if not isinstance(healthcheck, dict):
        return [*problems, f"{where}.healthcheck: must be a mapping"]
    test = healthcheck.get("test")
    command = isinstance(test, str) or (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE"))
    if healthcheck and not healthcheck.get("disable") and not command:
        problems.append(f"{where}.healthcheck.test: {test!r} is not a string nor a list starting CMD or CMD-SHELL")
    durations = {"stop_grace_period": service.get("stop_grace_period")} | {
        f"healthcheck.{key}": healthcheck.get(key) for key in ("interval", "timeout", "start_period", "start_interval")
    }
    problems += [
        f"{where}.{key}: {value!r} is not a duration such as 30s or 1m30s"
        for key, value in durations.items()
        if value is not None and not _DURATION.fullmatch(str(value))
    ]
    return problems


def compose_problems(config: Config) -> list[str]:
    """What `docker compose config` would refuse in a resolved configuration, one line each, naming service and key."""
    problems = [
        f"{key}: not a top-level key of a compose file ({', '.join(TOP_LEVEL_KEYS)} or x-*)"
        for key in config
        if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-")
    ]
    services = config.get("services")
    if not isinstance(services, dict) or not services:
        return [*problems, "services: a compose file needs a mapping of services"]
    for name, service in services.items():
        where = f"services.{name}"
        if not _SERVICE_NAME.fullmatch(str(name)):
            problems.append(f"{where}: a service name is letters, digits, '.', '_' and '-'")
        if isinstance(service, dict):
            problems += _service_problems(where, service, config)
        else:
            problems.append(f"{where}: a service is a mapping, not {service!r}")
    return problems


# ---- loading ------------------------------------------------------------------------------------------------------


def _label(file: Path) -> str:
    return str(file.relative_to(ROOT)) if file.is_relative_to(ROOT) else file.name


def resolve_compose(*files: Path, variables: Mapping[str, str] | None = None) -> Config:
    """The files interpolated from only `variables` and merged in order, like `docker compose -f ... -f ...`."""
    merged: Config = {}
    for file in files:
        document = yaml.safe_load(file.read_text())
        if not isinstance(document, dict):
            raise ComposeFileError(f"{_label(file)}: a compose file is a mapping of top-level keys")
        try:
            merged = _merge(merged, _interpolate_tree(document, variables or {}, ""))
        except ComposeFileError as error:
            raise ComposeFileError(f"{_label(file)}: {error}") from None
    return merged


def load_compose(*files: Path, variables: Mapping[str, str] | None = None) -> Config:
    """resolve_compose, refused with every problem listed when `docker compose config` would refuse it."""
    config = resolve_compose(*files, variables=variables)
    problems = compose_problems(config)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems)
        raise ComposeFileError(f"{' + '.join(_label(file) for file in files)} is not a valid compose file:\n{listed}")
    return config


@pytest.fixture(scope="module")
def config() -> Config:
    """docker-compose.yml with every variable at its default, and the required ones set."""
    return load_compose(COMPOSE_FILE, variables=REQUIRED_VARIABLES)


def _services(config: Config) -> dict[str, Config]:
    return dict(config["services"])


def _env(config: Config, service: str) -> dict[str, str]:
    environment = _env_mapping(_services(config)[service].get("environment"))
    return {key: str(value) for key, value in environment.items() if value is not None}


def _dependencies(service: Config) -> dict[str, str]:
    """depends_on as service → condition; the list syntax means service_started."""
    depends_on = service.get("depends_on", {})
    if isinstance(depends_on, list):
        return {name: "service_started" for name in depends_on}
    return {name: spec["condition"] for name, spec in depends_on.items()}


def _port_target(port: Any) -> str:
    """The container side of a published port, in either syntax."""
    if isinstance(port, dict):
        return str(port["target"])
    match = _PORT.fullmatch(str(port))
    assert match is not None, f"not a port: {port!r}"
    return match["target"]


def _seconds(duration: str) -> float:
    """A compose duration ("45s", "1m30s") in seconds."""
    assert _DURATION.fullmatch(duration), f"not a duration: {duration!r}"
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(duration))


# ---- the loader itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${V}", {"V": "x"}, "x"),
        ("${V}", {}, ""),
        ("$V/x", {"V": "v"}, "v/x"),
        ("${V:-d}", {}, "d"),
        ("${V:-d}", {"V": ""}, "d"),
        ("${V-d}", {}, "d"),
        ("${V-d}", {"V": ""}, ""),
        ("${V:?m}", {"V": "x"}, "x"),
        ("${V?m}", {"V": ""}, ""),
        ("$$V and $${V}", {"V": "x"}, "$V and ${V}"),
        ("a $ b", {}, "a $ b"),
        ("${A:-a}:${B:-b}", {"B": "set"}, "a:set"),
    ],
)
def test_interpolation_resolves_like_compose(text: str, variables: dict[str, str], expected: str) -> None:
    """Defaults apply to unset variables, with a colon to empty ones too; `$$` is a literal `$`."""
    assert expected == interpolate(text, variables)


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${V:?set V to the address}", {}, "required variable V is missing a value: set V to the address"),
        ("${V:?set V}", {"V": ""}, "required variable V is missing a value: set V"),
        ("${V?set V}", {}, "required variable V is missing a value: set V"),
        ("${V", {}, "cannot resolve '${'"),
        ("${V:+alt}", {}, "cannot resolve '${V:+alt}'"),
        ("${V:-${W}}", {}, "cannot resolve '${V:-${W}'"),
    ],
)
def test_interpolation_refuses_missing_and_unknown(text: str, variables: dict[str, str], expected: str) -> None:
    """A required variable that is missing is named; a form this loader does not know is refused, not guessed."""
    with pytest.raises(ComposeFileError, match=re.escape(expected)):
        interpolate(text, variables)


def test_the_callers_environment_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable exported in the shell running the tests does not change what they check."""
    monkeypatch.setenv("HANDOFF_NAMESPACE", "somewhere-else")

    assert "default" == _env(load_compose(COMPOSE_FILE, variables=REQUIRED_VARIABLES), "worker")["HANDOFF_NAMESPACE"]


def test_overrides_merge_like_compose() -> None:
    """Mappings merge key by key, environment in either syntax too; commands are replaced, other lists extended."""
    base = {
        "services": {
            "s": {
                "image": "a:1",
                "command": ["run", "a"],
                "environment": ["A=1", "B=2"],
                "expose": ["1"],
                "healthcheck": {"test": ["CMD", "a"], "interval": "5s"},
            }
        }
    }
    override = {
        "services": {
            "s": {
                "command": ["run"],
                "environment": {"B": "3"},
                "expose": ["1", "2"],
                "healthcheck": {"test": ["NONE"]},
            },
            "t": {"image": "t:1"},
        }
    }
    expected = {
        "services": {
            "s": {
                "image": "a:1",
                "command": ["run"],
                "environment": {"A": "1", "B": "3"},
                "expose": ["1", "2"],
                "healthcheck": {"test": ["NONE"], "interval": "5s"},
            },
            "t": {"image": "t:1"},
        }
    }

    assert expected == _merge(base, override)


VALID_DOCUMENT = """\
name: example
x-env: &env
  LOG_LEVEL: ${LOG_LEVEL:-INFO}
services:
  db:
    image: postgres:17.6
    volumes:
      - data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 5s
  app:
    build: {context: .}
    image: app:${APP_TAG:-1.0}
    depends_on:
      db:
        condition: service_healthy
    environment:
      <<: *env
      DEBUG: "0"
    ports:
      - "127.0.0.1:8000:8000"
    secrets: [token]
    restart: unless-stopped
    stop_grace_period: 45s
volumes:
  data:
secrets:
  token:
    file: ./token.txt
"""


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "compose.yml"
    file.write_text(text)
    return file


def test_a_valid_document_loads(tmp_path: Path) -> None:
    """The example every broken document below is one edit away from loads, merge keys and defaults resolved."""
    app = load_compose(_write(tmp_path, VALID_DOCUMENT))["services"]["app"]

    assert ("app:1.0", {"db": "service_healthy"}, {"LOG_LEVEL": "INFO", "DEBUG": "0"}) == (
        app["image"],
        _dependencies(app),
        app["environment"],
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "condition: service_healthy",
            "condition: service_ready",
            "services.app.depends_on.db.condition: 'service_ready'",
        ),
        (
            "      db:\n        condition",
            "      cache:\n        condition",
            "services.app.depends_on.cache: no such service",
        ),
        (
            "    build: {context: .}\n    image: app:${APP_TAG:-1.0}\n",
            "",
            "services.app: needs an `image` or a `build`",
        ),
        ('"127.0.0.1:8000:8000"', '"8000:8000:8000"', "services.app.ports: '8000:8000:8000'"),
        ('"127.0.0.1:8000:8000"', '"127.0.0.1:80000:8000"', "services.app.ports: '127.0.0.1:80000:8000'"),
        ('"127.0.0.1:8000:8000"', "22:22", "services.app.ports: 1342"),
        ('DEBUG: "0"', "DEBUG: {verbose: true}", "services.app.environment.DEBUG: {'verbose': True}"),
        ("- data:/var/lib", "- cache:/var/lib", "services.db.volumes: named volume 'cache' is not declared"),
        ("- data:/var/lib/postgresql/data", "- data:var/lib", "services.db.volumes: 'data:var/lib'"),
        ("secrets: [token]", "secrets: [tokens]", "services.app.secrets: 'tokens' is not declared"),
        ("restart: unless-stopped", "restart: no", "services.app.restart: False"),
        ("stop_grace_period: 45s", "stop_grace_period: 45 seconds", "services.app.stop_grace_period: '45 seconds'"),
        ("interval: 5s", "interval: often", "services.db.healthcheck.interval: 'often'"),
        ('test: ["CMD", "pg_isready"]', 'test: ["pg_isready"]', "services.db.healthcheck.test: ['pg_isready']"),
        ("\nvolumes:\n  data:", "\nvolume:\n  data:", "volume: not a top-level key"),
        ("${APP_TAG:-1.0}", "${APP_TAG:?set APP_TAG}", "services.app.image: required variable APP_TAG is missing"),
    ],
)
def test_broken_documents_are_refused(tmp_path: Path, old: str, new: str, expected: str) -> None:
    """One edit compose would refuse (or YAML 1.1 would misread) is refused, naming the service and the key."""
    assert old in VALID_DOCUMENT, "the edit no longer applies to VALID_DOCUMENT"
    file = _write(tmp_path, VALID_DOCUMENT.replace(old, new, 1))

    with pytest.raises(ComposeFileError, match=re.escape(expected)):
        load_compose(file)


# ---- docker-compose.yml -------------------------------------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    """docker-compose.yml with every variable at its default passes every structural check."""
    assert [] == compose_problems(resolve_compose(COMPOSE_FILE, variables=REQUIRED_VARIABLES))


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

    actual = {name: _dependencies(service) for name, service in _services(config).items()}

    assert expected == actual


def test_services_waited_on_as_healthy_have_a_healthcheck(config: Config) -> None:
    """A `service_healthy` condition on a service without a healthcheck would never be met."""
    services = _services(config)
    waited_on = {
        dependency
        for service in services.values()
        for dependency, condition in _dependencies(service).items()
        if condition == "service_healthy"
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


def test_every_handoff_process_runs_the_same_app(config: Config) -> None:
    """Worker, API and migrate job name one app: by default the example the image ships (examples/)."""
    apps = {app: _env(config, app)["HANDOFF_APP"] for app in HANDOFF_APPS}

    assert {app: "examples.restaurant:app" for app in HANDOFF_APPS} == apps
    assert (ROOT / "examples" / "restaurant" / "__init__.py").exists()


def test_ledger_urls_point_at_the_ledger_database(config: Config) -> None:
    """HANDOFF_DATABASE_URL and the example app's RESTAURANT_DATABASE_URL use psycopg 3 and ledger-db's own user,
    password and databases."""
    ledger = _env(config, "ledger-db")
    server = ("postgresql+psycopg", ledger["POSTGRES_USER"], ledger["POSTGRES_PASSWORD"], "ledger-db", 5432)
    expected = {
        "HANDOFF_DATABASE_URL": (*server, "/" + ledger["POSTGRES_DB"]),
        "RESTAURANT_DATABASE_URL": (*server, "/" + ledger["HANDOFF_SYSTEMS_DB"]),
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


@pytest.mark.parametrize("override", [None, API_KEY_OVERRIDE, MTLS_OVERRIDE], ids=["bundled", "api-key", "mtls"])
def test_handoff_variables_are_settings(override: Path | None) -> None:
    """Every HANDOFF_* variable given to a Handoff process names a field of workers/settings.py (no typos)."""
    files = (COMPOSE_FILE,) if override is None else (COMPOSE_FILE, override)
    config = load_compose(*files, variables=CLOUD_VARIABLES)
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
    env = _env(config, "api")

    targets = [_port_target(port) for port in _services(config)["api"]["ports"]]

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
            source, _ = _volume(volume)
            # Compose resolves relative sources against the first file's directory, the repository root.
            if _is_bind(source) and not (ROOT / Path(source).expanduser()).exists():
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


# ---- Temporal Cloud overrides -------------------------------------------------------------------------------------


@pytest.mark.parametrize("override", [API_KEY_OVERRIDE, MTLS_OVERRIDE], ids=["api-key", "mtls"])
def test_cloud_overrides_change_only_the_worker_and_api(config: Config, override: Path) -> None:
    """With an override the stack is still valid, and only the worker and the API differ from the bundled stack."""
    overridden = load_compose(COMPOSE_FILE, override, variables=CLOUD_VARIABLES)

    changed = {name for name, service in _services(overridden).items() if service != _services(config).get(name)}

    assert {"worker", "api"} == changed


def test_api_key_override_points_the_apps_at_the_cloud_namespace(config: Config) -> None:
    """Worker and API get the Cloud endpoint, namespace and API key, and keep the ledger and every other setting."""
    overridden = load_compose(COMPOSE_FILE, API_KEY_OVERRIDE, variables=CLOUD_VARIABLES)
    cloud = {
        "HANDOFF_TEMPORAL_ADDRESS": CLOUD_VARIABLES["TEMPORAL_CLOUD_ADDRESS"],
        "HANDOFF_NAMESPACE": CLOUD_VARIABLES["TEMPORAL_CLOUD_NAMESPACE"],
        "HANDOFF_API_KEY": CLOUD_VARIABLES["TEMPORAL_CLOUD_API_KEY"],
    }

    for app in ("worker", "api"):
        assert {**_env(config, app), **cloud} == _env(overridden, app), app


def test_mtls_override_mounts_the_client_certificate_the_apps_read(config: Config) -> None:
    """Worker and API read the certificate and key from the secrets they mount, made from the files named."""
    overridden = load_compose(COMPOSE_FILE, MTLS_OVERRIDE, variables=CLOUD_VARIABLES)
    cloud = {
        "HANDOFF_TEMPORAL_ADDRESS": CLOUD_VARIABLES["TEMPORAL_CLOUD_ADDRESS"],
        "HANDOFF_NAMESPACE": CLOUD_VARIABLES["TEMPORAL_CLOUD_NAMESPACE"],
        "HANDOFF_TLS_CERT": "/run/secrets/temporal-client-cert",
        "HANDOFF_TLS_KEY": "/run/secrets/temporal-client-key",
    }
    secret_files = {
        "temporal-client-cert": {"file": CLOUD_VARIABLES["TEMPORAL_CLIENT_CERT_FILE"]},
        "temporal-client-key": {"file": CLOUD_VARIABLES["TEMPORAL_CLIENT_KEY_FILE"]},
    }

    assert secret_files == overridden["secrets"]
    for app in ("worker", "api"):
        assert {**_env(config, app), **cloud} == _env(overridden, app), app
        assert ["temporal-client-cert", "temporal-client-key"] == _services(overridden)[app]["secrets"], app


def test_the_stack_refuses_to_start_without_a_decision_key(config: Config) -> None:
    """Workers and the API attest and verify decisions with one secret: without it, nothing starts; with it, every
    Handoff process has the same."""
    with pytest.raises(ComposeFileError, match="required variable HANDOFF_DECISION_KEY is missing a value"):
        load_compose(COMPOSE_FILE)
    keys = {app: _env(config, app)["HANDOFF_DECISION_KEY"] for app in HANDOFF_APPS}
    assert {app: REQUIRED_VARIABLES["HANDOFF_DECISION_KEY"] for app in HANDOFF_APPS} == keys


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        (API_KEY_OVERRIDE, "TEMPORAL_CLOUD_ADDRESS"),
        (API_KEY_OVERRIDE, "TEMPORAL_CLOUD_NAMESPACE"),
        (API_KEY_OVERRIDE, "TEMPORAL_CLOUD_API_KEY"),
        (MTLS_OVERRIDE, "TEMPORAL_CLOUD_ADDRESS"),
        (MTLS_OVERRIDE, "TEMPORAL_CLOUD_NAMESPACE"),
        (MTLS_OVERRIDE, "TEMPORAL_CLIENT_CERT_FILE"),
        (MTLS_OVERRIDE, "TEMPORAL_CLIENT_KEY_FILE"),
    ],
)
def test_cloud_overrides_refuse_a_missing_variable(override: Path, variable: str) -> None:
    """Without one of its variables an override is refused by name, not started against the bundled Temporal."""
    variables = {name: value for name, value in CLOUD_VARIABLES.items() if name != variable}

    with pytest.raises(ComposeFileError, match=f"required variable {variable} is missing a value"):
        load_compose(COMPOSE_FILE, override, variables=variables)
