"""The detection methods and their settings as a user chooses them, defined once for the
API's request, a job's params, the scan settings, the `detect` command and the library.

Apart from common.detection (numpy, scipy, statsmodels) so that settings and the
command line's --help import only this.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field

Method = Literal["rolling", "stl", "auto"]
METHODS: tuple[Method, ...] = get_args(Method)

Sigma = Annotated[
    float | None,
    Field(
        gt=0,
        le=1000,
        description="rolling/stl: a reading is anomalous beyond this many sigmas (unset: 3); "
        "auto: alarm at the tail probability of this many normal sigmas, instead of "
        "sensitivity",
    ),
]
Sensitivity = Annotated[
    float | None,
    Field(
        gt=0,
        lt=0.1,
        description="auto: alarm probability; at most about this share of readings alarm "
        "on normal data (unset: 3e-4, about 3 per 10,000)",
    ),
]
Quiet = Annotated[
    int | None,
    Field(ge=0, le=100_000, description="auto: readings after an alarm without a new one (35)"),
]

Direction = Literal["up", "down", "both"]
DirectionField = Annotated[
    Direction | None,
    Field(description="alarm only on readings above (up) or below (down) the expected value "
          "(unset: both)"),
]  # fmt: skip
MinDeviation = Annotated[
    float | None,
    Field(
        strict=True,  # a JSON number: not true, not "5"
        ge=0,
        le=1e308,
        allow_inf_nan=False,
        description="alarm only when |value - expected| is at least this, in the metric's "
        "units (unset: 0)",
    ),
]
MinRelativeDeviation = Annotated[
    float | None,
    Field(
        strict=True,
        ge=0,
        le=1e6,
        allow_inf_nan=False,
        description="alarm only when |value - expected| is at least this fraction of "
        "|expected| (0.1: a tenth; unset: 0)",
    ),
]


class MethodSettings(BaseModel):
    """How to detect: the method and its settings (the part of a job's params a user picks)."""

    method: Method = Field(
        default="auto",
        description="auto (the default detector: a calibrated probability per reading, "
        "alarms in its far tail, events typed), rolling, or stl",
    )
    sigma: Sigma = None
    sensitivity: Sensitivity = None
    quiet: Quiet = None
    window: int | None = Field(
        default=None,
        ge=2,
        le=100_000,
        description="rolling window in readings (auto: its level forecaster's); online STL: "
        "the history each fit uses",
    )
    robust: bool = Field(default=False, description="median/MAD (rolling) or robust STL")
    period: int | None = Field(
        default=None,
        ge=2,
        le=100_000,
        description="seasonal period in readings (STL); inferred if unset",
    )
    online: bool = Field(default=False, description="judge each reading only from earlier ones")
    direction: DirectionField = None
    min_deviation: MinDeviation = None
    min_relative_deviation: MinRelativeDeviation = None


class MetricDetection(BaseModel):
    """A metric's own detection settings: what its jobs leave unset, its scans use."""

    sensitivity: Sensitivity = None
    direction: DirectionField = None
    min_deviation: MinDeviation = None
    min_relative_deviation: MinRelativeDeviation = None

    def under(self, method: MethodSettings) -> MethodSettings:
        """`method` with the settings it leaves unset taken from the metric's (a sigma
        given for `auto` stands for a sensitivity: it is not overridden)."""
        given = {name for name in type(self).model_fields if getattr(method, name) is not None}
        if method.sigma is not None:
            given.add("sensitivity")
        return method.model_copy(
            update={name: value for name, value in self if value is not None and name not in given}
        )

    def over(self, method: MethodSettings) -> MethodSettings:
        """`method` with the metric's settings in place of its own (scans: the metric's
        settings before the service-wide SCAN_* ones)."""
        return method.model_copy(update={name: value for name, value in self if value is not None})
