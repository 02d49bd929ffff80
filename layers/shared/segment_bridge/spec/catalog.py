"""The Segment Spec catalog: semantic events by category, reserved traits, context fields.

The facts live in `data/spec_catalog.json`, one reviewable file that mirrors Segment's docs. This
module loads it once, resolves the type strings and precomputes the key indexes the checks use,
so a check never parses or scans the catalog on the hot path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from .naming import comparison_key

PRIMITIVES = frozenset({"string", "number", "integer", "boolean", "date", "object", "array"})


@dataclass(frozen=True)
class TypeOption:
    """One alternative of a field type: a primitive or a shape, possibly as an array of it."""

    base: str
    array: bool = False
    shape: Shape | None = None


@dataclass(frozen=True)
class FieldType:
    #: As written in the catalog ("product[]", "string|string[]"): what the partner is told.
    spec: str
    options: tuple[TypeOption, ...]
    #: Python types (exact, as JSON parses them) that fit an option with nothing inside to check:
    #: a value of one of these needs no further look (the checks' fast path).
    plain_types: frozenset[type] = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True, eq=False)
class Shape:
    """The documented keys of an object (properties, traits, context, or a nested object).

    Compared and hashed by identity: each is built once, and checks memoise per (shape, key).
    """

    name: str
    fields: Mapping[str, FieldType]
    #: comparison_key(documented key) -> documented key: "orderId" and "Order-ID" find "order_id".
    keys: Mapping[str, str] = field(repr=False)
    #: comparison_key(another name) -> (documented key, why): the catalog's `property_synonyms`
    #: that apply here ("transaction_id" for "order_id" on order events). Empty on reserved shapes.
    synonyms: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def merged(self, other: Shape, name: str) -> Shape:
        return _shape(name, {**other.fields, **self.fields}, dict(self.synonyms))


@dataclass(frozen=True)
class PropertySynonym:
    """Another name partners give a documented property (`property_synonyms` in the catalog).

    `scope` names the shapes and events it applies to; empty: every event shape documenting `field`
    (and the shapes events include or nest). Each one is decided with its reason (`why`), which the
    finding quotes; docs/conformance.md lists the names deliberately left out.
    """

    field: str
    names: tuple[str, ...]
    why: str
    scope: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Vocabulary:
    """How partners word event names beyond the Spec's own words (`vocabulary` in the catalog).

    Read by `event_names`; words and phrases are as written, the matcher reduces them to stems.
    """

    #: Connectives that carry no meaning in an event name ("Email Marked as Spam" is "Email Marked Spam").
    stop_words: frozenset[str]
    #: Connectives that bind the next word ("Added to Cart" is not "Cart Added"; order is free otherwise).
    relations: frozenset[str]
    #: Irregular inflected form -> base form ("sent" -> "send"); regular ones need no entry.
    irregular: Mapping[str, str]
    #: Word or phrase -> the catalog words it stands for, in every category ("finish" -> "complete").
    words: Mapping[str, str]


@dataclass(frozen=True)
class SpecEvent:
    name: str
    category: str
    #: The event's own documented properties (what `segment-bridge catalog` prints).
    properties: Shape
    #: Its properties plus the reserved track properties every event may carry (what is checked).
    checked_properties: Shape = field(repr=False)
    synonyms: tuple[str, ...] = ()
    #: Context paths Segment documents on every event of the category ("traits.email", "groupId").
    expected_context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    name: str
    doc: str
    events: tuple[SpecEvent, ...]
    #: Word or phrase -> the catalog words it stands for within this category ("app" -> "application").
    words: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Catalog:
    categories: tuple[Category, ...]
    events: Mapping[str, SpecEvent]
    track_properties: Shape
    page_properties: Shape
    screen_properties: Shape
    identify_traits: Shape
    group_traits: Shape
    context: Shape
    #: Call type -> fields Segment drops the call without (besides userId/anonymousId).
    required_fields: Mapping[str, tuple[str, ...]]
    vocabulary: Vocabulary
    property_synonyms: tuple[PropertySynonym, ...] = ()

    def event(self, name: str) -> SpecEvent | None:
        return self.events.get(name)


def _shape(name: str, fields: dict[str, FieldType], synonyms: dict[str, tuple[str, str]] | None = None) -> Shape:
    keys: dict[str, str] = {}
    for key in fields:
        other = keys.setdefault(comparison_key(key), key)
        if other != key:
            raise ValueError(f"catalog shape {name!r}: keys {other!r} and {key!r} are indistinguishable")
    for alias, (documented, _) in (synonyms or {}).items():
        if alias in keys:
            raise ValueError(f"catalog shape {name!r}: synonym {alias!r} of {documented!r} is a documented key")
    return Shape(name, MappingProxyType(dict(fields)), MappingProxyType(keys), MappingProxyType(dict(synonyms or {})))


def _synonyms_for(
    names: set[str], fields: Mapping[str, object], synonyms: tuple[PropertySynonym, ...]
) -> dict[str, tuple[str, str]]:
    """The property synonyms that apply to a shape known by `names` (its own, its includes)."""
    found: dict[str, tuple[str, str]] = {}
    for synonym in synonyms:
        if synonym.field in fields and (not synonym.scope or synonym.scope & names):
            for alias in synonym.names:
                found[comparison_key(alias)] = (synonym.field, synonym.why)
    return found


class _Loader:
    """Resolves shape references ("product[]", "video_content") once each."""

    def __init__(
        self,
        raw_shapes: dict[str, dict[str, str]],
        synonyms: tuple[PropertySynonym, ...] = (),
        event_shapes: frozenset[str] = frozenset(),
    ) -> None:
        self.raw_shapes = raw_shapes
        #: Property synonyms apply to event shapes and to `event_shapes`, the shapes events use.
        self.synonyms = synonyms
        self.event_shapes = event_shapes
        self.shapes: dict[str, Shape] = {}
        #: Type spec -> its FieldType: some 700 fields share a few dozen specs ("string" most).
        self.types: dict[str, FieldType] = {}

    def shape(self, name: str, raw: dict[str, str] | None = None) -> Shape:
        if raw is None:
            if name not in self.shapes:
                self.shapes[name] = self._build(name, self.raw_shapes[name])
            return self.shapes[name]
        return self._build(name, raw)

    def _build(self, name: str, raw: dict[str, str], synonyms: dict[str, tuple[str, str]] | None = None) -> Shape:
        fields = {key: self.field_type(spec) for key, spec in raw.items()}
        if synonyms is None and name in self.event_shapes:
            synonyms = _synonyms_for({name}, fields, self.synonyms)
        return _shape(name, fields, synonyms)

    def field_type(self, spec: str) -> FieldType:
        known = self.types.get(spec)
        if known is None:
            known = self.types[spec] = self._field_type(spec)
        return known

    def _field_type(self, spec: str) -> FieldType:
        options = []
        for alternative in spec.split("|"):
            base, array = (alternative[:-2], True) if alternative.endswith("[]") else (alternative, False)
            if base in PRIMITIVES:
                options.append(TypeOption(base, array))
            elif base in self.raw_shapes:
                options.append(TypeOption("object", array, self.shape(base)))
            else:
                raise ValueError(f"catalog type {spec!r}: unknown type {base!r}")
        return FieldType(spec, tuple(options), _plain_types(options))

    def event_shape(self, name: str, raw_event: dict[str, Any]) -> Shape:
        fields: dict[str, str] = {}
        for included in raw_event.get("include", ()):
            fields.update(self.raw_shapes[included])
        fields.update(raw_event.get("properties", {}))
        scope = {name, *raw_event.get("include", ())}
        return self._build(name, fields, _synonyms_for(scope, fields, self.synonyms))


#: The exact types that always fit a plain option of each base type (no bool for numbers; floats
#: fit "integer" only when whole, dates only when they parse: those are left to the full check).
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _plain_types(options: list[TypeOption]) -> frozenset[type]:
    types = {t for o in options if o.shape is None and not o.array for t in _PLAIN_TYPES.get(o.base, ())}
    if any(o.shape is not None for o in options):
        types -= {dict, list}  # a shaped option checks what is inside objects and arrays
    return frozenset(types)


def _used_by_events(raw: dict[str, Any]) -> frozenset[str]:
    """Shapes that events include or nest, directly or deeper (not the reserved traits/context ones)."""
    shapes: dict[str, dict[str, str]] = raw["shapes"]
    pending = [
        spec
        for category in raw["categories"]
        for event in category["events"]
        for spec in [*event.get("include", ()), *event.get("properties", {}).values()]
    ]
    used: set[str] = set()
    while pending:
        for alternative in pending.pop().split("|"):
            base = alternative.removesuffix("[]")
            if base in shapes and base not in used:
                used.add(base)
                pending.extend(shapes[base].values())
    return frozenset(used)


def _property_synonyms(raw: list[dict[str, Any]]) -> tuple[PropertySynonym, ...]:
    return tuple(
        PropertySynonym(entry["field"], tuple(entry["names"]), entry["why"], frozenset(entry.get("in", ())))
        for entry in raw
    )


def _vocabulary(raw: dict[str, Any]) -> Vocabulary:
    return Vocabulary(
        stop_words=frozenset(raw.get("stop_words", ())),
        relations=frozenset(raw.get("relations", ())),
        irregular=MappingProxyType(dict(raw.get("irregular", {}))),
        words=MappingProxyType(dict(raw.get("words", {}))),
    )


def load_catalog(raw: dict[str, Any]) -> Catalog:
    synonyms = _property_synonyms(raw.get("property_synonyms", []))
    loader = _Loader(raw["shapes"], synonyms, _used_by_events(raw))
    reserved = raw["reserved"]
    track = loader.shape("track_properties", reserved["track_properties"])
    categories = []
    events: dict[str, SpecEvent] = {}
    for raw_category in raw["categories"]:
        members = []
        for raw_event in raw_category["events"]:
            name = raw_event["name"]
            properties = loader.event_shape(name, raw_event)
            event = SpecEvent(
                name=name,
                category=raw_category["name"],
                properties=properties,
                checked_properties=properties.merged(track, name),
                synonyms=tuple(raw_event.get("synonyms", ())),
                expected_context=tuple(raw_category.get("expected_context", ())),
            )
            if name in events:
                raise ValueError(f"catalog lists {name!r} twice")
            events[name] = event
            members.append(event)
        words = MappingProxyType(dict(raw_category.get("words", {})))
        categories.append(Category(raw_category["name"], raw_category["doc"], tuple(members), words))
    return Catalog(
        categories=tuple(categories),
        events=MappingProxyType(events),
        track_properties=track,
        page_properties=loader.shape("page_properties", reserved["page_properties"]),
        screen_properties=loader.shape("screen_properties", reserved["screen_properties"]),
        identify_traits=loader.shape("identify_traits", reserved["identify_traits"]),
        group_traits=loader.shape("group_traits", reserved["group_traits"]),
        context=loader.shape("context", reserved["context"]),
        required_fields=MappingProxyType({k: tuple(v) for k, v in raw["required_fields"].items()}),
        vocabulary=_vocabulary(raw.get("vocabulary", {})),
        property_synonyms=synonyms,
    )


def _read_catalog() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data/spec_catalog.json").read_text(encoding="utf-8")
    catalog: dict[str, Any] = json.loads(text)
    return catalog


#: Loaded once per process (at import, i.e. during a Lambda's init phase, not per request).
CATALOG = load_catalog(_read_catalog())
