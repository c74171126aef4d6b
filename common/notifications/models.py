"""Notification channels and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

ChannelType = Literal["webhook"]
# The body's shape: Neonomaly's own (documented in the README), a Slack incoming-webhook
# message, or an Alertmanager webhook notification (version 4).
PayloadFormat = Literal["neonomaly", "slack", "alertmanager"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class NotificationChannel(BaseModel):
    id: str
    owner_id: str
    type: ChannelType
    format: PayloadFormat = "neonomaly"
    url: str
    secret: SecretStr = Field(description="the HMAC-SHA256 key deliveries are signed with")
    created_at: datetime


class Delivery(BaseModel):
    """One event on its way to one channel; kept in Redis as the channel's delivery log."""

    id: str
    channel_id: str
    owner_id: str
    event_id: str = Field(description="the same event always has the same id (receivers dedup)")
    event: str = Field(description="incident.opened, incident.updated, incident.resolved or test")
    incident_id: str | None
    status: DeliveryStatus
    attempts: int = 0
    created_at: datetime
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    payload: str = Field(description="the exact JSON body sent (signed at each attempt)")
