"""The depth pre-check's fast path (text without escapes) against the regex it skips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge import safe_json
from segment_bridge.safe_json import _BRACKETS, _SQUARE, _STRING, _brackets_outside_strings, nesting_exceeds


def by_the_regex(raw: bytes) -> bytes:
    return _STRING.sub(b"", raw).translate(_SQUARE, _BRACKETS)


marks = st.text(st.sampled_from('[]{}"ab,: \n'), max_size=40)
plain_text = st.text(st.characters(blacklist_characters='"\\', blacklist_categories=("Cs",)), max_size=6)
#: Strings full of brackets, quotes and backslashes, as JSON writes them (escaped).
escaped = st.lists(st.text(st.sampled_from('[]{}"\\a'), max_size=5), max_size=4).map(json.dumps)
values = st.recursive(
    st.none() | st.integers() | plain_text | st.sampled_from(["[", "]]", "{x}", "a[b"]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(plain_text, c, max_size=3),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(marks | escaped | values.map(json.dumps) | st.binary(max_size=40))
def test_the_fast_path_finds_exactly_the_brackets_the_regex_leaves(text: str | bytes) -> None:
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    assert _brackets_outside_strings(raw) == by_the_regex(raw)


@settings(max_examples=300, deadline=None)
@given(values, st.integers(0, 8))
def test_the_verdict_is_the_same_with_and_without_the_fast_path(value: Any, limit: int) -> None:
    raw = json.dumps(value).encode()
    fast = nesting_exceeds(raw, limit)
    original = safe_json._brackets_outside_strings
    try:
        safe_json._brackets_outside_strings = by_the_regex
        assert nesting_exceeds(raw, limit) == fast
    finally:
        safe_json._brackets_outside_strings = original


def test_a_webhook_without_escapes_skips_the_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoRegex:
        def sub(self, *args: Any) -> bytes:
            raise AssertionError("the regex ran")

    body = json.dumps([{"event": "open", "category": ["a", "b"], "n": i} for i in range(100)]).encode()
    monkeypatch.setattr(safe_json, "_STRING", NoRegex())
    assert _brackets_outside_strings(body) == b"[" + b"[[]]" * 100 + b"]"
    assert not nesting_exceeds(body, 3) and nesting_exceeds(body, 2)
