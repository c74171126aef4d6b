"""The field types every request shares: names, ids, descriptions, numbers, timestamps.

Every request model forbids unknown fields (RequestModel), so a typo is an error, not
silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from common.edits import NameEdit
from common.ingestion.models import MAX_LABEL_NAME_CHARS, MAX_LABEL_VALUE_CHARS, MAX_LABELS
from common.metrics.models import MAX_VALUE

# Readings outside this range are almost certainly a unit mistake (ms sent as seconds, say).
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)

# No control characters (C0, DEL, C1) in names and ids; descriptions may hold tabs and line
# breaks. A NUL would also break FalkorDB's parameter parsing (it answers an error).
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]+$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL),
    Field(description="1 to 100 characters, no control characters"),
]
Description = Annotated[
    str,
    StringConstraints(max_length=1000, pattern=TEXT),
    Field(description="up to 1000 characters; no control characters but tab and line breaks"),
]
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL)]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_LABEL_NAME_CHARS, pattern=NO_CONTROL)
]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE_CHARS, pattern=TEXT)]
_LABELS_DESCRIPTION = (
    f"at most {MAX_LABELS}: names up to {MAX_LABEL_NAME_CHARS} characters, "
    f"values up to {MAX_LABEL_VALUE_CHARS}"
)
# The schema written out: pydantic's own puts the name rule in patternProperties, which lets
# a name outside the pattern carry any value, so clients (and fuzzers) read a body as valid
# that the API refuses. Here every name is held to the rule and every value is a string.
Labels = Annotated[
    dict[LabelName, LabelValue],
    Field(max_length=MAX_LABELS, description=_LABELS_DESCRIPTION),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_LABELS,
            "propertyNames": {
                "minLength": 1,
                "maxLength": MAX_LABEL_NAME_CHARS,
                "pattern": NO_CONTROL,
            },
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_LABEL_VALUE_CHARS,
                "pattern": TEXT,
            },
            "description": _LABELS_DESCRIPTION,
        }
    ),
]
ReadingId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL),
    Field(description="client-chosen id; a reading re-sent with the same id is stored once"),
]


def within_max_value(value: float) -> float:
    if abs(value) > MAX_VALUE:
        raise ValueError("value must be at most 1e308 in size")
    return value


# Strict: a JSON number only (an integer is fine), not true/false or "1.5"; at most
# MAX_VALUE in size (see common.metrics.models).
FiniteFloat = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        # Documented here, checked by within_max_value (le= would print the bound in full).
        json_schema_extra={"minimum": -MAX_VALUE, "maximum": MAX_VALUE},
        description="a finite number, at most 1e308 in size (kept to 15 significant digits)",
    ),
    AfterValidator(within_max_value),
]


def as_utc(moment: datetime) -> datetime:
    """Naive timestamps are UTC; the result is always in range and timezone-aware."""
    out_of_range = "timestamp must be between 1970-01-01 and 2200-01-01 (UTC)"
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise ValueError(out_of_range) from exc
    if not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP:
        raise ValueError(out_of_range)
    return moment


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    if isinstance(value, str) and ":" in value:
        return False  # no number has a colon: a timestamp need not pay for float() failing
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def iso_text_only(value: Any) -> Any:
    """A number (or "1700000000" in a query) would be read as epoch seconds or milliseconds
    depending on its size: refuse to guess."""
    if _is_number(value):
        raise ValueError("timestamp must be an ISO 8601 string such as 2026-01-01T00:00:00Z")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(iso_text_only),
    AfterValidator(as_utc),
    Field(description="ISO 8601; without an offset it is taken as UTC"),
]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A PATCH of a name and a description (null clears the description). No docstring: the
# OpenAPI text of ServiceUpdate and MetricUpdate would change.
class NameEditUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None

    def edit(self) -> NameEdit:
        return NameEdit(self.name, self.description, "description" in self.model_fields_set)
