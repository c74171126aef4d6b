"""Paged lists of a metric's rows (readings, anomalies): their query parameters and cursor.

A cursor is the (epoch ms, id) key of the last row a page held, base64url-encoded so that
clients treat it as a token, not as something to build. Both lists page by that key in
(timestamp, id) order, so one codec serves both, and cursors already handed out keep working.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from fastapi import Depends, Query

from common.epoch import optional_ms
from common.errors import InvalidRequestError
from common.graph.params import MAX_MS, MIN_MS, KeysetPage, PageKey
from web.deps import SettingsDep
from web.schemas.fields import NO_CONTROL, Timestamp


def encode_cursor(timestamp_ms: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{timestamp_ms}:{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> PageKey:
    """The key a cursor stands for; InvalidRequestError (a 4xx) if this API did not make it."""
    try:
        timestamp, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        # Ids never hold control characters; one here would only reach the graph as garbage.
        if not re.fullmatch(NO_CONTROL, row_id):
            raise ValueError("not an id")
        # Both engines compare 64-bit integers: a larger one would fail in the driver.
        if not MIN_MS <= int(timestamp) <= MAX_MS:
            raise ValueError("not a timestamp")
        return int(timestamp), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequestError("cursor is not one this API returned") from exc


# The query parameters of a paged list.
WindowStart = Annotated[Timestamp | None, Query(description="inclusive")]
WindowEnd = Annotated[Timestamp | None, Query(description="exclusive")]
PageLimit = Annotated[int, Query(ge=1, le=10_000)]
Cursor = Annotated[str | None, Query(max_length=400)]


def page_request(
    settings: SettingsDep,
    start: WindowStart = None,
    end: WindowEnd = None,
    limit: PageLimit = 1000,
    cursor: Cursor = None,
) -> KeysetPage:
    # Decoded here, once the parameters are valid, so a request with a bad timestamp and a
    # bad cursor is told about the timestamp (as before there was one codec). An empty
    # ?cursor= has always meant the first page. A page holds at most PAGE_SIZE_MAX rows
    # whatever `limit` asks.
    after = decode_cursor(cursor) if cursor else None
    return KeysetPage(
        optional_ms(start), optional_ms(end), min(limit, settings.page_size_max), after
    )


PageDep = Annotated[KeysetPage, Depends(page_request)]
