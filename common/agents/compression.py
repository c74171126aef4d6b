"""Request bodies' compression: snappy's block format (remote_write) and gzip (OTLP), each
decoded only up to a limit, so a small body cannot expand into gigabytes."""

from __future__ import annotations

import zlib

import cramjam

from common.errors import MalformedRequestError, TooLargeError


def _snappy_declared_length(body: bytes) -> int:
    """The uncompressed length a snappy block states first (a little-endian base-128
    varint of at most 5 bytes), read before anything is decompressed."""
    length = 0
    for index, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            return length
    raise MalformedRequestError("the body is not snappy block format: no valid length header")


def snappy_block(body: bytes, max_bytes: int) -> bytes:
    """Decompress a snappy block (not the framed stream format), refusing one that says it
    holds more than `max_bytes`."""
    declared = _snappy_declared_length(body)
    if declared > max_bytes:
        raise TooLargeError(
            f"the body decompresses to {declared} bytes, over the limit of {max_bytes} "
            "(AGENT_MAX_DECODED_BYTES): send fewer samples per request "
            "(Prometheus: lower queue_config.max_samples_per_send)"
        )
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise MalformedRequestError(
            f"the body is not valid snappy block format ({exc}); send it as Prometheus "
            "remote_write does: Content-Encoding: snappy, the block format, not framed"
        ) from exc


def gunzip(body: bytes, max_bytes: int) -> bytes:
    """Decompress a gzip body, stopping as soon as it passes `max_bytes`."""
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decoder.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise MalformedRequestError(f"the body is not valid gzip: {exc}") from exc
    if len(data) > max_bytes:
        raise TooLargeError(
            f"the body decompresses to more than {max_bytes} bytes (AGENT_MAX_DECODED_BYTES): "
            "send fewer data points per request"
        )
    if not decoder.eof:
        raise MalformedRequestError("the gzip body is truncated")
    return data
