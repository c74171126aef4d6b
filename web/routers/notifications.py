"""Notification channels (webhooks) and their delivery logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field, StringConstraints

from common.errors import InvalidRequestError, found
from common.notifications.deliveries import DeliveryLog, new_secret, queue_test
from common.notifications.models import (
    Delivery,
    DeliveryStatus,
    NotificationChannel,
    PayloadFormat,
)
from common.notifications.webhooks import allowed_hosts, resolve_webhook
from web.deps import CurrentUser, JobQueueDep, PathId, RedisDep, SettingsDep, StoreDep
from web.schemas import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NO_CONTROL, NOT_FOUND, RequestModel

router = APIRouter(
    prefix="/api/notification-channels",
    tags=["notifications"],
    responses={**AUTH_ERRORS, **BAD_REQUEST},
)


class ChannelCreate(RequestModel):
    type: Literal["webhook"] = "webhook"
    format: PayloadFormat = Field(
        default="neonomaly",
        description="the body: neonomaly (documented), slack (incoming webhook), alertmanager",
    )
    url: Annotated[
        str,
        StringConstraints(min_length=1, max_length=2000, pattern=NO_CONTROL),
        Field(description="https:// (or http://) URL that receives POSTed JSON events"),
    ]
    secret: (
        Annotated[
            str,
            StringConstraints(min_length=16, max_length=200, pattern=NO_CONTROL),
            Field(description="HMAC-SHA256 key for the signature; default: a new random one"),
        ]
        | None
    ) = None


class ChannelPublic(BaseModel):
    id: str
    type: Literal["webhook"]
    format: PayloadFormat
    url: str
    created_at: datetime
    deliveries_url: str

    @classmethod
    def of(cls, channel: NotificationChannel) -> ChannelPublic:
        return cls(
            id=channel.id,
            type=channel.type,
            format=channel.format,
            url=channel.url,
            created_at=channel.created_at,
            deliveries_url=f"/api/notification-channels/{channel.id}/deliveries",
        )


class ChannelCreated(ChannelPublic):
    secret: str = Field(description="shown only now: keep it to verify signatures")


class DeliveryPublic(BaseModel):
    id: str
    event_id: str
    event: str
    incident_id: str | None
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryPublic:
        return cls(**delivery.model_dump(exclude={"payload", "owner_id", "channel_id"}))


def get_delivery_log(client: RedisDep, settings: SettingsDep) -> DeliveryLog:
    return DeliveryLog(client, settings)


DeliveryLogDep = Annotated[DeliveryLog, Depends(get_delivery_log)]


def get_owned_channel(
    channel_id: PathId, user: CurrentUser, store: StoreDep
) -> NotificationChannel:
    channel = store.get_channel(user.id, channel_id)
    return found(channel, f"notification channel {channel_id}")


OwnedChannel = Annotated[NotificationChannel, Depends(get_owned_channel)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=BAD_BODY)
def create_channel(
    body: ChannelCreate, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> ChannelCreated:
    """Add a webhook; the answer holds its signing secret, shown only this once."""
    try:
        resolve_webhook(body.url, allowed_hosts(settings.webhook_allowed_hosts))
    except OSError as exc:
        raise InvalidRequestError(f"the webhook URL's host does not resolve: {exc}") from exc
    except (UnicodeError, ValueError) as exc:  # an IDNA name that cannot be encoded, say
        raise InvalidRequestError(f"the webhook URL is not valid: {exc}") from exc
    channel = store.create_channel(user.id, body.url, body.secret or new_secret(), body.format)
    return ChannelCreated(
        **ChannelPublic.of(channel).model_dump(), secret=channel.secret.get_secret_value()
    )


@router.get("")
def list_channels(user: CurrentUser, store: StoreDep) -> list[ChannelPublic]:
    """The caller's notification channels, oldest first (secrets are not shown)."""
    return [ChannelPublic.of(channel) for channel in store.list_channels(user.id)]


@router.get("/{channel_id}", responses=NOT_FOUND)
def get_channel(channel: OwnedChannel) -> ChannelPublic:
    """One notification channel (its secret is not shown)."""
    return ChannelPublic.of(channel)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_channel(channel: OwnedChannel, user: CurrentUser, store: StoreDep) -> Response:
    """Delete a channel; deliveries still pending to it are not sent (logged as failed)."""
    store.delete_channel(user.id, channel.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND)
def test_channel(
    channel: OwnedChannel, deliveries: DeliveryLogDep, queue: JobQueueDep
) -> DeliveryPublic:
    """Queue a signed `test` event to the channel; follow it in the delivery log."""
    return DeliveryPublic.of(queue_test(deliveries, queue, channel))


@router.get("/{channel_id}/deliveries", responses=NOT_FOUND)
def list_deliveries(
    channel: OwnedChannel,
    deliveries: DeliveryLogDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[DeliveryPublic]:
    """The channel's recent deliveries, newest first: status, attempts, last error."""
    return [DeliveryPublic.of(d) for d in deliveries.list_for_channel(channel.id, limit)]
