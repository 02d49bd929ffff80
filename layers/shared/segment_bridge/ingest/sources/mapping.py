"""The one mechanism every tool adapter maps with, and the helpers it reads fields by.

A tool adapter is data plus a few small functions:

- an `EventTable`: which tool event types become which Segment events, and which are skipped
  (or passed through under a custom name);
- a `PropertyTable`: which Spec property is found where in the tool's event (a key, a path of
  keys, or a small function), read by `read_properties`;
- a function that says who and when (`ToolEvent`: recipient, the tool's ids, timestamp), whose
  `track` / `identify` builds the message. The shape of the message, the QA context key and the
  skip/passthrough decision are decided here, once, for every tool.

Webhook bodies are untrusted JSON, so every accessor tolerates any type: a wrong type reads as
missing, and the message is then complete or refused by the shared normalizer, never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from ...events import MappedEvent, Skipped
from ...safe_json import text
from ...spec import to_proper_case
from .base import SourceSettings

#: `context.source_event`: the tool's own name, event type and id, for QA in the Segment debugger
#: (Segment's partner docs: "your own ID can go in a custom context key").
SOURCE_EVENT_CONTEXT_KEY = "source_event"

#: ISO 4217 currencies Stripe (and most tools) count in whole units or in thousandths; all others
#: in hundredths. https://docs.stripe.com/currencies#zero-decimal (ISK, HUF, TWD stay two-decimal
#: in the API for backwards compatibility, as Stripe documents under "special cases").
ZERO_DECIMAL_CURRENCIES = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())


def dig(value: Any, *path: str) -> Any:
    """`value[path[0]][path[1]]...`, or None as soon as a level is not an object."""
    for key in path:
        # `dict` first: an isinstance check against typing's Mapping runs Python code (hot path).
        if not isinstance(value, dict) and not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def first_text(*values: Any) -> str | None:
    for value in values:
        found = text(value)
        if found is not None:
            return found
    return None


def first_item(value: Any) -> Any:
    """The first element of a list (Mailgun's `campaigns`), or None."""
    return value[0] if isinstance(value, list) and value else None


def as_list(value: Any) -> list[str]:
    """Tags and categories come as a string, a list of strings, or not at all."""
    items = value if isinstance(value, list) else [value]
    return [t for t in map(text, items) if t is not None]


#: 10000-01-01T00:00:00Z: whole seconds below it (and from the epoch on) format as four-digit years.
_YEAR_10000 = 253402300800


def from_unix(value: Any) -> str | None:
    """Unix seconds (int, float or numeric string) as ISO 8601 UTC; None if not a sane number."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
        if seconds.is_integer() and 0 <= seconds < _YEAR_10000:
            # What the line below gives for whole seconds (tools send whole seconds), at a fraction
            # of the cost: Unix minutes are exactly 60 s, so the minute's text is formatted once
            # (tests/unit/test_sources_mapping.py compares both).
            minute, second = divmod(int(seconds), 60)
            return f"{_utc_minute(minute)}{second:02d}Z"
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@lru_cache(maxsize=1024)
def _utc_minute(minute: int) -> str:
    """ "2026-01-05T09:41:" for a Unix minute. Cached: the events of one webhook share a few minutes."""
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))


def from_minor_units(amount: Any, currency: str | None) -> float | int | None:
    """An amount in the currency's smallest unit as a decimal amount (JPY 500 stays 500)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        return None
    code = (currency or "").upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return amount
    digits = 3 if code in THREE_DECIMAL_CURRENCIES else 2
    return round(amount / (1000 if digits == 3 else 100), digits)


def currency_code(value: Any) -> str | None:
    code = text(value)
    return code.upper() if code else None


def proper_case(*parts: str) -> str:
    """`("Email", "group_resubscribe")` -> "Email Group Resubscribe"; keeps acronyms like SMS."""
    return to_proper_case(" ".join(part for part in parts if part))


#: Types whose empty value counts as missing in `compact` (falsy numbers and False are values).
_EMPTY_AS_MISSING = (str, list, dict)


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop missing values (None, "", [], {}), so messages carry only what the tool actually sent."""
    # This runs several times per event on the hot path: when every value is truthy (the common
    # case, one C-level pass) the result is a plain copy; otherwise a truthy value is kept after one test.
    if all(values.values()):
        return dict(values)
    return {k: v for k, v in values.items() if v or (v is not None and not isinstance(v, _EMPTY_AS_MISSING))}


def custom_user_id(fields: Any, settings: SourceSettings) -> str | None:
    """The customer's userId from the tool's custom fields, under the tenant's `user_id_field`."""
    return text(dig(fields, settings.user_id_field))


def event_key(tool_id: Any, *qualifiers: Any) -> str | None:
    """A stable key for the messageId: the tool's id plus what tells its events apart. None
    (derive from content) when the tool sent no id at all."""
    if text(tool_id) is None:
        return None
    return ":".join([str(part) for part in (tool_id, *qualifiers) if part is not None])


def exact_key(*parts: str | None) -> str:
    """A key for the messageId from several parts, none of which can run into another: a ":" or
    "\\" inside a part is escaped, so ("a:b", "c") and ("a", "b:c") stay two keys. Missing parts
    keep their place (empty). For keys made of the tool's free text (addresses, URLs, times).
    One comprehension, no call per part: it runs once per event (SendGrid: thousands a webhook)."""
    return ":".join(
        [(p.replace("\\", "\\\\").replace(":", "\\:") if ":" in p or "\\" in p else p) if p else "" for p in parts]
    )


#: Where a tool keeps a value: a top-level key, a path of keys into nested objects, or a function
#: of the event (for what takes more than a lookup, such as the first of a list).
Location = str | tuple[str, ...] | Callable[[Mapping[str, Any]], Any]
#: `(Spec property, locations)` rows, in the order the properties should appear; the first location
#: that holds text gives the value.
PropertyTable = tuple[tuple[str, tuple[Location, ...]], ...]


def read_properties(event: Mapping[str, Any], table: PropertyTable) -> dict[str, Any]:
    """`{property: first text found at its locations}` for each row of `table` that finds text,
    in the table's order; rows that find none are left out (as `compact` would drop them).

    The hot path of every tool (SendGrid posts thousands of events per webhook): a plain key, the
    common case, is one dict lookup, and `text()` is inlined.
    """
    out: dict[str, Any] = {}
    get = event.get
    for name, locations in table:
        for location in locations:
            if isinstance(location, str):
                value = get(location)
            elif isinstance(location, tuple):
                value = dig(event, *location)
            else:
                value = location(event)
            if value is None:  # absent: most rows, for most event types
                continue
            if isinstance(value, str):  # text(), inline
                if value and not value.isspace():
                    out[name] = value
                    break
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[name] = str(value)
                break
    return out


@dataclass(frozen=True)
class EventTable:
    """Which tool event types become which Segment events.

    `mapped` events are always forwarded. `unmapped` ones have no Spec counterpart: they are
    skipped unless the tenant sets `unmapped_events: passthrough`, and then carry the custom
    Proper Case name given here (or `noun` + the tool's type, for types not listed).
    """

    tool: str
    noun: str
    mapped: Mapping[str, str]
    unmapped: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, kind: str, settings: SourceSettings) -> str | Skipped:
        if kind in self.mapped:
            return self.mapped[kind]
        name = self.unmapped.get(kind) or proper_case(self.noun, kind)
        if settings.unmapped_events == "passthrough":
            return name
        return Skipped(
            f"{self.tool} event {kind!r} has no Segment Spec counterpart; "
            f"set unmapped_events to passthrough to forward it as {name!r}"
        )

    def track(self, event: ToolEvent, properties: Mapping[str, Any], settings: SourceSettings) -> MappedEvent | Skipped:
        """The track message for `event` under the name this table gives it, or why it is skipped."""
        name = self.mapped.get(event.kind) or self.resolve(event.kind, settings)
        return name if isinstance(name, Skipped) else event.track(name, properties)


class ToolEvent(NamedTuple):
    """What an adapter extracts from one tool event: who, when, and the tool's own ids.

    A NamedTuple: built at C speed once per event (a SendGrid webhook carries thousands).
    """

    tool: str
    #: The tool's event type (with a qualifier where the tool's type alone is ambiguous,
    #: e.g. "bounce/blocked"); the key into the adapter's `EventTable`.
    kind: str
    tool_id: str | None
    key: str | None
    timestamp: str | None
    user_id: str | None = None
    email: str | None = None
    phone: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    def track(self, name: str, properties: Mapping[str, Any]) -> MappedEvent:
        return self.message({"type": "track", "event": name, "properties": compact(properties)})

    def identify(self, traits: Mapping[str, Any]) -> MappedEvent:
        return self.message({"type": "identify", "traits": compact(traits)})

    def message(self, body: dict[str, Any]) -> MappedEvent:
        """The event's message around `body` (its call type and payload): the one place that
        decides the shape. What `compact` would drop is left out: the fields are text or None, so
        a missing one is exactly a falsy one, tested inline (this runs once per event of every tool).
        """
        recipient: dict[str, str] = {}
        if self.email:
            recipient["email"] = self.email
        if self.phone:
            recipient["phone"] = self.phone
        source_event: dict[str, str] = {}
        if self.tool:
            source_event["tool"] = self.tool
        if self.kind:
            source_event["type"] = self.kind
        if self.tool_id:
            source_event["id"] = self.tool_id
        context: dict[str, Any] = {}
        if recipient:
            context["traits"] = recipient
        if self.ip:
            context["ip"] = self.ip
        if self.user_agent:
            context["userAgent"] = self.user_agent
        if source_event:
            context[SOURCE_EVENT_CONTEXT_KEY] = source_event
        message = compact(body)
        if self.user_id:
            message["userId"] = self.user_id
        if self.timestamp:
            message["timestamp"] = self.timestamp
        if context:
            message["context"] = context
        # A copy: the reviewer may repair context.traits in place; the hints must stay as sent.
        return MappedEvent(message, self.key, dict(recipient))
