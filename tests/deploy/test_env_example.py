""".env.example documents every setting with its real default, and commits no secret."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import TypeAdapter

from common.settings import Settings
from tests.deploy.deploy_files import COMPOSE_FILE, ENV_EXAMPLE, FLOWER_ONLY, interpolated_names

# KEY=value, or "# KEY=value" for a default left as it is.
ASSIGNMENT = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# Values compose cannot do without; .env.example leaves them empty for the operator to fill.
REQUIRED = {"NEO4J_PASSWORD", *FLOWER_ONLY}


def documented() -> dict[str, list[tuple[bool, str]]]:
    """Each variable of .env.example: (commented out?, value) for every line that sets it."""
    found: dict[str, list[tuple[bool, str]]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            found.setdefault(match["name"], []).append((bool(match["commented"]), match["value"]))
    return found


def unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented_once_with_its_default(field: str) -> None:
    name = field.upper()
    lines = documented().get(name, [])
    assert len(lines) == 1, f".env.example should show {name}= exactly once (found {len(lines)})"
    commented, value = lines[0]
    info = Settings.model_fields[field]
    if name in REQUIRED:
        assert not commented and value == "", f"{name}= is left empty for the operator to set"
        return
    assert commented, (
        f"{name}: leave the default commented out, so copying the file changes nothing"
    )
    shown: Any = TypeAdapter(info.annotation).validate_python(unquoted(value) or None)
    assert shown == info.default, (
        f"{name}: .env.example says {value!r}, the default is {info.default!r}"
    )


def test_no_secret_is_committed() -> None:
    for name in REQUIRED:
        assert documented().get(name) == [(False, "")], f"{name} must be empty in .env.example"


def test_every_documented_variable_is_used() -> None:
    settings = {field.upper() for field in Settings.model_fields}
    compose = interpolated_names(COMPOSE_FILE.read_text(encoding="utf-8"))
    stale = set(documented()) - settings - compose - FLOWER_ONLY
    assert not stale, f".env.example documents variables nothing reads: {sorted(stale)}"
