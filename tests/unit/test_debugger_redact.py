"""The debugger's masking: by name, by the request's own signature values, by known tenant secrets."""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge_tools.debugger.redact import (
    MASK,
    MAX_SHOWN_BODY_BYTES,
    KnownSecrets,
    Redactor,
    last_four,
    secrets_in_document,
)

WRITE_KEY = "wk_live_PLANTED_0123456789abcdefWXYZ"
SIGNING = "signing-PLANTED-secret-000"
TENANT_DOC = {
    "write_key": WRITE_KEY,
    "region": "us",
    "destination": {"api_key": "dest-PLANTED-key-0123456789"},
    "sources": {
        "spec": {"signing_secret": SIGNING},
        "mandrill": {"webhook_key": "mandrill-PLANTED-key", "url": "https://example.com/v1/webhooks/mandrill/acme"},
        "postmark": {"username": "postmark", "password": "postmark-PLANTED-pw"},
    },
}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))


def redactor(*documents: Any) -> Redactor:
    return Redactor(KnownSecrets(lambda: list(documents) or [TENANT_DOC]))


def forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw + b":").decode(),
        quote(secret, safe=""),
    ]


def test_secret_values_are_found_by_their_key_names_at_any_depth() -> None:
    found = dict(secrets_in_document(TENANT_DOC))
    assert set(found) == {"write_key", "api_key", "signing_secret", "webhook_key", "password"}
    assert found["webhook_key"] == "mandrill-PLANTED-key"
    assert "url" not in found and "username" not in found and "region" not in found


def test_a_write_key_keeps_its_last_four_characters_and_nothing_of_its_length() -> None:
    assert last_four(WRITE_KEY) == MASK + "WXYZ"
    assert last_four("short") == MASK  # too short to show any of it
    text = redactor().scrub_text(f"key={WRITE_KEY} basic={base64.b64encode(f'{WRITE_KEY}:'.encode()).decode()}")
    assert WRITE_KEY[:-4] not in text and text.count("WXYZ") == 2


def test_headers_named_like_secrets_are_masked_and_their_values_cut_from_the_body() -> None:
    signature = "t=1700000000,v1=" + "ab" * 32
    headers, taken = redactor().headers(
        {
            "Content-Type": "application/json",
            "X-Signature": signature,
            "Authorization": "Basic " + base64.b64encode(b"postmark:postmark-PLANTED-pw").decode(),
            "Cookie": "session=abc123456",
        }
    )
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Signature"] == MASK and headers["Cookie"] == MASK
    assert headers["Authorization"] == f"Basic {MASK}"  # the scheme tells which auth was used
    body = redactor().body(json.dumps({"echo": signature}).encode(), "application/json", taken)
    assert body["content"] == {"echo": MASK}


def test_json_bodies_mask_secret_named_fields_whole() -> None:
    mailgun = {
        "signature": {"timestamp": "1", "token": "t" * 50, "signature": "f" * 64},
        "event-data": {"event": "opened"},
    }
    shown = redactor().body(json.dumps(mailgun).encode(), "application/json")
    assert shown["kind"] == "json"
    assert shown["content"] == {"signature": MASK, "event-data": {"event": "opened"}}


def test_form_bodies_are_shown_field_by_field_masked() -> None:
    raw = urlencode({"MessageSid": "SM1", "AuthToken": "x" * 20, "Body": f"my secret is {SIGNING}"}).encode()
    shown = redactor().body(raw, "application/x-www-form-urlencoded")
    assert shown["kind"] == "form"
    assert shown["content"] == [["MessageSid", "SM1"], ["AuthToken", MASK], ["Body", f"my secret is {MASK}"]]


def test_text_is_scrubbed_before_it_is_cut_so_no_half_secret_survives() -> None:
    raw = b"x" * (MAX_SHOWN_BODY_BYTES - 10) + SIGNING.encode() + b"tail"
    shown = redactor().body(raw, "text/plain")
    assert shown["truncated"] and len(shown["content"]) <= MAX_SHOWN_BODY_BYTES
    assert SIGNING[:10] not in shown["content"]


def test_known_only_keeps_every_key_of_a_message_as_segment_received_it() -> None:
    message = {"type": "track", "properties": {"token": "visible-because-sent", "note": f"leaked {SIGNING}"}}
    assert redactor().known_only(message) == {
        "type": "track",
        "properties": {"token": "visible-because-sent", "note": f"leaked {MASK}"},
    }


def test_secrets_shorter_than_the_minimum_are_not_cut_from_free_text() -> None:
    shown = redactor({"sources": {"x": {"secret": "abc"}}}).scrub_text("abcdef abc")
    assert shown == "abcdef abc"


def test_a_failing_provider_keeps_the_last_known_secrets() -> None:
    calls = {"n": 0}

    def provider() -> list[Any]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("moto is stopping")
        return [TENANT_DOC]

    now = [0.0]
    known = KnownSecrets(provider, max_age=1.0, clock=lambda: now[0])
    assert Redactor(known).scrub_text(SIGNING) == MASK
    now[0] = 5.0
    assert Redactor(known).scrub_text(SIGNING) == MASK and calls["n"] == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    value=json_values,
    secret=st.sampled_from([SIGNING, WRITE_KEY, "dest-PLANTED-key-0123456789", "mandrill-PLANTED-key"]),
    form=st.integers(min_value=0, max_value=3),
    key=st.text(max_size=10),
    prefix=st.text(max_size=5),
)
def test_no_form_of_a_known_secret_survives_anywhere_in_a_body(
    value: Any, secret: str, form: int, key: str, prefix: str
) -> None:
    planted = {"outer": value, key: [prefix + forms(secret)[form] + prefix]}
    for shown in (
        redactor().body(json.dumps(planted).encode(), "application/json"),
        redactor().body(json.dumps(planted).encode(), "text/plain"),
        redactor().known_only(planted),
    ):
        text = json.dumps(shown, ensure_ascii=False)
        for leaked in forms(secret):
            assert leaked not in text
        if secret == WRITE_KEY:
            assert WRITE_KEY[:-4] not in text
