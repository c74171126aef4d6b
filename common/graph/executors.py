"""Run Cypher on one engine: the one object every repository shares (common.graph.connect
picks it from GRAPH_URL; the repositories own the queries).

Each executor turns its driver's connection failures into DependencyUnavailableError, and
Neo4j's uniqueness constraint violations into UniqueConstraintError, so callers see one
error whatever the engine.
"""

from __future__ import annotations

import json
from typing import Any, Protocol
from urllib.parse import urlparse

from common.collector import collector_paused
from common.errors import ConflictError, DependencyUnavailableError, NotFoundError

Row = dict[str, Any]
GRAPH = "graph store"

_SCALARS = (str, int, float, bool, type(None))
# What json writes for control characters, which FalkorDB's parser does not all read back.
_UNREAD_ESCAPES = ("\\u00", "\\r", "\\b", "\\f")


def _json_list(value: list[Any]) -> str | None:
    """A list of scalars (or of lists of them) as FalkorDB parameter text, written by the
    json module, or None if it holds anything json would write differently from FalkorDB's
    own syntax (maps, control characters, non-finite floats)."""
    for item in value:
        if type(item) is list:
            if not all(type(x) in _SCALARS for x in item):
                return None
        elif type(item) not in _SCALARS:
            return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return None
    return None if any(escape in text for escape in _UNREAD_ESCAPES) else text


def falkordb_query(query: str, params: dict[str, Any] | None) -> str:
    """The query behind FalkorDB's `CYPHER name=value ...` parameter header.

    The falkordb client writes every parameter value in Python, a call per list item: for a
    batch of 10,000 readings that took longer than the engine took to store them. A list of
    scalars is valid FalkorDB parameter text as json writes it (strings quoted and escaped
    alike), which takes a twentieth of the time; other values are written by the client's
    own function.
    """
    if not params:
        return query
    from falkordb.helpers import stringify_param_value

    header = []
    for name, value in params.items():
        text = _json_list(value) if type(value) is list else None
        header.append(f"`{name}`={stringify_param_value(value) if text is None else text}")
    return "CYPHER " + " ".join(header) + " " + query


# FalkorDB's compact reply: each scalar a [type, value] pair (falkordb.query_result).
_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY = 1, 2, 3, 4, 5, 6


def _scalar(cell: list[Any], graph: Any) -> Any:
    kind, value = cell
    if kind in (_STRING, _INTEGER):
        return value
    if kind == _DOUBLE:
        return float(value)
    if kind == _NULL:
        return None
    if kind == _ARRAY:
        return _array(value, graph)
    if kind == _BOOLEAN:
        return value == "true"
    from falkordb.query_result import parse_scalar

    return parse_scalar(cell, graph)  # nodes, edges, paths, maps, points, times


def _array(items: list[list[Any]], graph: Any) -> list[Any]:
    """A list, a comprehension for the whole list where its items are of one plain kind
    (a window's ids, timestamps or values): a call per item was most of the parsing."""
    kinds = {item[0] for item in items}
    if len(kinds) == 1:
        [kind] = kinds
        if kind in (_STRING, _INTEGER):
            return [value for _, value in items]
        if kind == _DOUBLE:
            return [float(value) for _, value in items]
    return [_scalar(item, graph) for item in items]


def falkordb_rows(response: list[Any], graph: Any) -> list[Row]:
    """The rows of a GRAPH.QUERY / GRAPH.RO_QUERY reply in compact form, as the falkordb
    client's QueryResult would give them, with its errors raised the same way."""
    from redis.exceptions import ResponseError

    for part in (response[0], response[-1]):
        if isinstance(part, ResponseError):
            raise part
    if len(response) == 1 or not response[0]:  # statistics only: nothing is returned
        return []
    header, records = response[0], response[1]
    columns = [column[1] for column in header]
    return [
        dict(zip(columns, [_scalar(cell, graph) for cell in record], strict=True))
        for record in records
    ]


def deleted_any(rows: list[Row]) -> bool:
    """Whether a statement ending in `RETURN count(*) AS deleted` deleted anything."""
    return bool(rows) and rows[0]["deleted"] > 0


class UniqueConstraintError(ConflictError):
    """A write would have broken a uniqueness constraint, and nothing was written.

    On Neo4j two transactions can both find a name free and both create it; the constraint
    refuses the later one. A 409 by default; a repository says which name clashed where it knows.
    """


class CypherExecutor(Protocol):
    engine: str  # "neo4j" or "falkordb": picks the schema statements

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[Row]: ...
    def write(self, query: str, params: dict[str, Any] | None = None) -> list[Row]: ...
    def close(self) -> None: ...


def write_naming(
    executor: CypherExecutor, query: str, params: dict[str, Any], clash: ConflictError
) -> list[Row]:
    """Run a statement that gives something a name unique in its scope (a service among its
    owner's, a metric in its service); `clash` if the name is taken: seen by the statement
    (its row's `clashes` > 0), or, when another request took it at the same moment, refused
    by Neo4j's uniqueness constraint."""
    try:
        rows = executor.write(query, params)
    except UniqueConstraintError as exc:
        raise clash from exc
    if rows and rows[0]["clashes"]:
        raise clash
    return rows


class FalkorDBExecutor:
    """FalkorDB over the Redis protocol (an external server or the embedded one).

    Reads and writes go through two clients: a read is sent again once if its connection
    fails, a write never is. A write whose connection failed or timed out may have run (it
    may still be running): sending it again would repeat its creates, so the caller gets
    the outage instead. A pooled connection the server closed (a restart) is replaced
    before a command is sent on it, by the pool's own check, for reads and writes alike.
    """

    engine = "falkordb"

    def __init__(
        self,
        host: str,
        port: int,
        graph_name: str,
        password: str | None = None,
        socket_timeout: float = 120,
    ):
        from falkordb import FalkorDB
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        def client(retries: int) -> FalkorDB:
            return FalkorDB(
                host=host,
                port=port,
                password=password,
                socket_timeout=socket_timeout,
                socket_connect_timeout=2,
                # redis-py's default backoff would make a down server take seconds to report.
                retry=Retry(NoBackoff(), retries),
            )

        self._reads = client(retries=1)
        self._writes = client(retries=0)
        self._read_graph = self._reads.select_graph(graph_name)
        self._write_graph = self._writes.select_graph(graph_name)
        self.address = f"{host}:{port}"

    @classmethod
    def from_url(cls, url: str, graph_name: str) -> FalkorDBExecutor:
        parsed = urlparse(url)
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 6379, graph_name, parsed.password)

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        with collector_paused():
            return self._run(self._read_graph, "GRAPH.RO_QUERY", falkordb_query(query, params))

    def write(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._run(self._write_graph, "GRAPH.QUERY", falkordb_query(query, params))

    def _run(self, graph: Any, command: str, text: str) -> list[Row]:
        """The command sent as the client's query() sends it; the reply parsed here, not by
        the client's QueryResult (see falkordb_rows)."""
        import redis

        try:
            return falkordb_rows(
                graph.execute_command(command, graph.name, text, "--compact"), graph
            )
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise DependencyUnavailableError(GRAPH, f"FalkorDB at {self.address}: {exc}") from exc
        except redis.ResponseError as exc:
            if "LOADING" in str(exc) or "BUSY" in str(exc):
                raise DependencyUnavailableError(GRAPH, f"FalkorDB is starting: {exc}") from exc
            raise

    def close(self) -> None:
        self._reads.connection.close()
        self._writes.connection.close()


class Neo4jExecutor:
    """Neo4j through the official driver: one driver per process, reads routed as reads.

    `execute_query` runs each statement in a managed transaction, which the driver retries
    on transient errors (deadlocks, leader changes) within its retry budget: only where the
    transaction is known not to have committed. A connection lost while committing is
    IncompleteCommit, which is not retried (the write may have run).
    """

    engine = "neo4j"

    def __init__(self, url: str, user: str, password: str, database: str):
        import neo4j

        self._neo4j = neo4j
        self._driver = neo4j.GraphDatabase.driver(
            url,
            auth=(user, password),
            connection_acquisition_timeout=10,
            # Notifications are advice for people writing queries ("property `description`
            # does not exist" while no metric has one yet, "constraint already exists" on
            # every start): the driver would log each one, on every call.
            notifications_min_severity="OFF",
            # Transient errors (a deadlock between two writes, say) are retried by
            # execute_query's managed transaction: first after 20 ms rather than the
            # driver's 1 s (doubling, jittered), so that a retried request is not seconds
            # slower; the driver's 30 s overall retry budget stays.
            initial_retry_delay=0.02,
            retry_delay_multiplier=2.0,
            retry_delay_jitter_factor=0.5,
        )
        self._database = database
        self.address = url

    def read(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._run(query, params, self._neo4j.RoutingControl.READ)

    def write(self, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        return self._run(query, params, self._neo4j.RoutingControl.WRITE)

    def _run(self, query: str, params: dict[str, Any] | None, routing: Any) -> list[Row]:
        errors = self._neo4j.exceptions
        try:
            try:
                records, _, _ = self._driver.execute_query(
                    query, params or {}, database_=self._database, routing_=routing
                )
            except errors.ResultFailedError as exc:
                # The driver's rollback after a failed statement can raise this in place of
                # the statement's own error (seen with two renames racing to one name): the
                # statement's error is the one that says what happened.
                failed = exc.__cause__ or exc.__context__
                if isinstance(failed, errors.Neo4jError):
                    raise failed from None
                raise
        except (errors.ServiceUnavailable, errors.SessionExpired, OSError) as exc:
            raise DependencyUnavailableError(GRAPH, f"Neo4j at {self.address}: {exc}") from exc
        except errors.ConstraintError as exc:
            raise UniqueConstraintError("that name or id is already taken") from exc
        except errors.ClientError as exc:
            # A node this statement matched was deleted by a transaction it waited for
            # (a metric created while its service is deleted): gone, as a 404 says.
            if exc.code == "Neo.ClientError.Statement.EntityNotFound":
                raise NotFoundError("it was deleted meanwhile") from exc
            raise
        return [record.data() for record in records]

    def close(self) -> None:
        self._driver.close()
