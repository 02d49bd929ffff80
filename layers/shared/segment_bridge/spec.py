"""Pydantic models of Segment Spec messages (common fields plus each call type's required ones).

Only what Segment itself would refuse is enforced here (ids, `event`, `groupId`, `previousId`);
naming conventions and semantic-event checks belong to the conformance layer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from .limits import MAX_MESSAGE_ID_LENGTH


def _stringify_id(value: Any) -> Any:
    # analytics-python stringifies ids; tools often carry numeric ones (Mandrill metadata user_id: 111).
    if isinstance(value, bool):
        raise ValueError("must be a string, not a boolean")
    if isinstance(value, int):
        return str(value)
    return value


def _as_utc(value: datetime) -> datetime:
    # Spec timestamps are ISO-8601 in UTC. A naive timestamp is taken as UTC (documented in README).
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def format_timestamp(value: datetime) -> str:
    return _as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Identifier = Annotated[str, BeforeValidator(_stringify_id), Field(min_length=1, max_length=1024)]
SpecTimestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
MessageId = Annotated[str, BeforeValidator(_stringify_id), Field(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]


class SpecMessage(BaseModel):
    """Fields common to every call (Spec: common.md)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False)

    userId: Identifier | None = None
    anonymousId: Identifier | None = None
    messageId: MessageId | None = None
    timestamp: SpecTimestamp | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _as_utc(value)

    def check_identity(self) -> None:
        if not (self.userId or self.anonymousId):
            raise ValueError("userId or anonymousId is required")


class Track(SpecMessage):
    type: Literal["track"]
    event: str = Field(min_length=1, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(SpecMessage):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


class Page(SpecMessage):
    type: Literal["page"]
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(SpecMessage):
    type: Literal["screen"]
    name: str | None = None
    category: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Group(SpecMessage):
    type: Literal["group"]
    groupId: Identifier
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(SpecMessage):
    type: Literal["alias"]
    userId: Identifier
    previousId: Identifier

    def check_identity(self) -> None:  # alias carries its own required ids
        return None


AnyMessage = Annotated[Union[Track, Identify, Page, Screen, Group, Alias], Field(discriminator="type")]
CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
