"""The agents' endpoints' query: how their series map onto services and metrics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from common.agents.mapping import MappingOptions


class MappingQuery(BaseModel):
    """The mapping's options, from the query string of the URL an agent is given."""

    model_config = ConfigDict(extra="forbid")

    service_labels: str | None = Field(
        None,
        max_length=500,
        description="labels naming the service, first present wins "
        "(remote_write: job,service,service_name; OTLP: service.name)",
    )
    service: str | None = Field(
        None, max_length=100, description="put every series in this service"
    )
    drop_labels: str | None = Field(
        None, max_length=500, description="labels left out of metric names"
    )
    resource_labels: str | None = Field(
        None, max_length=500, description="OTLP: resource attributes kept as labels"
    )

    def options(self, defaults: MappingOptions) -> MappingOptions:
        return MappingOptions.parse(
            defaults, self.service_labels, self.service, self.drop_labels, self.resource_labels
        )
