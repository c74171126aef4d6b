""".github/workflows/ci.yml: valid for GitHub Actions, and runs `make test` against Neo4j 5.

It cannot run here (no Docker engine); action-validator checks it against SchemaStore's
workflow schema, and these tests check that it wires the Neo4j service to the suite.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import CI_WORKFLOW, ROOT, node_tool


def action_validator(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*node_tool("@action-validator", "cli", "cli.mjs"), str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    workflow = yaml.safe_load(CI_WORKFLOW.read_text(encoding="utf-8"))
    (only_job,) = workflow["jobs"].values()
    found: dict[str, Any] = only_job
    return found


def test_workflow_passes_the_workflow_schema() -> None:
    completed = action_validator(CI_WORKFLOW)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_action_validator_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-onn: ubuntu-24.04\n    steps: []\n")
    assert action_validator(broken).returncode != 0


def options(service: dict[str, Any]) -> str:
    return " ".join(str(service.get("options", "")).split())


def test_neo4j_service_container_is_healthy_before_the_tests(job: dict[str, Any]) -> None:
    neo4j = job["services"]["neo4j"]
    assert str(neo4j["image"]).startswith("neo4j:5")
    assert "7687:7687" in [str(port) for port in neo4j["ports"]]
    assert "--health-cmd" in options(neo4j)
    assert "cypher-shell" in options(neo4j)


def test_suite_gets_the_neo4j_address_and_login(job: dict[str, Any]) -> None:
    environment = job["env"]
    assert environment["NEO4J_TEST_URI"] == "bolt://localhost:7687"
    user, password = str(job["services"]["neo4j"]["env"]["NEO4J_AUTH"]).split("/", 1)
    assert environment["NEO4J_TEST_USER"] == user
    assert environment["NEO4J_TEST_PASSWORD"] == password
    assert f"-u {user} -p {password}" in options(job["services"]["neo4j"])


def test_steps_run_make_test_on_python_311_and_node_20(job: dict[str, Any]) -> None:
    steps = job["steps"]
    runs = [str(step.get("run", "")).strip() for step in steps]
    assert "make test" in runs
    versions = {
        str(step["uses"]).split("@")[0]: str(step.get("with", {}).get(key, ""))
        for step in steps
        if "uses" in step
        for key in ("python-version", "node-version")
        if key in step.get("with", {})
    }
    assert versions == {"actions/setup-python": "3.11", "actions/setup-node": "20"}
