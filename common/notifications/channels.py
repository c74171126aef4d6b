"""Adding a webhook channel: its URL checked before it is stored, its secret made here."""

from __future__ import annotations

import secrets

from common.errors import InvalidRequestError
from common.notifications.models import NotificationChannel, PayloadFormat
from common.notifications.repository import ChannelRepository
from common.notifications.webhooks import allowed_hosts, resolve_webhook
from common.settings import Settings


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_channel(
    channels: ChannelRepository,
    owner_id: str,
    url: str,
    secret: str | None,
    payload_format: PayloadFormat,
    settings: Settings,
) -> NotificationChannel:
    """A new webhook channel; InvalidRequestError (422) for a URL webhooks may not go to."""
    try:
        resolve_webhook(url, allowed_hosts(settings.webhook_allowed_hosts))
    except OSError as exc:
        raise InvalidRequestError(f"the webhook URL's host does not resolve: {exc}") from exc
    except (UnicodeError, ValueError) as exc:  # an IDNA name that cannot be encoded, say
        raise InvalidRequestError(f"the webhook URL is not valid: {exc}") from exc
    return channels.create(owner_id, url, secret or new_secret(), payload_format)
