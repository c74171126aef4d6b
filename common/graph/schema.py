"""Constraints and indexes, per engine: the one part of the graph that is not shared Cypher.

`ensure_schema` lists what exists and creates what is missing, so it is safe on every start.
Two processes starting at once (uvicorn's workers, a web app beside a worker) can both find
an index missing; the later create then fails, and a second look finds the index in place,
which is success. Whether a failed create means "it is there already" is decided by that
look, never by the wording of an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.graph import queries as q
from common.graph.executors import CypherExecutor

# FALKORDB_SCHEMA's statements: CREATE INDEX FOR (x:Label) ON (x.a, x.b)
_FALKORDB_INDEX = re.compile(r"CREATE INDEX FOR \((\w+):(\w+)\) ON \(([^)]*)\)")


@dataclass(frozen=True)
class SchemaItem:
    statement: str
    # What the engine lists once the statement has run: a Neo4j constraint or index name,
    # or FalkorDB's indexed "Label.property" pairs.
    listed_as: frozenset[str]


def schema_items(engine: str) -> list[SchemaItem]:
    if engine == "neo4j":
        # "CREATE CONSTRAINT name IF NOT EXISTS ..." / "CREATE INDEX name IF NOT EXISTS ..."
        return [SchemaItem(s, frozenset({s.split()[2]})) for s in q.NEO4J_SCHEMA]
    items = []
    for statement in q.FALKORDB_SCHEMA:
        match = _FALKORDB_INDEX.fullmatch(statement)
        if match is None:
            raise ValueError(f"not a FalkorDB index statement: {statement!r}")
        variable, label, properties = match.groups()
        listed = {
            f"{label}.{prop.strip().removeprefix(variable + '.')}" for prop in properties.split(",")
        }
        items.append(SchemaItem(statement, frozenset(listed)))
    return items


def existing_schema(executor: CypherExecutor) -> set[str]:
    if executor.engine == "neo4j":
        return {row["name"] for row in executor.read(q.NEO4J_SCHEMA_NAMES)}
    # A write call: FalkorDB refuses read-only queries on a graph that has no key yet.
    rows = executor.write(q.FALKORDB_INDEXED_PROPERTIES)
    return {f"{row['label']}.{prop}" for row in rows for prop in row["properties"]}


def ensure_schema(executor: CypherExecutor) -> None:
    """Create the engine's constraints and indexes that are missing."""
    existing = existing_schema(executor)
    for item in schema_items(executor.engine):
        if item.listed_as <= existing:
            continue
        try:
            executor.write(item.statement)
        except Exception:
            # Created meanwhile by another process: fine. Missing still: a real failure.
            if not item.listed_as <= existing_schema(executor):
                raise
