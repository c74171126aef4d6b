"""Every Cypher constant passes Neo4j's own parser and semantic analyzer.

No Neo4j server runs here, so Neo4j compatibility is checked with the analyzer Neo4j's
tools use (npm @neo4j-cypher/language-support, run by tools/cypher-lint/lint.mjs; `make
test` installs it). FalkorDB compatibility is the contract tests' job (test_store.py).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from common.graph import queries

ROOT = Path(__file__).resolve().parents[3]
LINT_DIR = ROOT / "tools" / "cypher-lint"
LINT_SCRIPT = LINT_DIR / "lint.mjs"
ANALYZER = LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support"
QUERIES_SOURCE = Path(queries.__file__)

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


def query_constants() -> dict[str, str]:
    """Every UPPER_SNAKE Cypher constant of the module; statement tuples item by item."""
    found: dict[str, str] = {}
    for name, value in vars(queries).items():
        if not UPPER_SNAKE.fullmatch(name) or name.startswith(FALKORDB_ONLY):
            continue
        if isinstance(value, str):
            found[name] = value
        elif isinstance(value, tuple) and all(isinstance(item, str) for item in value):
            found.update({f"{name}[{index}]": item for index, item in enumerate(value)})
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


def test_module_has_queries_to_lint() -> None:
    assert query_constants(), "common.graph.queries defines no UPPER_SNAKE Cypher constant"


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


def test_queries_are_built_from_literals_only() -> None:
    """Module-level Cypher is literals and constants joined with +: no f-string, format or call."""
    tree = ast.parse(QUERIES_SOURCE.read_text(encoding="utf-8"))
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
