"""Spec conformance checks: what in a message would break Segment's Spec, and the fix for each.

Pure functions over one message (a dict, as mapped or as a partner wrote it). Nothing here
decides what to do about a finding; `review` applies the tenant's policy and `lint` reports.
Every finding carries a code, a severity, a message that names no values (they may be personal
data) and the fix in words; most also carry a `Repair`, the mechanical form of that fix.

Codes, by family (the family is what a tenant's policy is set for):
- spec.event_name      a near-miss of a Spec event name (casing, synonym, spelling)
- spec.property_name   a documented property/context key in another form ("orderId")
- spec.property_type   a documented field of the wrong type (a string `total`)
- spec.missing_context a context field the event's category documents on every event
- style.event_name     a custom event name that is not Proper Case
- style.property_name  a custom property key that is not snake_case
- style.trait_name     a reserved trait not in its documented form ("first_name" for "firstName")
- partner.write_key    a writeKey in the message body
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from ..spec import (
    CATALOG,
    FieldType,
    NameMatch,
    Shape,
    SpecEvent,
    TypeOption,
    comparison_key,
    is_proper_case,
    is_snake_case,
    match_event_name,
    to_proper_case,
    to_snake_case,
)
from ..tenants import NO_ALLOWLIST, ConformanceAllowlist

Severity = Literal["error", "warning"]
PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Repair:
    """A mechanical fix. Paths are into the message as received, so repairs compose in any subset."""

    op: Literal["set", "rename", "drop"]
    path: Path
    #: The new value (`set`) or the new key (`rename`).
    value: Any = None


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    path: str
    message: str
    fix: str
    repair: Repair | None = None

    @property
    def family(self) -> str:
        return self.code.partition(".")[0]


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# -- the entry point --------------------------------------------------------------------------


def check_message(message: dict[str, Any], allow: ConformanceAllowlist = NO_ALLOWLIST) -> list[Finding]:
    """Every Spec, style and partner finding in one message. Malformed parts are left to the Spec
    model (normalize/lint): a `properties` that is not an object is simply not inspected here.

    `allow` holds the names the partner sends on purpose (the tenant's allowlist): an allowed
    event name is a custom event, an allowed key is never read as another documented one.
    """
    findings: list[Finding] = []
    _check_write_key(message, findings)
    keys = allow.property_keys
    kind = message.get("type")
    if kind == "track":
        _check_track(message, findings, allow)
    elif kind == "identify":
        _check_object(message.get("traits"), CATALOG.identify_traits, ("traits",), findings, _TRAITS, keys)
    elif kind == "group":
        _check_object(message.get("traits"), CATALOG.group_traits, ("traits",), findings, _TRAITS, keys)
    elif kind == "page":
        _check_object(message.get("properties"), CATALOG.page_properties, ("properties",), findings, _PROPERTIES, keys)
    elif kind == "screen":
        shape = CATALOG.screen_properties
        _check_object(message.get("properties"), shape, ("properties",), findings, _PROPERTIES, keys)
    context = message.get("context")
    if isinstance(context, dict):
        _check_object(context, CATALOG.context, ("context",), findings, _NESTED, keys)
        _check_object(context.get("traits"), CATALOG.identify_traits, ("context", "traits"), findings, _TRAITS, keys)
    return findings


# -- names ------------------------------------------------------------------------------------


def _check_track(message: dict[str, Any], findings: list[Finding], allow: ConformanceAllowlist) -> None:
    name = message.get("event")
    event = None
    if isinstance(name, str) and 0 < len(name) <= _MAX_CACHED_LENGTH:  # longer: the Spec model refuses it
        if name in allow.event_names:
            finding = _custom_name_verdict(name)
        else:
            event, finding = _event_name_verdict(name)
        if finding is not None:
            findings.append(finding)
    shape = event.checked_properties if event is not None else CATALOG.track_properties
    _check_object(message.get("properties"), shape, ("properties",), findings, _PROPERTIES, allow.property_keys)
    if event is not None:
        _check_expected_context(message, event.category, event.expected_context, findings)


#: Names and keys up to this length are cached; caches stay bounded in memory whatever is sent.
_MAX_CACHED_LENGTH = 200


@lru_cache(maxsize=8192)
def _event_name_verdict(name: str) -> tuple[SpecEvent | None, Finding | None]:
    """The Spec event a name stands for and the finding about the name; cached per distinct name."""
    match = match_event_name(name)
    if match is not None:
        event = CATALOG.event(match.canonical)
        if match.how == "exact":
            return event, None
        return event, _event_name_finding(name, match)
    return None, _custom_name_verdict(name)


@lru_cache(maxsize=8192)
def _custom_name_verdict(name: str) -> Finding | None:
    """The style finding about a custom event name (None when it is Proper Case)."""
    if is_proper_case(name):
        return None
    proper = to_proper_case(name)
    return Finding(
        "style.event_name",
        "warning",
        "event",
        f'event name {quote(name)} is not Proper Case (Segment\'s convention: "Object Action")',
        f"rename the event to {quote(proper)}" if proper else 'use a Proper Case name such as "Report Exported"',
        Repair("set", ("event",), proper) if proper else None,
    )


_HOW = {
    "casing": "is the Spec event {canonical} in another casing",
    "form": "is the Spec event {canonical} in another form",
    "synonym": "is a synonym of the Spec event {canonical}",
    "spelling": "looks like a misspelling of the Spec event {canonical}",
}


def _event_name_finding(name: str, match: NameMatch) -> Finding:
    """The finding names the canonical event and why the name reads as it (the matcher's reasons)."""
    explained = _HOW[match.how].format(canonical=quote(match.canonical))
    if match.reasons:
        explained += f" ({'; '.join(match.reasons)})"
    return Finding(
        "spec.event_name",
        "error",
        "event",
        f"event {quote(name)} {explained}; Segment rejects near-miss names of Spec events",
        f"rename the event to {quote(match.canonical)} (if {quote(name)} is custom on purpose: "
        "conformance.allow.events in the tenant, or lint --allow)",
        Repair("set", ("event",), match.canonical),
    )


def _check_expected_context(
    message: dict[str, Any], category: str, paths: tuple[str, ...], findings: list[Finding]
) -> None:
    for dotted in paths:
        value: Any = message.get("context")
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value in (None, ""):
            findings.append(
                Finding(
                    "spec.missing_context",
                    "warning",
                    f"context.{dotted}",
                    f"{category} events carry context.{dotted} (Segment Spec)",
                    f"set context.{dotted} on every {category} event",
                )
            )


# -- keys and types ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyRules:
    #: Undocumented keys must be snake_case (Segment's advice for properties; top level only).
    snake_case: bool
    #: Other forms of a documented key are a style matter (traits: Segment reads both forms)
    #: rather than a Spec error (properties and context: destinations read the documented key).
    variants_are_style: bool
    #: Rules for objects nested under documented keys.
    nested: _KeyRules | None = None


_NESTED = _KeyRules(snake_case=False, variants_are_style=False)
_PROPERTIES = _KeyRules(snake_case=True, variants_are_style=False, nested=_NESTED)
_TRAITS = _KeyRules(snake_case=False, variants_are_style=True)


def _check_object(
    obj: Any, shape: Shape, path: Path, findings: list[Finding], rules: _KeyRules, allowed: frozenset[str]
) -> None:
    if not isinstance(obj, dict):
        return
    nested = rules.nested or rules
    fields = shape.fields
    #: Documented keys a repair already renames a key to (two "orderId"-like keys: only the first).
    claimed: set[str] | None = None
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            classify = _classify_key_cached if len(key) <= _MAX_CACHED_LENGTH else _classify_key
            documented, why, snake_case = classify(shape, key)
            if (
                documented is not None
                and why is not None
                and (documented in obj or (claimed and documented in claimed))
            ):
                documented = None  # the documented key is there (or will be): this one is another property
            if documented is not None and key not in allowed:
                finding = _key_variant_finding(obj, key, documented, why, path, rules)
                if claimed is None:
                    claimed = set()
                if documented in claimed and finding.repair is not None:
                    finding = _without_repair(finding, f"another key is already renamed to {quote(documented)}")
                claimed.add(documented)
                findings.append(finding)
                field = fields[documented]
            elif rules.snake_case and not snake_case and key not in allowed:
                findings.append(_snake_case_finding(obj, key, path))
        # A plain value of a fitting type (most of them) has nothing to check: skip the call.
        if field is not None and value is not None and type(value) not in field.plain_types:
            _check_value(value, field, path + (key,), findings, nested, allowed)


def _classify_key(shape: Shape, key: str) -> tuple[str | None, str | None, bool]:
    """An undocumented key: the documented key it is another form or a synonym of (or None), the
    synonym's reason (None for another form), and whether it is snake_case. Cached below:
    partners send the same keys over and over."""
    comparable = comparison_key(key)
    documented = shape.keys.get(comparable)
    if documented is not None:
        return documented, None, is_snake_case(key)
    documented, why = shape.synonyms.get(comparable, (None, None))
    return documented, why, is_snake_case(key)


_classify_key_cached = lru_cache(maxsize=32768)(_classify_key)


def _key_variant_finding(
    obj: dict[str, Any], key: str, documented: str, why: str | None, path: Path, rules: _KeyRules
) -> Finding:
    where = format_path(path + (key,))
    both = documented in obj
    code: str
    severity: Severity
    if why is not None:
        message = f"{where} is another name for the documented field {quote(documented)} ({why})"
        fix = (
            f"rename {quote(key)} to {quote(documented)} (if {quote(key)} is another value on purpose: "
            "conformance.allow.properties in the tenant, or lint --allow-property)"
        )
        repair = Repair("rename", path + (key,), documented)
        return Finding("spec.property_name", "error", where, message + "; destinations read only that", fix, repair)
    if rules.variants_are_style:
        code, severity = "style.trait_name", "warning"
        message = f"{where} is the reserved trait {quote(documented)} in another form"
        if both:
            message += "; both forms are present, which some destinations store as two traits"
    else:
        code, severity = "spec.property_name", "error"
        message = f"{where} is the documented field {quote(documented)} in another form; destinations read only that"
        if both:
            message += " and both are present"
    fix = f"remove {quote(key)} and keep {quote(documented)}" if both else f"rename {quote(key)} to {quote(documented)}"
    return Finding(code, severity, where, message, fix, None if both else Repair("rename", path + (key,), documented))


def _without_repair(finding: Finding, why: str) -> Finding:
    return Finding(
        finding.code, finding.severity, finding.path, f"{finding.message}; {why}", "keep one of the two keys"
    )


def _snake_case_finding(obj: dict[str, Any], key: str, path: Path) -> Finding:
    snake = to_snake_case(key)
    repair = None
    if not snake:
        fix = "use a snake_case name"
    elif snake in obj:
        fix = f"merge {quote(key)} into {quote(snake)}"
    else:
        fix, repair = f"rename {quote(key)} to {quote(snake)}", Repair("rename", path + (key,), snake)
    return Finding(
        "style.property_name",
        "warning",
        format_path(path + (key,)),
        f"property {quote(key)} is not snake_case (Segment's convention for property names)",
        fix,
        repair,
    )


_NO_FIX = object()
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_INTEGER = re.compile(r"-?\d+")


def _check_value(
    value: Any, field: FieldType, path: Path, findings: list[Finding], rules: _KeyRules, allowed: frozenset[str]
) -> None:
    for option in field.options:
        if option.shape is not None and option.array and isinstance(value, list):
            _check_items(value, option.shape, path, findings, rules, allowed)  # products[]: item by item
            return
        if _fits(value, option):
            if option.shape is not None:
                _check_object(value, option.shape, path, findings, rules, allowed)
            return
    fixed = next((c for c in (_coerce(value, o) for o in field.options) if c is not _NO_FIX), _NO_FIX)
    where = format_path(path)
    findings.append(
        Finding(
            "spec.property_type",
            "error",
            where,
            f"{where} is {_json_type(value)}; the Spec type is {_describe(field)}",
            f"send {where} as {_describe(field)}"
            + (" (this value converts without loss)" if fixed is not _NO_FIX else ""),
            None if fixed is _NO_FIX else Repair("set", path, fixed),
        )
    )


def _check_items(
    items: list[Any], shape: Shape, path: Path, findings: list[Finding], rules: _KeyRules, allowed: frozenset[str]
) -> None:
    for index, item in enumerate(items):
        if isinstance(item, dict):
            _check_object(item, shape, path + (index,), findings, rules, allowed)
        else:
            where = format_path(path + (index,))
            findings.append(
                Finding(
                    "spec.property_type",
                    "error",
                    where,
                    f"{where} is {_json_type(item)}; the Spec type is a {shape.name} object",
                    f"send each item of {format_path(path)} as a {shape.name} object",
                )
            )


def _fits(value: Any, option: TypeOption) -> bool:
    if option.array:
        return isinstance(value, list) and all(_fits_one(item, option.base) for item in value)
    return _fits_one(value, option.base)


def _fits_one(value: Any, base: str) -> bool:
    if base == "string":
        return isinstance(value, str)
    if base == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if base == "boolean":
        return isinstance(value, bool)
    if base == "object":
        return isinstance(value, dict)
    if base == "array":
        return isinstance(value, list)
    if base == "date":
        return isinstance(value, str) and _is_iso_date(value)
    return False


def _is_iso_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _coerce(value: Any, option: TypeOption) -> Any:
    """A lossless conversion to the option's type, or _NO_FIX (dates and objects are never guessed)."""
    if option.array:
        if not isinstance(value, list):
            return _NO_FIX
        items = [item if _fits_one(item, option.base) else _coerce_one(item, option.base) for item in value]
        return _NO_FIX if any(item is _NO_FIX for item in items) else items
    return _coerce_one(value, option.base)


def _coerce_one(value: Any, base: str) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if base == "number" and _DECIMAL.fullmatch(text):
            return int(text) if _INTEGER.fullmatch(text) else float(text)
        if base == "integer" and _INTEGER.fullmatch(text):
            return int(text)
        if base == "boolean" and text in ("true", "false"):
            return text == "true"
    elif base == "string" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _NO_FIX


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, words in ((int, "an integer"), (float, "a number"), (str, "a string"), (list, "an array")):
        if isinstance(value, kind):
            return words
    return "an object"


_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "date": "an ISO-8601 date string",
    "object": "an object",
    "array": "an array",
}


def _describe(field: FieldType) -> str:
    words = []
    for option in field.options:
        noun = f"{option.shape.name} object" if option.shape is not None else option.base
        if option.array:
            words.append(f"an array of {noun}s")
        else:
            words.append(f"a {noun}" if option.shape is not None else _TYPE_WORDS[option.base])
    return " or ".join(words)


# -- partner rules ----------------------------------------------------------------------------


_WRITE_KEYS = frozenset({"writeKey", "write_key", "writekey", "WriteKey", "WRITE_KEY", "write-key"})


def _check_write_key(message: dict[str, Any], findings: list[Finding]) -> None:
    if _WRITE_KEYS.isdisjoint(message):
        return
    for key in sorted(_WRITE_KEYS.intersection(message)):
        findings.append(
            Finding(
                "partner.write_key",
                "error",
                key,
                "the message body carries a writeKey; the bridge holds each tenant's key and never forwards one",
                f"remove {quote(key)} from the message",
                Repair("drop", (key,)),
            )
        )


# -- applying repairs -------------------------------------------------------------------------


@dataclass
class RepairRecord:
    """What repairs changed, kept in `context.conformance` so the original is never lost."""

    original_event: str | None = None
    original_keys: dict[str, str] | None = None
    original_values: dict[str, Any] | None = None
    removed: list[str] | None = None

    def as_context(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v}


def apply_repairs(message: dict[str, Any], repairs: list[Repair]) -> RepairRecord:
    """Apply repairs in place: values first, then renames deepest first, then drops.

    Every path refers to the message as received, so this order keeps them valid: a value is set
    under its original key before that key (or a parent) is renamed. The record names where each
    change ended up, after all renames.
    """
    renamed: dict[Path, str] = {}
    values: list[tuple[Path, Any]] = []
    record = RepairRecord()
    for repair in sorted(repairs, key=lambda r: (r.op != "set", r.op == "drop", -len(r.path))):
        container, key = _container(message, repair.path), repair.path[-1]
        if repair.op == "set" and container is not None:
            if repair.path == ("event",):
                record.original_event = message.get("event")
            else:
                values.append((repair.path, container[key]))
            container[key] = repair.value
        elif repair.op == "rename" and isinstance(container, dict) and isinstance(key, str) and key in container:
            _rename_in_place(container, key, repair.value)
            renamed[repair.path] = repair.value
        elif repair.op == "drop" and isinstance(container, dict) and key in container:
            del container[key]
            record.removed = (record.removed or []) + [format_path(repair.path)]

    def final(path: Path) -> str:
        return format_path(tuple(renamed.get(path[: i + 1], part) for i, part in enumerate(path)))

    if renamed:
        record.original_keys = {final(path): str(path[-1]) for path in renamed}  # renames are of object keys
    if values:
        record.original_values = {final(path): value for path, value in values}
    return record


def _container(message: dict[str, Any], path: Path) -> Any:
    node: Any = message
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _rename_in_place(obj: dict[str, Any], old: str, new: str) -> None:
    """Rename a key keeping its position, so a fixed message reads like the original."""
    items = [((new if k == old else k), v) for k, v in obj.items()]
    obj.clear()
    obj.update(items)
