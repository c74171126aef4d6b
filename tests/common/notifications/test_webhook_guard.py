"""The webhook guard, signature and retry schedule, without a network."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from common.notifications.attempts import retry_delay
from common.notifications.payloads import event_id_of, incident_event
from common.notifications.webhooks import (
    UnsafeWebhookError,
    WebhookTarget,
    allowed_hosts,
    resolve_webhook,
    signature,
)
from common.settings import Settings


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"test"}'
    expected = hmac.new(b"whsec_k", b"1764000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_k", "1764000000", body) == f"sha256={expected}"
    assert signature("whsec_k", "1764000001", body) != f"sha256={expected}"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fd00:ec2::254", "::ffff:192.168.0.1"],
)  # fmt: skip
def test_internal_addresses_are_refused(address: str) -> None:
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(UnsafeWebhookError, match="WEBHOOK_ALLOWED_HOSTS"):
        resolve_webhook(f"http://{literal}/hook", frozenset())


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("2002:a9fe:a9fe::1", "6to4 form of 169.254.169.254, a link-local"),
        ("2002:0a00:0001::1", "6to4 form of 10.0.0.1, a private"),
        ("2002:7f00:0001::1", "6to4 form of 127.0.0.1, a loopback"),
        ("fec0::1", "site-local"),
        ("fed0:1:2::3", "site-local"),
        # Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted: f5ff:fffe)
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo form of 10.0.0.1, a private"),
        ("::10.0.0.1", "IPv4-compatible form of 10.0.0.1, a private"),
        ("::169.254.169.254", "IPv4-compatible form of 169.254.169.254, a link-local"),
        ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1, a loopback"),
    ],
)
def test_deprecated_ipv6_forms_of_internal_addresses_are_refused(address: str, says: str) -> None:
    with pytest.raises(UnsafeWebhookError, match=says):
        resolve_webhook(f"http://[{address}]/hook", frozenset())


def test_6to4_of_a_public_address_is_accepted() -> None:
    assert resolve_webhook("http://[2002:808:808::1]/hook", frozenset()).address == (
        "2002:808:808::1"
    )


def test_allowed_host_lets_an_internal_address_through() -> None:
    allowed = allowed_hosts(" 127.0.0.1 , hooks.internal ")
    assert allowed == {"127.0.0.1", "hooks.internal"}
    target = resolve_webhook("http://127.0.0.1:9000/hook?x=1", allowed)
    assert target.pinned_url == "http://127.0.0.1:9000/hook?x=1"


def test_public_address_is_accepted_and_pinned() -> None:
    target = resolve_webhook("https://8.8.8.8/hook", frozenset())
    assert target.address == "8.8.8.8" and target.host_header == "8.8.8.8"


def test_pinned_url_keeps_path_and_swaps_the_host_for_the_checked_address() -> None:
    target = WebhookTarget(
        url="https://hooks.example.com:8443/a/b?c=d",
        host="hooks.example.com",
        address="2001:db8::7",
    )
    assert target.pinned_url == "https://[2001:db8::7]:8443/a/b?c=d"
    assert target.host_header == "hooks.example.com:8443"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://8.8.8.8/hook", "https://"),
        ("https:///hook", "no host"),
        ("https://8.8.8.8:99999/hook", "invalid port"),
        ("https://8.8.8.8/hook#part", "#fragment"),
        ("https://me:secret@8.8.8.8/hook", "user or password"),
    ],
)
def test_malformed_urls_say_what_to_fix(url: str, says: str) -> None:
    with pytest.raises(UnsafeWebhookError, match=says):
        resolve_webhook(url, frozenset())


def test_retries_span_more_than_an_hour_by_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    waited, attempts = 0.0, 1
    while waited + retry_delay(settings, attempts) <= settings.webhook_retry_for_seconds:
        waited += retry_delay(settings, attempts)
        attempts += 1
    assert waited >= 3600
    assert [retry_delay(settings, n) for n in (1, 2, 3)] == [10, 20, 40]
    assert max(retry_delay(settings, n) for n in range(1, 50)) == 600
    assert timedelta(seconds=600) < timedelta(seconds=settings.broker_visibility_timeout_seconds)
    assert attempts >= 15


def test_event_ids_are_stable_and_events_named_for_people() -> None:
    assert event_id_of("inc", 3) == event_id_of("inc", 3) != event_id_of("inc", 4)
    assert incident_event("open", 0) == "incident.opened"
    assert incident_event("open", 2) == "incident.updated"
    assert incident_event("resolved", 0) == "incident.resolved"
