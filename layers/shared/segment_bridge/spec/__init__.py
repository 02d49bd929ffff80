"""Segment's Spec: the message models, the semantic-event catalog, event-name matching and naming rules.

Pure, no I/O. `conformance` checks messages against it; ingest validates with its models.
"""

from .catalog import CATALOG, Catalog, FieldType, Shape, SpecEvent, TypeOption
from .event_names import NameMatch, match_event_name
from .models import (
    CALL_TYPES,
    MessageFields,
    describe_validation_error,
    format_timestamp,
    message_adapter,
    message_fields,
    utc_text,
)
from .naming import comparison_key, is_proper_case, is_snake_case, split_words, to_proper_case, to_snake_case

__all__ = [
    "CALL_TYPES",
    "CATALOG",
    "Catalog",
    "FieldType",
    "MessageFields",
    "NameMatch",
    "Shape",
    "SpecEvent",
    "TypeOption",
    "comparison_key",
    "describe_validation_error",
    "format_timestamp",
    "is_proper_case",
    "is_snake_case",
    "match_event_name",
    "message_adapter",
    "message_fields",
    "split_words",
    "to_proper_case",
    "to_snake_case",
    "utc_text",
]
