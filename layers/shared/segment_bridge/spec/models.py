"""Pydantic models of Segment Spec messages (common fields plus each call type's required ones).

Only what Segment itself would refuse is enforced here (ids, `event`, `groupId`, `previousId`);
naming conventions and semantic-event checks belong to the conformance layer.

`message_fields` is what the normalizer reads from a validated message. The models decide; a
plain message (the common shapes, as built-in sources map them) is read without building a model,
by a check that accepts only what the models accept unchanged (see `_plain_fields`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ..limits import MAX_MESSAGE_ID_LENGTH


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
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # "0001-01-01T00:00:00+01:00" is a valid ISO 8601 text whose UTC form is in year 0. A
        # ValueError, which pydantic reports as this field's error: the message is refused with the
        # reason, not the whole request lost to an OverflowError (a 500).
        raise ValueError("timestamp is outside years 1-9999 once converted to UTC") from None


def format_timestamp(value: datetime) -> str:
    return _as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: A UTC timestamp as the built-in sources write it ("2026-01-05T09:00:00Z", "...:00.123456Z").
_UTC_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])(?:\.([0-9]{1,6}))?Z"
)


def utc_text(raw: str) -> str | None:
    """`format_timestamp` of what pydantic parses `raw` into, without the datetime round trip, when
    `raw` is a real UTC moment written with a "Z" (then it is `raw` with the fraction cut or padded
    to milliseconds); None for any other text (tests/unit/test_spec_fast_path.py compares both)."""
    match = _UTC_TIMESTAMP.fullmatch(raw)
    if match is None:
        return None
    whole, fraction = match.groups()
    try:
        date.fromisoformat(whole[:10])  # the pattern allows month 13 or February 30
    except ValueError:
        return None
    return f"{whole}.{((fraction or '') + '000')[:3]}Z"


MAX_ID_LENGTH = 1024
Identifier = Annotated[str, BeforeValidator(_stringify_id), Field(min_length=1, max_length=MAX_ID_LENGTH)]
SpecTimestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
MessageId = Annotated[str, BeforeValidator(_stringify_id), Field(min_length=1, max_length=MAX_MESSAGE_ID_LENGTH)]


class SpecMessage(BaseModel):
    """Fields common to every call (Spec: common.md)."""

    # defer_build: the validators are built on first use, not at import. Built-in sources' messages
    # take `message_fields`' plain path, so most environments never need them (cold start).
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=False, defer_build=True)

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


AnyMessage = Annotated[Track | Identify | Page | Screen | Group | Alias, Field(discriminator="type")]
CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")


@cache
def message_adapter() -> TypeAdapter[Any]:
    """The validator of `AnyMessage`, built on first use (not at import: a cold start may never need it)."""
    return TypeAdapter(AnyMessage)


def describe_validation_error(exc: ValidationError) -> str:
    """The models' refusal in the caller's terms: up to five `field: problem` parts, no input values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        location = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) == 1)
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(parts)


class MessageFields(NamedTuple):
    """What the normalizer takes from a validated message: ids as text, the timestamp in Spec form."""

    user_id: str | None
    anonymous_id: str | None
    message_id: str | None
    timestamp: str | None
    context: dict[str, Any]


def message_fields(message: dict[str, Any]) -> MessageFields:
    """Validate `message` against the models; raises pydantic's `ValidationError` if they refuse it."""
    plain = _plain_fields(message)
    if plain is not None:
        return plain
    model = message_adapter().validate_python(message)
    timestamp = None
    if model.timestamp is not None:
        raw = message.get("timestamp")
        timestamp = (utc_text(raw) if isinstance(raw, str) else None) or format_timestamp(model.timestamp)
    return MessageFields(model.userId, model.anonymousId, model.messageId, timestamp, dict(model.context))


# -- the plain-message fast path --------------------------------------------------------------
# Validating a model costs more than the rest of normalizing a mapped event. Most messages need no
# conversion at all: ASCII text ids within their lengths, objects with text keys, a "...Z" UTC
# timestamp. For those the models' result is the input itself, so it is read directly. Anything
# else (numeric ids, other timestamp forms, non-ASCII names, a wrong type) goes to the models,
# which accept or refuse it with their own messages. The rules mirror the models above field by
# field; tests/unit/test_spec_fast_path.py checks they match the models' fields and constraints
# and compares both paths on generated messages.

_NO_LIMIT = sys.maxsize


@dataclass(frozen=True)
class _PlainRules:
    #: Text fields: (name, required, min length, max length). ASCII only: pydantic refuses some
    #: non-ASCII text (lone surrogates) the encoder would take, so such text goes to the models.
    texts: tuple[tuple[str, bool, int, int], ...]
    #: `dict[str, Any]` fields: (name, may be null).
    objects: tuple[tuple[str, bool], ...]


def _rules(texts: Mapping[str, tuple[bool, int, int]], objects: Mapping[str, bool]) -> _PlainRules:
    common_texts = {
        "userId": (False, 1, MAX_ID_LENGTH),
        "anonymousId": (False, 1, MAX_ID_LENGTH),
        "messageId": (False, 1, MAX_MESSAGE_ID_LENGTH),
    }
    common_objects = {"context": False, "integrations": True}
    return _PlainRules(
        tuple((name, *rule) for name, rule in {**common_texts, **texts}.items()),
        tuple({**common_objects, **objects}.items()),
    )


_PLAIN_RULES: dict[str, _PlainRules] = {
    "track": _rules({"event": (True, 1, 200)}, {"properties": False}),
    "identify": _rules({}, {"traits": False}),
    "page": _rules({"name": (False, 0, _NO_LIMIT), "category": (False, 0, _NO_LIMIT)}, {"properties": False}),
    "screen": _rules({"name": (False, 0, _NO_LIMIT), "category": (False, 0, _NO_LIMIT)}, {"properties": False}),
    "group": _rules({"groupId": (True, 1, MAX_ID_LENGTH)}, {"traits": False}),
    "alias": _rules({"userId": (True, 1, MAX_ID_LENGTH), "previousId": (True, 1, MAX_ID_LENGTH)}, {}),
}


def _plain_fields(message: dict[str, Any]) -> MessageFields | None:
    """The models' `MessageFields` for a message they take unchanged; None: let the models decide."""
    kind = message.get("type")
    rules = _PLAIN_RULES.get(kind) if type(kind) is str else None
    if rules is None:
        return None
    get = message.get
    for name, required, low, high in rules.texts:
        value = get(name)
        if value is None:
            if required:
                return None
        elif type(value) is not str or not value.isascii() or not low <= len(value) <= high:
            return None
    keys = list(message)  # the message's keys and its objects' keys, checked together below
    for name, nullable in rules.objects:
        value = get(name)
        if value is None:
            if name in message and not nullable:
                return None
        elif type(value) is not dict:
            return None
        else:
            keys.extend(value)
    if not _ascii_text(keys):
        return None
    timestamp = get("timestamp")
    if timestamp is not None:
        timestamp = utc_text(timestamp) if type(timestamp) is str else None
        if timestamp is None:
            return None
    return MessageFields(get("userId"), get("anonymousId"), get("messageId"), timestamp, dict(get("context") or {}))


def _ascii_text(keys: list[Any]) -> bool:
    """Every key is ASCII text (one C-level pass: `join` refuses a key that is not text)."""
    try:
        return "".join(keys).isascii()
    except TypeError:
        return False
