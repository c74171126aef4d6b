"""Notification channels (webhooks) and their delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from common.errors import found
from common.notifications.channels import create_channel as add_channel
from common.notifications.dispatch import queue_test
from common.notifications.models import NotificationChannel
from web.deps import (
    CurrentUser,
    DeliveryLogDep,
    JobQueueDep,
    PathId,
    RepositoriesDep,
    SettingsDep,
)
from web.schemas.notifications import (
    ChannelCreate,
    ChannelCreated,
    ChannelPublic,
    DeliveryPublic,
)
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND, RATE_LIMITED

router = APIRouter(
    prefix="/api/notification-channels",
    tags=["notifications"],
    responses={**AUTH_ERRORS, **BAD_REQUEST},
)


def get_owned_channel(
    channel_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> NotificationChannel:
    channel = repositories.channels.get(user.id, channel_id)
    return found(channel, f"notification channel {channel_id}")


OwnedChannel = Annotated[NotificationChannel, Depends(get_owned_channel)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=BAD_BODY)
def create_channel(
    body: ChannelCreate, user: CurrentUser, repositories: RepositoriesDep, settings: SettingsDep
) -> ChannelCreated:
    """Add a webhook; the answer holds its signing secret, shown only this once."""
    channel = add_channel(
        repositories.channels, user.id, body.url, body.secret, body.format, settings
    )
    return ChannelCreated(
        **ChannelPublic.of(channel).model_dump(), secret=channel.secret.get_secret_value()
    )


@router.get("")
def list_channels(user: CurrentUser, repositories: RepositoriesDep) -> list[ChannelPublic]:
    """The caller's notification channels, oldest first (secrets are not shown)."""
    return [ChannelPublic.of(channel) for channel in repositories.channels.list_owned(user.id)]


@router.get("/{channel_id}", responses=NOT_FOUND)
def get_channel(channel: OwnedChannel) -> ChannelPublic:
    """One notification channel (its secret is not shown)."""
    return ChannelPublic.of(channel)


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_channel(
    channel: OwnedChannel, user: CurrentUser, repositories: RepositoriesDep
) -> Response:
    """Delete a channel; deliveries still pending to it are not sent (logged as failed)."""
    repositories.channels.delete(user.id, channel.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{channel_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**NOT_FOUND, **RATE_LIMITED},
)
def test_channel(
    channel: OwnedChannel, deliveries: DeliveryLogDep, queue: JobQueueDep, settings: SettingsDep
) -> DeliveryPublic:
    """Queue a signed `test` event to the channel; follow it in the delivery log."""
    return DeliveryPublic.of(queue_test(deliveries, queue, channel, settings))


@router.get("/{channel_id}/deliveries", responses=NOT_FOUND)
def list_deliveries(
    channel: OwnedChannel,
    deliveries: DeliveryLogDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[DeliveryPublic]:
    """The channel's recent deliveries, newest first: status, attempts, last error."""
    return [DeliveryPublic.of(d) for d in deliveries.list_for_channel(channel.id, limit)]
