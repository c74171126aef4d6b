"""The executor GRAPH_URL names: Neo4j through its driver, or FalkorDB (embedded or not)."""

from __future__ import annotations

from common.embedded import resolve_urls
from common.graph.executors import CypherExecutor, FalkorDBExecutor, Neo4jExecutor
from common.settings import Settings

NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def executor_for(settings: Settings) -> CypherExecutor:
    # Only the embedded default needs resolving (and its server); Redis is not needed here.
    graph_url = resolve_urls(settings).graph_url if settings.uses_embedded else settings.graph_url
    if graph_url.startswith(NEO4J_SCHEMES):
        return Neo4jExecutor(
            graph_url,
            settings.neo4j_user,
            settings.neo4j_password.get_secret_value(),
            settings.neo4j_database,
        )
    if graph_url.startswith("falkordb://"):
        return FalkorDBExecutor.from_url(graph_url, settings.graph_name)
    raise ValueError(
        f"GRAPH_URL {graph_url!r} is not supported: use 'embedded', falkordb://host:port, "
        "neo4j://, neo4j+s:// or bolt://"
    )
