"""Every Cypher constant passes Neo4j's own parser and semantic analyzer.

The constants live in each domain's `queries.py` (and common/graph/queries.py for the
schema): all of them are collected, and Cypher found anywhere else fails the test, so a
new domain's queries cannot be missed.

No Neo4j server runs here, so Neo4j compatibility is checked with the analyzer Neo4j's
tools use (npm @neo4j-cypher/language-support, run by tools/cypher-lint/lint.mjs; `make
test` installs it). FalkorDB compatibility is the repository tests' job, on both engines.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT_DIR = ROOT / "tools" / "cypher-lint"
LINT_SCRIPT = LINT_DIR / "lint.mjs"
ANALYZER = LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
# Where Cypher may live: a `queries.py` in any package of `common`.
QUERY_MODULE = "queries.py"
SOURCE_PACKAGES = ("common", "web", "worker")

UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
# Constants named for FalkorDB are that engine's own DDL and procedures: they never reach Neo4j.
FALKORDB_ONLY = "FALKORDB_"

# Queries the analyzer must refuse: if these pass, the lint cannot fail and proves nothing.
BROKEN_PROBES: dict[str, str] = {
    "misspelt function": "MATCH (n) RETURN stDevv(n.x) AS s",
    "undefined variable": "RETURN n",
    "clause order": "RETURN 1 AS one MATCH (n)",
    "type error": "RETURN 1 + true AS x",
    "syntax error": "MATCH (n RETURN n",
    "FalkorDB index syntax": "CREATE INDEX ON :User(id)",
    "FalkorDB procedure": "CALL db.idx.fulltext.queryNodes('User', $q) YIELD node RETURN node.id",
    "FalkorDB function": "RETURN vecf32([1.0, 2.0]) AS v",
    "two statements": "MATCH (n) RETURN n.id AS id; MATCH (m) RETURN m.id AS id",
}
PROBE_PREFIX = "probe: "


def query_sources() -> list[Path]:
    """Every query module's file: common/graph/queries.py and each domain's."""
    return sorted((ROOT / "common").rglob(QUERY_MODULE))


def query_modules() -> list[ModuleType]:
    return [
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for path in query_sources()
    ]


def query_constants() -> dict[str, str]:
    """Every UPPER_SNAKE Cypher constant of every query module, named `module.NAME`;
    statement tuples item by item."""
    found: dict[str, str] = {}
    for module in query_modules():
        prefix = module.__name__.removeprefix("common.").removesuffix(".queries")
        for name, value in vars(module).items():
            if not UPPER_SNAKE.fullmatch(name) or name.startswith(FALKORDB_ONLY):
                continue
            if isinstance(value, str):
                found[f"{prefix}.{name}"] = value
            elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
                found.update(
                    {f"{prefix}.{name}[{index}]": item for index, item in enumerate(value)}
                )
    return found


def run_lint(named_queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the Cypher lint needs Node.js 20+")
    if not ANALYZER.is_dir():
        # Not a skip: CI must not go green without having linted anything.
        pytest.fail(
            f"{ANALYZER.relative_to(ROOT)} is missing: run `make test` (it runs "
            "`npm ci --prefix tools/cypher-lint`) before running pytest directly"
        )
    completed = subprocess.run(
        [node, str(LINT_SCRIPT)],
        input=json.dumps(named_queries),
        capture_output=True,
        text=True,
        cwd=LINT_DIR,
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"lint.mjs exited {completed.returncode}:\n{completed.stderr}")
    report: dict[str, list[dict[str, Any]]] = json.loads(completed.stdout)
    return report


@pytest.fixture(scope="module")
def lint_report() -> dict[str, list[dict[str, Any]]]:
    """One node run for the module's queries and the broken probes (the analyzer is slow)."""
    probes = {PROBE_PREFIX + label: query for label, query in BROKEN_PROBES.items()}
    return run_lint({**query_constants(), **probes})


def describe(name: str, query: str, diagnostic: dict[str, Any]) -> str:
    start = diagnostic.get("start") or 0
    end = diagnostic.get("end") or start
    excerpt = query[max(0, start - 30) : end + 30].replace("\n", " ")
    return (
        f"{name} line {diagnostic.get('line')} col {diagnostic.get('column')}: "
        f"{diagnostic['message']}  [...{excerpt}...]"
    )


def test_every_query_module_has_queries_to_lint() -> None:
    constants = query_constants()
    for module in query_modules():
        prefix = module.__name__.removeprefix("common.").removesuffix(".queries")
        assert any(name.startswith(prefix + ".") for name in constants), (
            f"{module.__name__} defines no UPPER_SNAKE Cypher constant"
        )


# A string that is Cypher: a clause keyword where a statement starts (or after a newline).
CYPHER = re.compile(r"(?:^|\n)\s*(?:MATCH|OPTIONAL MATCH|MERGE|CREATE|UNWIND|RETURN|CALL|SHOW)\b")


def _string_parts(node: ast.expr) -> list[str]:
    """The string literals a value is built from: literals joined with +, tuples of them
    (not a call's arguments: a regex about Cypher is not Cypher)."""
    if isinstance(node, ast.Constant):
        return [node.value] if isinstance(node.value, str) else []
    if isinstance(node, ast.BinOp):
        return _string_parts(node.left) + _string_parts(node.right)
    if isinstance(node, ast.Tuple | ast.List):
        return [part for item in node.elts for part in _string_parts(item)]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)]
    return []


def _names_a_constant(node: ast.expr) -> bool:
    """`q.READ_WINDOW`, `READ_WINDOW`, or a choice between such."""
    if isinstance(node, ast.IfExp):
        return _names_a_constant(node.body) and _names_a_constant(node.orelse)
    return isinstance(node, ast.Name | ast.Attribute)


def _inline_cypher(node: ast.AST) -> str | None:
    """What is wrong with `node`, if it is Cypher outside a query module: an executor run on
    text rather than a constant, or a constant holding Cypher."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("read", "write")
        and "executor" in ast.unparse(node.func.value)
        and node.args
        and not _names_a_constant(node.args[0])
    ):
        return "runs an executor on text, not a query constant"
    if (
        isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and any(CYPHER.search(part) for part in _string_parts(node.value))
    ):
        return "holds Cypher"
    return None


def test_cypher_lives_only_in_query_modules() -> None:
    """A Cypher string anywhere but a `queries.py` would escape the lint: none may exist, at
    module level or passed to an executor directly."""
    allowed = set(query_sources())
    problems: list[str] = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                why = _inline_cypher(node)
                if why is not None:
                    problems.append(
                        f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')} {why}"
                    )
    assert not problems, "Cypher outside a queries.py module:\n" + "\n".join(problems)


def test_the_inline_cypher_check_can_fail() -> None:
    planted = "ROGUE = 'MATCH (n) RETURN n'\nexecutor.read(f'MATCH (n) RETURN {x}')\n"
    found = [why for node in ast.walk(ast.parse(planted)) if (why := _inline_cypher(node))]
    assert found == ["holds Cypher", "runs an executor on text, not a query constant"]


def test_every_query_passes_neo4j_semantic_analysis(
    lint_report: dict[str, list[dict[str, Any]]],
) -> None:
    constants = query_constants()
    assert set(constants) <= set(lint_report)
    errors: list[str] = []
    for name, query in constants.items():
        for diagnostic in lint_report[name]:
            line = describe(name, query, diagnostic)
            if diagnostic["severity"] == "error":
                errors.append(line)
            else:
                warnings.warn(f"Cypher lint {diagnostic['severity']}: {line}", stacklevel=1)
    assert not errors, "Neo4j's analyzer rejects:\n" + "\n".join(errors)


@pytest.mark.parametrize("label", BROKEN_PROBES)
def test_lint_reports_a_broken_query(
    lint_report: dict[str, list[dict[str, Any]]], label: str
) -> None:
    diagnostics = lint_report[PROBE_PREFIX + label]
    assert any(d["severity"] == "error" for d in diagnostics), (
        f"the analyzer accepted a broken query ({label}): {BROKEN_PROBES[label]!r}"
    )


# A str.format / %-template left in a value: "{name}", "{0}", "{}", "%s", "%(name)s".
# Cypher's own braces always hold "key: value" or a map projection ".key", never these.
TEMPLATE_HOLE = re.compile(r"\{(?:[A-Za-z_]\w*|\d+)?(?:![rsa])?\}|%(?:\(\w+\))?[sdr]")


@pytest.mark.parametrize("name", sorted(query_constants()))
def test_query_has_no_template_holes(name: str) -> None:
    query = query_constants()[name]
    hole = TEMPLATE_HOLE.search(query)
    assert hole is None, f"{name} has a template hole {hole.group()!r}: pass values as $params"


def _static_parts_only(node: ast.expr) -> str | None:
    """Why `node` is not built from literals and other constants only, or None if it is."""
    if isinstance(node, ast.Constant):
        return None if isinstance(node.value, str) else f"a {type(node.value).__name__} literal"
    if isinstance(node, ast.Name):
        return None  # another module constant (_SERVICE_COLUMNS); its own value is checked
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _static_parts_only(node.left) or _static_parts_only(node.right)
    if isinstance(node, ast.Tuple):
        return next(filter(None, map(_static_parts_only, node.elts)), None)
    if isinstance(node, ast.JoinedStr):
        return "an f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return "%-formatting"
    if isinstance(node, ast.Call):
        return f"a call ({ast.unparse(node.func)})"
    return f"{type(node).__name__}"


@pytest.mark.parametrize("source", query_sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_queries_are_built_from_literals_only(source: Path) -> None:
    """Module-level Cypher is literals and constants joined with +: no f-string, format or call."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    problems: list[str] = []
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if not any(UPPER_SNAKE.fullmatch(n.lstrip("_")) for n in names):
            continue
        reason = _static_parts_only(value)
        if reason is not None:
            problems.append(f"{', '.join(names)} (line {statement.lineno}) uses {reason}")
    assert not problems, "queries must take values only through $parameters:\n" + "\n".join(
        problems
    )
