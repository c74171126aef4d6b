"""Dockerfile.web and Dockerfile.worker: hadolint-clean, multi-stage, non-root, one role each.

No Docker engine runs here, so the images are not built; these checks read the files.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy.deploy_files import DOCKERFILES, ROOT, hadolint_command

ROLE_REQUIREMENTS = {"web": "requirements/web.txt", "worker": "requirements/worker.txt"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|BASIC_AUTH|CREDENTIAL", re.IGNORECASE)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), [*line.split(None, 1), ""][1]) for line in logical]


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(dockerfile):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def hadolint(path: Path) -> list[dict[str, object]]:
    completed = subprocess.run(
        [
            hadolint_command(),
            "--no-color",
            "--format",
            "json",
            "--failure-threshold",
            "none",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Its exit status says whether it found something; the JSON says what.
    try:
        findings: list[dict[str, object]] = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"hadolint gave no JSON (exit {completed.returncode}): {completed.stderr}")
    return findings


@pytest.mark.parametrize("role", DOCKERFILES)
def test_hadolint_finds_nothing(role: str) -> None:
    findings = hadolint(DOCKERFILES[role])
    assert not findings, "\n".join(
        f"{DOCKERFILES[role].name}:{f['line']} {f['code']} {f['level']}: {f['message']}"
        for f in findings
    )


@pytest.mark.parametrize("role", DOCKERFILES)
def test_every_hadolint_ignore_gives_its_reason(role: str) -> None:
    lines = DOCKERFILES[role].read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.search(r"#\s*hadolint\s+(global\s+)?ignore=", line):
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and len(reason) > 10, (
                f"{DOCKERFILES[role].name}:{number + 1}: give the reason on the line above"
            )


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install flask\nCMD python app.py\n", encoding="utf-8")
    codes = {str(f["code"]) for f in hadolint(bad)}
    # untagged image, unpinned pip package, pip cache kept, shell-form CMD
    assert {"DL3006", "DL3013", "DL3042", "DL3025"} <= codes


@pytest.mark.parametrize("role", DOCKERFILES)
def test_image_builds_in_one_stage_and_runs_from_a_clean_one(role: str) -> None:
    build_stages = stages(DOCKERFILES[role])
    assert len(build_stages) >= 2, "a build stage and a runtime stage"
    runtime = build_stages[-1]
    base = runtime[0][1].split()[0]
    assert re.fullmatch(r"python:3\.12(\.\d+)?-slim(-\w+)?", base), base
    for _, arguments in runtime:
        assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make)\b", arguments), (
            f"the runtime stage installs a compiler: {arguments}"
        )
    copies_from_build = [args for name, args in runtime if name == "COPY" and "--from=" in args]
    assert copies_from_build, "the runtime stage takes what the build stage made"


@pytest.mark.parametrize("role", DOCKERFILES)
def test_image_runs_as_a_numeric_non_root_user(role: str) -> None:
    runtime = stages(DOCKERFILES[role])[-1]
    users = [args for name, args in runtime if name == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: numeric and not root"


@pytest.mark.parametrize("role", DOCKERFILES)
def test_image_installs_only_its_role_requirements(role: str) -> None:
    text = " ".join(args for _, args in instructions(DOCKERFILES[role]))
    used = set(re.findall(r"requirements/\w+\.txt", text))
    assert ROLE_REQUIREMENTS[role] in used
    # constraints.txt only fixes versions (base.txt names it with -c); it installs nothing.
    # build.txt (the protobuf compiler) is installed in a build stage's venv, not the image's.
    shared = {"requirements/base.txt", "requirements/constraints.txt", "requirements/build.txt"}
    assert used <= {ROLE_REQUIREMENTS[role], *shared}, used


@pytest.mark.parametrize("role", DOCKERFILES)
def test_no_secret_is_baked_into_the_image(role: str) -> None:
    for name, arguments in instructions(DOCKERFILES[role]):
        if name in ("ENV", "ARG", "LABEL"):
            assert not SECRET_NAME.search(arguments), (
                f"{name} {arguments}: secrets come at run time"
            )


def test_web_image_serves_port_8000_with_a_health_check() -> None:
    runtime = stages(DOCKERFILES["web"])[-1]
    by_name = {name: args for name, args in runtime}
    assert by_name.get("EXPOSE", "").split() == ["8000"]
    assert "http://127.0.0.1:8000/health" in by_name.get("HEALTHCHECK", "")
    command = json.loads(by_name["CMD"])
    assert command[:2] == ["uvicorn", "web.main:app"]
    assert command[command.index("--port") + 1] == "8000"


def test_worker_image_runs_the_celery_worker_by_default() -> None:
    runtime = stages(DOCKERFILES["worker"])[-1]
    command = json.loads(dict(runtime)["CMD"])
    assert command[:4] == ["celery", "-A", "worker.celery_app:app", "worker"]


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: * and ? stay within a path segment, ** spans segments."""
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        elif pattern[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif pattern[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(pattern[index]), index + 1
    return re.compile(out)


def dockerignore_excludes(relative: str) -> bool:
    """Whether .dockerignore leaves `relative` out of the build context.

    A pattern that matches a directory matches everything in it; the last matching line
    wins, and a line starting with ! brings a path back.
    """
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        regex = _dockerignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("role", DOCKERFILES)
def test_every_copied_path_exists_and_reaches_the_build_context(role: str) -> None:
    for name, arguments in instructions(DOCKERFILES[role]):
        if name != "COPY" or "--from=" in arguments:
            continue
        *sources, _ = [part for part in arguments.split() if not part.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignore_excludes(source.rstrip("/")), (
                f"COPY {source}: .dockerignore drops it"
            )


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    for path in (
        ".env",
        ".venv/bin/python",
        ".neonomaly/dump.rdb",
        ".git/config",
        "tests/conftest.py",
    ):
        assert dockerignore_excludes(path), path
    assert dockerignore_excludes("common/__pycache__/settings.cpython-312.pyc")


@pytest.mark.parametrize("role", DOCKERFILES)
def test_image_copies_what_the_package_build_needs(role: str) -> None:
    """pip install . in the build stage needs pyproject's readme and every package it finds."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = {
        source.rstrip("/")
        for name, arguments in instructions(DOCKERFILES[role])
        if name == "COPY" and "--from=" not in arguments
        for source in arguments.split()[:-1]
    }
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        assert readme in copied
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    wanted = {name for name in packages if any(fnmatch.fnmatch(name, pat) for pat in patterns)}
    assert wanted <= copied, f"packages the build would miss: {wanted - copied}"
