"""docker-compose.yml: valid against the Compose Specification, and consistent with the code.

No Docker engine runs here, so `docker compose config/up` cannot; dclint validates the file
against the Compose Specification's JSON schema, and these tests check what a schema cannot:
that every variable is a setting, every command imports, every port matches.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from tests.deploy.deploy_files import (
    APP_SERVICES,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    FLOWER_ONLY,
    ROOT,
    dclint,
    interpolate,
    interpolated_names,
    load_compose,
    service_environment,
    settings_env_names,
)

# What `docker compose` would see with a filled-in .env (only the required values set).
REQUIRED_FOR_TEST = {"NEO4J_PASSWORD": "test-password-1", "FLOWER_BASIC_AUTH": "admin:secret"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_compose_file_passes_the_spec_schema_and_dclint() -> None:
    findings = dclint(COMPOSE_FILE)
    assert not findings, "\n".join(
        f"line {f['line']}: {f['type']} {f['rule']}: {f['message']}" for f in findings
    )


def test_dclint_rejects_a_compose_file_outside_the_spec(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "    depends_on:\n"
        "      db:\n"
        "        condition: healthy\n"  # not one of the spec's conditions
        "    restart_policy: always\n",  # not a service key
        encoding="utf-8",
    )
    rules = {f["rule"] for f in dclint(broken)}
    assert "invalid-schema" in rules


def test_the_stack_has_the_production_services(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"neo4j", "redis", *APP_SERVICES}


def test_app_environment_holds_only_settings(compose: dict[str, Any]) -> None:
    allowed = settings_env_names()
    for name in APP_SERVICES:
        environment = set(service_environment(services(compose)[name]))
        extra = environment - allowed - (FLOWER_ONLY if name == "flower" else set())
        assert not extra, (
            f"{name} sets {sorted(extra)}, which common.settings.Settings does not read"
        )


def test_flower_login_comes_from_the_environment(compose: dict[str, Any]) -> None:
    flower = service_environment(services(compose)["flower"])
    value = flower.get("FLOWER_BASIC_AUTH") or ""
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?[^}]*\}", value), (
        "FLOWER_BASIC_AUTH must be required from .env, never written in the file"
    )


def test_secrets_are_required_from_the_environment_not_written_down(
    compose: dict[str, Any],
) -> None:
    for name in (*APP_SERVICES, "neo4j"):
        for key, value in service_environment(services(compose)[name]).items():
            if value and re.search(r"PASSWORD|AUTH", key):
                assert "${NEO4J_PASSWORD:?" in value or "${FLOWER_BASIC_AUTH:?" in value, (
                    f"{name}: {key} has a literal secret"
                )


def resolved_environment(service: dict[str, Any]) -> dict[str, str]:
    """The container environment compose would give `service`, with only the required .env."""
    environment: dict[str, str] = {}
    for key, value in service_environment(service).items():
        if value is None:
            continue  # passed through only when set: unset here, the Settings default applies
        environment[key] = interpolate(value, REQUIRED_FOR_TEST)
    return environment


def command_target(command: list[str]) -> str:
    """The module:attribute a service's command names."""
    if command[0] == "uvicorn":
        return command[1]
    if command[0] == "celery":
        return command[command.index("-A") + 1]
    raise AssertionError(f"unexpected command {command}")


def test_every_command_names_an_app_that_imports_with_the_compose_environment(
    compose: dict[str, Any],
) -> None:
    """Each service's module:attribute imports, and its environment is valid Settings.

    In a child process, with only the environment compose would set (nothing connects at
    import: the graph and Redis are reached later), so nothing here needs Neo4j or Redis.
    """
    expected_types = {"web.main:app": "fastapi.FastAPI", "worker.celery_app:app": "celery.Celery"}
    for name in APP_SERVICES:
        service = services(compose)[name]
        command = service["command"]
        assert isinstance(command, list), f"{name}: exec form, so signals reach the process"
        target = command_target(command)
        assert target in expected_types, f"{name} runs {target}"
        module, attribute = target.split(":")
        type_module, type_name = expected_types[target].rsplit(".", 1)
        probe = (
            "import importlib, sys\n"
            "from common.settings import Settings\n"
            "Settings(_env_file=None)\n"
            f"obj = getattr(importlib.import_module({module!r}), {attribute!r})\n"
            f"cls = getattr(importlib.import_module({type_module!r}), {type_name!r})\n"
            "assert isinstance(obj, cls), type(obj)\n"
        )
        environment = {
            key: value
            for key, value in os.environ.items()
            if key.upper() not in settings_env_names() and key not in FLOWER_ONLY
        }
        environment.update(resolved_environment(service))
        environment["PYTHONPATH"] = str(ROOT)
        completed = subprocess.run(
            [sys.executable, "-c", probe],
            env=environment,
            cwd=ROOT / "tests",  # not the repo root: no .env of a developer is read
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, f"{name}: {target} does not load:\n{completed.stderr}"


def published_container_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports", []):
        text = interpolate(str(entry), {})
        ports.add(int(text.rsplit(":", 1)[-1].split("/")[0]))
    return ports


def command_port(command: list[str]) -> int:
    for index, part in enumerate(command):
        if part == "--port":
            return int(command[index + 1])
        if part.startswith("--port="):
            return int(part.split("=", 1)[1])
    raise AssertionError(f"no --port in {command}")


def test_published_ports_are_the_ports_the_commands_listen_on(compose: dict[str, Any]) -> None:
    web, flower = services(compose)["web"], services(compose)["flower"]
    assert published_container_ports(web) == {command_port(web["command"])} == {8000}
    assert published_container_ports(flower) == {command_port(flower["command"])} == {5555}
    assert (
        "--host" in web["command"]
        and web["command"][web["command"].index("--host") + 1] == "0.0.0.0"
    )
    for name in ("neo4j", "redis", "worker", "sweeper", "deliveries", "beat"):
        assert not services(compose)[name].get("ports"), f"{name} publishes nothing"


def test_jobs_deliveries_and_sweeps_have_workers_of_their_own(compose: dict[str, Any]) -> None:
    """Deliveries only on `deliveries`; sweeps on `sweeper` alone, so that long jobs never
    hold them up, and beside the jobs on `worker`, which scales both."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    queues = {
        name: interpolate(
            next(a for a in services(compose)[name]["command"] if a.startswith("--queues=")), {}
        )
        for name in ("worker", "deliveries", "sweeper")
    }
    assert queues == {
        "worker": f"--queues={defaults.job_queue},{defaults.sweep_queue}",
        "deliveries": f"--queues={defaults.delivery_queue}",
        "sweeper": f"--queues={defaults.sweep_queue}",
    }


def test_flower_is_published_on_loopback_only(compose: dict[str, Any]) -> None:
    (entry,) = services(compose)["flower"]["ports"]
    assert interpolate(str(entry), {}).startswith("127.0.0.1:")


def test_beat_runs_exactly_once(compose: dict[str, Any]) -> None:
    beat = services(compose)["beat"]
    assert beat.get("deploy", {}).get("replicas") == 1
    assert "scale" not in beat


def test_beat_keeps_its_schedule_on_a_volume(compose: dict[str, Any]) -> None:
    beat = services(compose)["beat"]
    command = beat["command"]
    schedule = command[command.index("--schedule") + 1]
    mounts = [str(volume).split(":")[1] for volume in beat.get("volumes", [])]
    assert any(schedule.startswith(mount.rstrip("/") + "/") for mount in mounts), (schedule, mounts)
    assert str(beat["volumes"][0]).split(":")[0] in compose["volumes"]


def test_python_services_wait_for_healthy_stores(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends_on = services(compose)[name]["depends_on"]
        for store in ("neo4j", "redis"):
            assert depends_on[store]["condition"] == "service_healthy", (name, store)
    for store in ("neo4j", "redis"):
        assert services(compose)[store]["healthcheck"]["test"], store


def test_services_run_the_role_images(compose: dict[str, Any]) -> None:
    for name, role in APP_SERVICES.items():
        service = services(compose)[name]
        assert service["build"]["dockerfile"] == f"Dockerfile.{role}", name
        assert service["image"].split(":")[0] == f"neonomaly-{role}", name


def test_neo4j_is_5_community_with_auth_from_the_app_password(compose: dict[str, Any]) -> None:
    neo4j = services(compose)["neo4j"]
    assert re.fullmatch(r"neo4j:5(\.\d+)*-community", neo4j["image"]), neo4j["image"]
    auth = service_environment(neo4j)["NEO4J_AUTH"] or ""
    assert auth.startswith("neo4j/${NEO4J_PASSWORD:?"), auth
    assert interpolate(auth, REQUIRED_FOR_TEST) == "neo4j/" + REQUIRED_FOR_TEST["NEO4J_PASSWORD"]
    assert "/data" in [str(v).split(":")[1] for v in neo4j["volumes"]]
    # The healthcheck reads the password from NEO4J_AUTH in the container ($$ is escaped).
    assert "cypher-shell" in " ".join(neo4j["healthcheck"]["test"])


def test_app_graph_settings_point_at_the_compose_neo4j_and_redis(compose: dict[str, Any]) -> None:
    environment = resolved_environment(services(compose)["web"])
    assert environment["GRAPH_URL"] == "neo4j://neo4j:7687"
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["NEO4J_USER"] == "neo4j"


def test_redis_keeps_jobs(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-alpine)?", redis["image"]), redis["image"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "/data" in [str(v).split(":")[1] for v in redis["volumes"]]


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = interpolated_names(COMPOSE_FILE.read_text(encoding="utf-8"))
    compose = load_compose()
    for name in APP_SERVICES:
        used |= {
            key
            for key, value in service_environment(services(compose)[name]).items()
            if value is None
        }
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(encoding="utf-8"), re.M)
    )
    assert not used - documented, f"document in .env.example: {sorted(used - documented)}"
