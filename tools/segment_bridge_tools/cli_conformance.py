"""`segment-bridge lint` and `segment-bridge catalog`: Spec conformance for the partner's own CI.

`lint FILE` checks Spec messages (a JSON object, a JSON array, `{"batch": [...]}` or JSON lines)
and prints every finding with its fix. `--allow NAME` keeps an event name that is custom on
purpose out of the near-miss checks (`--allow-property KEY` a property key), as the tenant's
`conformance.allow` does on ingest. Exit status: 1 if any finding is an error (with `--strict`,
a warning) or the input is unusable, 2 for a usage error. `lint --source NAME FILE` first runs a
raw webhook body through that source's mapping and the shared normalizer, so it checks exactly
what the bridge would send. `catalog` prints the Spec events the checks know, with their
properties.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
from pydantic import ValidationError

from segment_bridge.conformance.checks import Finding
from segment_bridge.conformance.lint import lint_message
from segment_bridge.ingest.sources import SOURCES
from segment_bridge.spec.catalog import CATALOG, Category, FieldType, Shape
from segment_bridge.spec.naming import comparison_key
from segment_bridge.tenants import ConformanceAllowlist

from .dry_run import dry_run


@dataclass(frozen=True)
class Located:
    """A message, or a reason there is none, and where it came from ("events.jsonl:3", "body#0")."""

    where: str
    message: Any = None
    problem: Finding | None = None


# -- reading messages -------------------------------------------------------------------------


def read_messages(name: str, text: str) -> Iterator[Located]:
    """One JSON document (object, array, or {"batch": [...]}) or JSON lines."""
    try:
        document = json.loads(text)
    except ValueError:
        yield from _json_lines(name, text)
        return
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        document = document["batch"]
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items):
        yield Located(f"{name}#{index}", item)


def _json_lines(name: str, text: str) -> Iterator[Located]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Located(f"{name}:{number}", json.loads(line))
        except ValueError as exc:
            yield Located(
                f"{name}:{number}",
                problem=Finding(
                    "spec.invalid",
                    "error",
                    "",
                    f"not JSON: {exc}",
                    "write one JSON object per line, or one JSON document",
                ),
            )


def source_messages(
    source: str, name: str, body: bytes, content_type: str | None, allow_anonymous: bool
) -> tuple[list[Located], list[str]]:
    """What the bridge would send for a raw webhook body (the source's mapping plus `normalize`),
    and a line per event the source skips. For settings and query options, pipe
    `segment-bridge normalize` into `segment-bridge lint -` instead."""
    try:
        result, messages = dry_run(
            source,
            body,
            content_type=content_type,
            tenant="lint",
            user_id_policy="anonymous" if allow_anonymous else "reject",
        )
    except click.ClickException as exc:
        raise click.ClickException(f"{name}: {exc.message}") from None
    # Events keep their order: the accepted ones are the indexes neither skipped nor rejected.
    dropped = {entry["index"] for entry in result.skipped + result.rejected}
    accepted = [i for i in range(len(messages) + len(dropped)) if i not in dropped]
    by_index = {i: Located(f"{name}#{i}", m.message) for i, m in zip(accepted, messages, strict=False)}
    for entry in result.rejected:
        by_index[entry["index"]] = Located(
            f"{name}#{entry['index']}",
            problem=Finding(
                "source.rejected", "error", "", entry["message"], "see the reason; the bridge would reject this event"
            ),
        )
    skipped = [f"{name}#{entry['index']}: skipped: {entry['reason']}" for entry in result.skipped]
    return [by_index[i] for i in sorted(by_index)], skipped


# -- lint -------------------------------------------------------------------------------------


@click.command("lint")
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--source",
    type=click.Choice(sorted(SOURCES)),
    help="FILE is a raw webhook body for this source: lint what the bridge would send for it.",
)
@click.option("--content-type", help="With --source: the body's Content-Type (default: the source's own).")
@click.option(
    "--allow-anonymous",
    is_flag=True,
    help="Messages with only an anonymousId are a warning, not an error (identity policy 'anonymous').",
)
@click.option(
    "--allow",
    "allow_events",
    multiple=True,
    metavar="NAME",
    help="An event name that is custom on purpose, never read as a Spec near-miss (repeatable; exactly as sent). "
    "The tenant's conformance.allow.events does the same on ingest.",
)
@click.option(
    "--allow-property",
    "allow_properties",
    multiple=True,
    metavar="KEY",
    help="A property key that is not the documented field it looks like (repeatable; conformance.allow.properties).",
)
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per finding instead of text.")
def lint_command(
    file: Any,
    source: str | None,
    content_type: str | None,
    allow_anonymous: bool,
    allow_events: tuple[str, ...],
    allow_properties: tuple[str, ...],
    strict: bool,
    as_json: bool,
) -> None:
    """Check Spec messages in FILE (or stdin) and print each finding with its fix."""
    try:
        allow = ConformanceAllowlist(events=allow_events, properties=allow_properties)
    except ValidationError:
        raise click.BadParameter("names must be 1-200 characters", param_hint="--allow / --allow-property") from None
    name = getattr(file, "name", "-")
    name = "<stdin>" if name == "-" else name
    body = file.read()
    skipped: list[str] = []
    if source is not None:
        located, skipped = source_messages(source, name, body, content_type, allow_anonymous)
    else:
        try:
            located = list(read_messages(name, body.decode("utf-8")))
        except UnicodeDecodeError:
            raise click.ClickException(f"{name}: not UTF-8 text") from None
    for line in skipped:
        click.echo(line, err=True)
    if not located and not skipped:
        raise click.ClickException(f"{name}: no messages")

    counts = {"error": 0, "warning": 0}
    for item in located:
        findings = (
            [item.problem] if item.problem else lint_message(item.message, allow_anonymous=allow_anonymous, allow=allow)
        )
        for finding in findings:
            counts[finding.severity] += 1
            click.echo(_format(item.where, finding, as_json))
    if not as_json:
        click.echo(f"{len(located)} message(s): {counts['error']} error(s), {counts['warning']} warning(s)", err=True)
    sys.exit(1 if counts["error"] or (strict and counts["warning"]) else 0)


def _format(where: str, finding: Finding, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "location": where,
                "code": finding.code,
                "severity": finding.severity,
                "path": finding.path,
                "message": finding.message,
                "fix": finding.fix,
            },
            ensure_ascii=False,
        )
    path = f" {finding.path}" if finding.path else ""
    return f"{where}: {finding.severity} {finding.code}{path}: {finding.message}\n    fix: {finding.fix}"


# -- catalog ----------------------------------------------------------------------------------


@click.command("catalog")
@click.option(
    "--category", "wanted", help='Only categories whose name starts with this ("ecommerce", "mobile", "b2b").'
)
@click.option("--reserved", is_flag=True, help="Also list reserved traits, context fields and page/screen properties.")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def catalog_command(wanted: str | None, reserved: bool, as_json: bool) -> None:
    """List the Spec events the bridge checks, with their properties and types."""
    categories = [
        c for c in CATALOG.categories if not wanted or comparison_key(c.name).startswith(comparison_key(wanted))
    ]
    if not categories:
        names = ", ".join(c.name for c in CATALOG.categories)
        raise click.BadParameter(f"no category starts with {wanted!r}; categories: {names}", param_hint="--category")
    reserved_shapes = _reserved_shapes() if reserved else {}
    if as_json:
        document: dict[str, Any] = {"categories": [_category_json(c) for c in categories]}
        if reserved:
            document["reserved"] = {name: _fields_json(shape) for name, shape in reserved_shapes.items()}
        vocabulary = CATALOG.vocabulary
        document["vocabulary"] = {"words": dict(vocabulary.words), "irregular": dict(vocabulary.irregular)}
        document["property_synonyms"] = [
            {"field": s.field, "names": list(s.names), "in": sorted(s.scope), "why": s.why}
            for s in CATALOG.property_synonyms
        ]
        click.echo(json.dumps(document, indent=2))
        return
    objects: dict[str, Shape] = {}
    for category in categories:
        click.echo(f"{category.name}  ({category.doc})")
        if category.words:
            click.echo(_wrap("words: " + ", ".join(f"{k} = {v}" for k, v in category.words.items()), indent=2))
        for event in category.events:
            click.echo(f"  {event.name}")
            if event.properties.fields:
                click.echo(_wrap(_fields_text(event.properties, objects), indent=6))
            if event.synonyms:
                click.echo(_wrap("near-misses: " + ", ".join(event.synonyms), indent=6))
        click.echo()
    for name, shape in reserved_shapes.items():
        click.echo(name.replace("_", " ").capitalize())
        click.echo(_wrap(_fields_text(shape, objects), indent=2))
        click.echo()
    if objects:
        click.echo("Objects")
        for name, shape in sorted(objects.items()):
            click.echo(_wrap(f"{name}: {{{_fields_text(shape, objects)}}}", indent=2))


def _reserved_shapes() -> dict[str, Shape]:
    return {
        "identify_traits": CATALOG.identify_traits,
        "group_traits": CATALOG.group_traits,
        "context": CATALOG.context,
        "track_properties": CATALOG.track_properties,
        "page_properties": CATALOG.page_properties,
        "screen_properties": CATALOG.screen_properties,
    }


def _category_json(category: Category) -> dict[str, Any]:
    return {
        "name": category.name,
        "doc": category.doc,
        "words": dict(category.words),
        "events": [
            {"name": e.name, "properties": _fields_json(e.properties), "synonyms": list(e.synonyms)}
            for e in category.events
        ],
    }


def _fields_json(shape: Shape) -> dict[str, Any]:
    return {key: _type_json(field) for key, field in shape.fields.items()}


def _type_json(field: FieldType) -> Any:
    """A type string, or for a shape the object's own fields, so the JSON stands alone."""
    option = field.options[0]
    if len(field.options) == 1 and option.shape is not None:
        fields = _fields_json(option.shape)
        return [fields] if option.array else fields
    return field.spec


def _fields_text(shape: Shape, objects: dict[str, Shape]) -> str:
    """ "key: type" items; object types are named here and collected to be listed once, below."""
    for field in shape.fields.values():
        for option in field.options:
            if option.shape is not None and option.shape.name not in objects:
                objects[option.shape.name] = option.shape
                _fields_text(option.shape, objects)
    return ", ".join(f"{key}: {field.spec}" for key, field in shape.fields.items())


def _wrap(text: str, indent: int, width: int = 100) -> str:
    """Wrap between items ("key: type"), never inside one."""
    lines, line = [], " " * indent
    for item in text.split(", "):
        piece = item if line.strip() == "" else f", {item}"
        if len(line) + len(piece) > width and line.strip():
            lines.append(line + ",")
            line, piece = " " * (indent + 2), item
        line += piece
    return "\n".join(lines + [line])
