"""Webhook HTTP: the SSRF guard, the signature, and one delivery attempt.

The guard resolves the URL's host and refuses loopback, private, link-local (cloud
metadata at 169.254.169.254 included), shared, multicast and reserved addresses, unless the
host (or the address) is listed in WEBHOOK_ALLOWED_HOSTS. An attempt connects to the very
address the guard checked (the Host header and TLS name stay the URL's), so a DNS answer
that changes between check and connect cannot point a webhook inside the network.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
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
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
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
    """POST the body once, signed now. Never follows a redirect; 2xx is delivered."""
    timestamp = str(int(time.time()))
    request_headers = {
        **headers,
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    extensions = {"sni_hostname": target.host} if target.url.startswith("https") else {}
    try:
        with (
            httpx.Client(timeout=timeout_seconds, follow_redirects=False, trust_env=False) as http,
            http.stream(
                "POST",
                target.pinned_url,
                content=body,
                headers=request_headers,
                extensions=extensions,
            ) as response,
        ):
            answer = _first_bytes(response)
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:ANSWER_KEPT_BYTES])
    if response.is_success:
        return Attempt(True, response.status_code, None)
    if response.is_redirect:
        location = response.headers.get("location", "?")
        error = f"redirect to {location} not followed: give the final URL"
    else:
        error = f"HTTP {response.status_code}: {answer}"
    return Attempt(False, response.status_code, error[:ANSWER_KEPT_BYTES])


def _first_bytes(response: httpx.Response) -> str:
    """The start of the answer (a receiver cannot make us read megabytes)."""
    kept = b""
    for chunk in response.iter_bytes():
        kept += chunk
        if len(kept) >= ANSWER_KEPT_BYTES:
            break
    return kept[:ANSWER_KEPT_BYTES].decode("utf-8", errors="replace")
