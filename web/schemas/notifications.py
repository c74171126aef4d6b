"""Notification channels' request and response bodies, and their deliveries'."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from common.notifications.models import (
    Delivery,
    DeliveryStatus,
    NotificationChannel,
    PayloadFormat,
)
from web.schemas.fields import NO_CONTROL, RequestModel


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
