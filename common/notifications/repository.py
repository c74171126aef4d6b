"""Notification channels in the graph (a user's webhooks, with their signing secrets)."""

from __future__ import annotations

from common.epoch import from_epoch_ms
from common.errors import NotFoundError
from common.graph.executors import CypherExecutor, Row, deleted_any
from common.graph.params import new_node
from common.notifications import queries as q
from common.notifications.models import NotificationChannel, PayloadFormat


def _channel(row: Row) -> NotificationChannel:
    # Channels made before formats existed have none: they get the original format.
    return NotificationChannel(
        **{
            **row,
            "format": row["format"] or "neonomaly",
            "created_at": from_epoch_ms(row["created_at"]),
        }
    )


class ChannelRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def create(
        self, owner_id: str, url: str, secret: str, payload_format: PayloadFormat = "neonomaly"
    ) -> NotificationChannel:
        params = new_node(owner_id, type="webhook", format=payload_format, url=url, secret=secret)
        rows = self.executor.write(q.CREATE_CHANNEL, params)
        if not rows:
            raise NotFoundError(f"user {owner_id} not found")
        return _channel(rows[0])

    def list_owned(self, owner_id: str) -> list[NotificationChannel]:
        return [_channel(r) for r in self.executor.read(q.LIST_CHANNELS, {"owner_id": owner_id})]

    def get(self, owner_id: str, channel_id: str) -> NotificationChannel | None:
        rows = self.executor.read(q.GET_CHANNEL, {"owner_id": owner_id, "channel_id": channel_id})
        return _channel(rows[0]) if rows else None

    def delete(self, owner_id: str, channel_id: str) -> bool:
        rows = self.executor.write(
            q.DELETE_CHANNEL, {"owner_id": owner_id, "channel_id": channel_id}
        )
        return deleted_any(rows)
