"""The queue format: version 2 gives the forwarder each message's exact text; version 1 is still read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.queue_format import (
    FORMAT_VERSION,
    UnreadableBody,
    pack_queue_bodies,
    queue_body,
    read_body,
    split_body,
)


def compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=("Cs",))),  # strings with newlines, quotes, NULs...
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
messages = st.dictionaries(st.text(max_size=12), json_values, max_size=6).map(lambda m: {"type": "track", **m})


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=30))
def test_every_message_comes_back_as_its_exact_text(batch: list[dict[str, object]]) -> None:
    encoded = [compact(m) for m in batch]
    sized = [(e, len(e.encode("utf-8"))) for e in encoded]
    bodies = pack_queue_bodies("acme", "spec", sized, max_bytes=2048 + max(s for _, s in sized))
    split = [split_body(b) for b in bodies]
    assert [line for raw in split for line in raw.messages] == encoded  # byte for byte, in order
    assert {(raw.tenant, raw.source) for raw in split} == {("acme", "spec")}
    assert [m for b in bodies for m in read_body(b).messages] == batch


def test_bodies_are_json_lines_with_a_counting_header() -> None:
    body = queue_body("acme", "sendgrid", [compact({"type": "track", "n": 1}), compact({"type": "identify"})])
    header, *lines = body.split("\n")
    assert json.loads(header) == {"v": FORMAT_VERSION, "tenant": "acme", "source": "sendgrid", "count": 2}
    assert [json.loads(line)["type"] for line in lines] == ["track", "identify"]


def test_version_1_bodies_from_an_earlier_deployment_are_still_read() -> None:
    message = {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1", "properties": {"a": "é"}}
    for body in (
        json.dumps({"v": 1, "tenant": "acme", "source": "spec", "messages": [message]}),
        json.dumps({"v": 1, "tenant": "acme", "source": "spec", "messages": [message]}, indent=2),
    ):
        raw = split_body(body)
        assert (raw.tenant, raw.source, raw.messages) == ("acme", "spec", [compact(message)])
        assert read_body(body).messages == [message]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        '{"v":2,"tenant":"acme","source":"spec","count":2}\n{"type":"track"}',  # a line missing
        '{"v":2,"tenant":"acme","source":"spec","count":1}\n{"type":"track"}\n{"type":"track"}',  # a line too many
        '{"v":2,"tenant":"acme","source":"spec","count":1}\n',  # an empty line for a message
        '{"v":2,"tenant":"acme","source":"spec","count":1}\n["not", "an object"]',
        '{"v":2,"tenant":"","source":"spec","count":1}\n{"type":"track"}',  # header fails validation
        '{"v":2,"tenant":"acme","source":"spec","count":0}',
        '{"v":2,"tenant":"acme"\n{"type":"track"}',  # header is not JSON
        '{"v":3,"tenant":"acme","source":"spec","messages":[{"type":"track"}]}',  # a version we do not know
        '{"v":1,"tenant":"acme","source":"spec","messages":[]}',
    ],
)
def test_unreadable_bodies_are_refused_with_a_reason(body: str) -> None:
    with pytest.raises(UnreadableBody, match="unreadable queue message"):
        split_body(body)


def test_read_body_refuses_a_line_that_is_not_json() -> None:
    with pytest.raises(UnreadableBody):
        read_body('{"v":2,"tenant":"acme","source":"spec","count":1}\n{not json}')
