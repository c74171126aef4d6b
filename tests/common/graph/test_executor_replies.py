"""What a read returns, value by value, on both engines: FalkorDB's reply is parsed by the
executor itself (common.graph.executors.falkordb_rows), not by the falkordb client."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from common.graph.executors import FalkorDBExecutor
from common.stores import Repositories

# Every kind of value a statement returns, alone and in lists (one kind, mixed, nested).
REPLY_KINDS = """
RETURN 'tëxt, "quoted"' AS string, 42 AS integer, -7 AS negative, 1.5 AS double,
       0.1 AS tenth, true AS yes, false AS no, null AS nothing,
       [] AS empty, ['a', 'b,c'] AS strings, [1, 2, 1767225600000] AS integers,
       [0.1, 2.5, -1.0E300] AS doubles, [true, false] AS booleans, [null, null] AS nulls,
       [1, 'a', 2.5, null, true, [1, [2.5, 'b']]] AS mixed,
       {a: 1, b: [1.5, 'x'], c: {d: null}} AS map
"""

EXPECTED: dict[str, Any] = {
    "string": 'tëxt, "quoted"',
    "integer": 42,
    "negative": -7,
    "double": 1.5,
    "tenth": 0.1,
    "yes": True,
    "no": False,
    "nothing": None,
    "empty": [],
    "strings": ["a", "b,c"],
    "integers": [1, 2, 1767225600000],
    "doubles": [0.1, 2.5, -1.0e300],
    "booleans": [True, False],
    "nulls": [None, None],
    "mixed": [1, "a", 2.5, None, True, [1, [2.5, "b"]]],
    "map": {"a": 1, "b": [1.5, "x"], "c": {"d": None}},
}

NO_ROWS = "UNWIND [] AS nothing RETURN nothing"


def kinds(values: Any) -> Any:
    """The values with each scalar's type beside it (True == 1 == 1.0 for ==)."""
    if isinstance(values, dict):
        return {key: kinds(value) for key, value in values.items()}
    if isinstance(values, list):
        return [kinds(value) for value in values]
    return (type(values).__name__, values)


def test_every_kind_of_value_reads_back_as_python_values(graph: Repositories) -> None:
    [row] = graph.executor.read(REPLY_KINDS)
    assert kinds(row) == kinds(EXPECTED)
    assert graph.executor.read(NO_ROWS) == []


def test_falkordb_rows_are_what_the_falkordb_client_parses(graph: Repositories) -> None:
    executor = graph.executor
    if not isinstance(executor, FalkorDBExecutor):
        pytest.skip("FalkorDB's reply format")
    client = executor._read_graph.ro_query(REPLY_KINDS)  # the client's own parser
    expected = dict(zip([column[1] for column in client.header], client.result_set[0], strict=True))
    assert kinds(executor.read(REPLY_KINDS)[0]) == kinds(expected)


def test_a_read_leaves_the_cycle_collector_as_it_found_it(graph: Repositories) -> None:
    assert gc.isenabled()
    graph.executor.read(REPLY_KINDS)
    assert gc.isenabled()
    with pytest.raises(Exception, match=r"(?i)invalid|syntax|unknown|unexpected"):
        graph.executor.read("RETURN nonsense(")
    assert gc.isenabled()
    gc.disable()  # a process that turned it off itself keeps it off
    try:
        graph.executor.read(REPLY_KINDS)
        assert not gc.isenabled()
    finally:
        gc.enable()
