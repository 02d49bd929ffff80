"""JSON from untrusted senders: parsing, reading a text field, and a canonical digest.

Parsing: parse errors and hostile nesting become a 400, never a crash.

Python's `json` parser and encoders recurse once per nesting level, so `[[[[...` a few thousand
levels deep raises `RecursionError` (a 500 if nothing catches it), and a structure just under the
parser's limit can still blow up later, when pydantic or `json.dumps` walk it from a deeper stack.
`nesting_exceeds` measures the depth before parsing, with a few passes of C-level byte operations
(no Python loop per byte), so the cap costs little even on a body of several MiB.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from itertools import accumulate
from typing import Any

from .errors import MalformedRequest
from .limits import MAX_JSON_DEPTH

#: A JSON string literal (escapes included); removed first so brackets inside strings do not count.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Keep only brackets, and count `{}` like `[]`: depth is the same whatever the container.
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
#: Keep only brackets and quotes (for `_brackets_outside_strings`' fast path).
_NOT_MARKS = bytes(range(256)).translate(None, b'[]{}"')
_SQUARE = bytes.maketrans(b"{}", b"[]")
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")
#: Level-removing passes before switching to the running sum (each pass is one scan of the rest).
_PASSES = 8


def nesting_exceeds(data: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text nests arrays/objects deeper than `max_depth` levels.

    A few passes delete the innermost (empty) pairs, exactly one level everywhere per pass, which
    shrinks real payloads to nothing at C speed. What is left (deep, or not JSON at all) has its
    remaining depth measured as the running sum of +1/-1 per bracket (a C-level `accumulate`).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    brackets = _brackets_outside_strings(raw)
    for removed in range(1, _PASSES + 1):
        if removed > max_depth:  # a pair still standing after max_depth passes is nested deeper
            return b"[]" in brackets
        shorter = brackets.replace(b"[]", b"")
        if not shorter or len(shorter) == len(brackets):  # all gone; or unbalanced: the parser will say so
            return False
        brackets = shorter
    # Signed bytes: "[" is +1, "]" is -1; the highest running sum is the depth still left.
    steps = memoryview(brackets.translate(_STEPS)).cast("b")
    return max(accumulate(steps)) > max_depth - _PASSES


def _brackets_outside_strings(raw: bytes) -> bytes:
    """The brackets of `raw` that `_STRING` does not remove, as `[` and `]`.

    The regex costs one match per string (most of this check's time on a webhook of short
    fields), so when the text has no backslash it is skipped: each `"` then closes the string the
    one before it opened, exactly as the regex pairs them, and if cancelling adjacent quotes (in the
    text reduced to quotes and brackets) leaves no quote, no bracket sits inside a string and the
    brackets are all of them. Anything else (escapes, a bracket in a string, a lone quote) takes the
    regex. tests/hardening/test_limits.py compares both on generated text.
    """
    if b"\\" not in raw:
        marks = raw.translate(_SQUARE, _NOT_MARKS).replace(b'""', b"")
        if b'"' not in marks:
            return marks
    return _STRING.sub(b"", raw).translate(_SQUARE, _BRACKETS)


def loads(data: bytes | str, what: str = "body", max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` for request bodies: raises `MalformedRequest` (400) for anything it cannot take."""
    if nesting_exceeds(data, max_depth):
        raise MalformedRequest(f"{what} nests arrays or objects deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # belt and braces: the depth check above should make this unreachable
        raise MalformedRequest(f"{what} nests arrays or objects too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRequest(f"{what} is not valid JSON: {exc}") from None
    except ValueError as exc:
        # The other ValueError `json.loads` raises: an integer literal longer than Python's int/str
        # conversion limit (CVE-2020-10735), whose own text tells the caller to call
        # sys.set_int_max_str_digits(); say what is wrong with their input instead.
        if "digits" not in str(exc):
            raise MalformedRequest(f"{what} is not valid JSON") from None
        raise MalformedRequest(
            f"{what} holds an integer of more than {sys.get_int_max_str_digits()} digits; "
            "send numbers that long as strings"
        ) from None


def has_lone_surrogate(value: str) -> bool:
    """True if `value` holds a lone surrogate (a `\\ud800`-style escape JSON allows but Unicode
    does not): such text has no UTF-8 form, so no store, queue or HTTP body can carry it."""
    if value.isascii():  # the common case, O(1)
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def text(value: Any) -> str | None:
    """A field read as text: a non-empty string, or a number as a string (ids often arrive as
    numbers); None for anything else, blank strings included. Every reader of untrusted JSON
    (the tools' fields, Segment's calls) uses this one rule."""
    if isinstance(value, str):
        # Blank is what `strip()` would empty (the same Unicode whitespace), without building a copy.
        return value if value and not value.isspace() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def content_digest(value: Any) -> str:
    """`sha256:<hex>` of `value` as canonical JSON (sorted keys, compact, UTF-8): the same content
    gives the same digest in any key order. It stands in for an id the sender did not give (the
    derived messageId of an event without one), so its form must never change."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
