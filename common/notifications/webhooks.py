"""Webhook HTTP: the SSRF guard, the signature, and one delivery attempt.

The guard resolves the URL's host and refuses loopback, private, link-local (cloud
metadata at 169.254.169.254 included), shared, multicast and reserved addresses, and IPv6
forms that lead to them (IPv4-mapped, 6to4, Teredo, IPv4-compatible, site-local), unless
the host (or the address) is listed in WEBHOOK_ALLOWED_HOSTS. An attempt connects to the very
address the guard checked (the Host header and TLS name stay the URL's), so a DNS answer
that changes between check and connect cannot point a webhook inside the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from common.errors import InvalidRequestError

SIGNATURE_HEADER = "X-Neonomaly-Signature"
TIMESTAMP_HEADER = "X-Neonomaly-Timestamp"
EVENT_HEADER = "X-Neonomaly-Event"
EVENT_ID_HEADER = "X-Neonomaly-Event-Id"
DELIVERY_HEADER = "X-Neonomaly-Delivery"
USER_AGENT = "Neonomaly-Webhook/1"
# What is kept of a receiver's answer for the delivery log.
ANSWER_KEPT_BYTES = 300

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# httpx logs every request's URL at INFO, and a webhook URL's path can be a secret (Slack's
# are): the worker's log (INFO by default) must not hold it. Warnings still come through.
logging.getLogger("httpx").setLevel(logging.WARNING)


class UnsafeWebhookError(InvalidRequestError):
    """The URL is not one webhooks may be sent to (scheme, or an internal address)."""


@dataclass(frozen=True)
class WebhookTarget:
    """A URL with the address it was checked at: attempts connect there."""

    url: str
    host: str
    address: str

    @property
    def pinned_url(self) -> str:
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        return urlsplit(self.url).netloc


def allowed_hosts(setting: str | None) -> frozenset[str]:
    """WEBHOOK_ALLOWED_HOSTS as a set: comma-separated host names or addresses."""
    return frozenset(h.strip().lower() for h in (setting or "").split(",") if h.strip())


def _internal(address: IpAddress) -> str | None:
    """Why the address is not a public one, or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        else:
            return _internal_ipv6(address)
    return _internal_by_class(address)


def _internal_by_class(address: IpAddress) -> str | None:
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata lives there)"),
        (address.is_private, "private"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "non-public"),
    )
    return next((why for internal, why in checks if internal), None)


def _internal_ipv6(address: ipaddress.IPv6Address) -> str | None:
    """Deprecated IPv6 forms route to the IPv4 address they carry, or to a site's own
    network, while the standard library may call them global."""
    if address.is_site_local:  # fec0::/10, deprecated by RFC 3879
        return "site-local (a site's own network)"
    carried: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.sixtofour is not None:  # 2002:AABB:CCDD::/48 is 6to4 of AA.BB.CC.DD
        carried.append(("6to4", address.sixtofour))
    if address.teredo is not None:  # 2001::/32: a Teredo server and (obfuscated) client
        server, client = address.teredo
        carried += [("Teredo", server), ("Teredo", client)]
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d, IPv4-compatible
        carried.append(("IPv4-compatible", ipaddress.IPv4Address(int(address))))
    for form, ipv4 in carried:
        why = _internal_by_class(ipv4)
        if why is not None:
            return f"{form} form of {ipv4}, a {why}"
    return _internal_by_class(address)


def check_url_shape(url: str) -> tuple[str, int]:
    """The host and port of a webhook URL, or a 422 saying what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookError("the webhook URL must start with https:// (or http://)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeWebhookError(f"the webhook URL has an invalid port: {exc}") from exc
    if not parts.hostname:
        raise UnsafeWebhookError("the webhook URL has no host")
    if parts.fragment:
        raise UnsafeWebhookError("the webhook URL must not have a #fragment")
    if parts.username is not None or parts.password is not None:
        # Attempts connect to the checked address, and credentials in the URL would be
        # dropped there; the signature is how a receiver knows the sender.
        raise UnsafeWebhookError(
            "the webhook URL must not hold a user or password: receivers verify the signature"
        )
    return parts.hostname, port


def resolve_webhook(url: str, allowed: frozenset[str]) -> WebhookTarget:
    """Check the URL and pick the address to connect to.

    Raises UnsafeWebhookError (a 422 for the API) for a refused URL, and OSError when the
    host does not resolve (at delivery: a failed attempt, retried).
    """
    host, port = check_url_shape(url)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    host_allowed = host.lower() in allowed
    for address in addresses:
        why = _internal(address)
        if why is not None and not host_allowed and str(address) not in allowed:
            raise UnsafeWebhookError(
                f"the webhook URL's host {host} is {address}, a {why} address: webhooks are "
                "not sent inside the network unless WEBHOOK_ALLOWED_HOSTS lists the host"
            )
    return WebhookTarget(url=url, host=host, address=str(addresses[0]))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of "{timestamp}.{body}" with the channel's secret, as sha256=<hex>."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    status_code: int | None
    error: str | None


def post_webhook(
    target: WebhookTarget,
    body: bytes,
    secret: str,
    headers: dict[str, str],
    timeout_seconds: float,
) -> Attempt:
    """POST the body once, signed now, within `timeout_seconds` in all: connecting, sending
    and the answer's status line and headers (and, for a failure, its first bytes). A
    receiver that trickles its answer a byte at a time is cut off there, not after each
    byte's own timeout. Never follows a redirect; 2xx is delivered."""
    timestamp = str(int(time.time()))
    request_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    attempt = asyncio.run(_post(target, body, request_headers, timeout_seconds))
    if attempt.error is None:
        return attempt
    # The URL's path can be a secret (Slack's webhook URLs are): never in the delivery log.
    error = attempt.error.replace(target.pinned_url, "the webhook URL").replace(
        target.url, "the webhook URL"
    )
    return Attempt(attempt.delivered, attempt.status_code, error[:ANSWER_KEPT_BYTES])


async def _post(
    target: WebhookTarget, body: bytes, headers: dict[str, str], timeout_seconds: float
) -> Attempt:
    extensions = {"sni_hostname": target.host} if target.url.startswith("https") else {}
    try:
        async with (
            asyncio.timeout(timeout_seconds),
            httpx.AsyncClient(
                timeout=timeout_seconds, follow_redirects=False, trust_env=False
            ) as http,
            http.stream(
                "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            if response.is_success:  # its body is not read: the status says it all
                return Attempt(True, response.status_code, None)
            answer = await _first_bytes(response)
    except TimeoutError:
        return Attempt(
            False,
            None,
            f"no complete answer within {timeout_seconds:g} s (the limit of a whole attempt: "
            "connect, send, answer)",
        )
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}")
    if response.is_redirect:
        location = response.headers.get("location", "?")
        return Attempt(
            False, response.status_code, f"redirect to {location} not followed: give the final URL"
        )
    return Attempt(False, response.status_code, f"HTTP {response.status_code}: {answer}")


async def _first_bytes(response: httpx.Response) -> str:
    """The start of the answer (a receiver cannot make us read megabytes)."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= ANSWER_KEPT_BYTES:
            break
    return kept[:ANSWER_KEPT_BYTES].decode("utf-8", errors="replace")
