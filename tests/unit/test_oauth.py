"""OAuth 2.0, pure parts: the client assertion, the token server's answers, the per-tenant token cache,
the Bearer request with the writeKey in an exactly sized body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import cache
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_bridge.admin import generate_key_pair
from segment_bridge.forward import (
    OAuthCredentials,
    SegmentClient,
    Target,
    TokenAnswer,
    TokenCache,
    make_assertion,
    pack_batches,
)
from segment_bridge.forward.oauth import STALE_TOKEN_MARGIN_SECONDS, read_token_response
from segment_bridge.limits import MAX_BATCH_REQUEST_BYTES
from segment_bridge.tenants import TenantConfig

SERVER = "https://oauth2.segment.io"


@cache
def keys() -> tuple[str, str]:
    pair = generate_key_pair()
    return pair.private_pem, pair.public_pem


def credentials(tenant: str = "acme", client_id: str = "app-1", key_id: str = "key-1") -> OAuthCredentials:
    return OAuthCredentials(tenant, client_id, key_id, keys()[0])


# -- the assertion -------------------------------------------------------------------------------
def test_the_assertion_has_segments_header_and_claims() -> None:
    now = 1_800_000_000.7
    token = make_assertion(credentials(), SERVER, now, "jti-1")
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
    claims = jwt.decode(
        token, keys()[1], algorithms=["RS256"], audience=SERVER, options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {
        "iss": "app-1",
        "sub": "app-1",
        "aud": SERVER,
        "iat": 1_799_999_996,
        "exp": 1_800_000_055,
        "jti": "jti-1",
    }
    # Segment: exp under a minute away, whether read from now or from iat.
    assert claims["exp"] - now < 60 and claims["exp"] - claims["iat"] < 60 and claims["iat"] < now


def test_the_assertion_is_signed_with_the_tenants_key_only() -> None:
    token = make_assertion(credentials(), SERVER, 1_800_000_000, "j")
    other_public = generate_key_pair().public_pem
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token,
            other_public,
            algorithms=["RS256"],
            audience=SERVER,
            options={"verify_exp": False, "verify_iat": False},
        )


def test_the_assertion_expires_under_a_minute() -> None:
    import time

    token = make_assertion(credentials(), SERVER, time.time() - 61, "j")
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, keys()[1], algorithms=["RS256"], audience=SERVER)
    fresh = make_assertion(credentials(), SERVER, time.time(), "j")
    assert jwt.decode(fresh, keys()[1], algorithms=["RS256"], audience=SERVER)["jti"] == "j"


def test_credentials_and_tokens_print_nothing_secret() -> None:
    assert "PRIVATE" not in repr(credentials()) and "PRIVATE" not in repr(Target("us", "WK", credentials()))
    from segment_bridge.forward import TokenResult

    assert "tok-secret" not in repr(TokenResult("tok-secret")) + repr(TokenAnswer(200, access_token="tok-secret"))


# -- the token server's answers -----------------------------------------------------------------
def test_a_good_answer_gives_the_token_and_its_lifetime() -> None:
    answer = read_token_response(
        200,
        {"Date": formatdate(1_800_000_000, usegmt=True)},
        json.dumps({"access_token": "tok", "token_type": "Bearer", "expires_in": 86400}),
    )
    assert (answer.status, answer.access_token, answer.expires_in, answer.server_time) == (
        200,
        "tok",
        86400,
        1_800_000_000,
    )


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        json.dumps({"access_token": "", "expires_in": 60}),
        json.dumps({"access_token": "a\r\nX-Injected: 1", "expires_in": 60}),  # would split the header
        json.dumps({"access_token": "x" * 9000, "expires_in": 60}),
        json.dumps({"access_token": "tok", "expires_in": "soon"}),
        json.dumps({"access_token": "tok", "expires_in": True}),
        json.dumps({"access_token": "tok", "expires_in": 0}),
        json.dumps({"access_token": "tok"}),
    ],
)
def test_an_unusable_200_is_a_transient_failure(body: str) -> None:
    answer = read_token_response(200, {}, body)
    assert answer.status == 502 and answer.access_token is None and answer.error


def test_rate_limit_waits_are_read_and_capped() -> None:
    assert read_token_response(429, {"X-RateLimit-Reset": "7"}, "").retry_after == 7
    assert read_token_response(429, {"Retry-After": "9"}, "").retry_after == 9
    assert read_token_response(429, {"X-RateLimit-Reset": "1800000030"}, "", now=1_800_000_000).retry_after == 30
    assert read_token_response(429, {"Retry-After": "99999"}, "").retry_after == 300
    assert read_token_response(429, {}, "").retry_after == 5


def test_error_texts_never_carry_an_assertion() -> None:
    assertion = make_assertion(credentials(), SERVER, 1_800_000_000, "j")
    answer = read_token_response(
        400, {}, json.dumps({"error": "invalid_client", "error_description": f"bad {assertion}"})
    )
    assert assertion not in (answer.error or "") and "invalid_client" in (answer.error or "")


# -- the cache ----------------------------------------------------------------------------------
@dataclass
class FakeServer:
    """Scripted token server answers; records the assertions it was sent."""

    answers: list[TokenAnswer] = field(default_factory=list)
    forms: list[Mapping[str, str]] = field(default_factory=list)
    issued: int = 0

    def request(self, server: str, form: Mapping[str, str], timeout: float) -> TokenAnswer:
        self.forms.append(form)
        if self.answers:
            return self.answers.pop(0)
        self.issued += 1
        return TokenAnswer(200, access_token=f"token-{self.issued}", expires_in=100)

    def claims(self, index: int = -1) -> dict[str, Any]:
        return jwt.decode(self.forms[index]["client_assertion"], options={"verify_signature": False})


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def cache_with(server: FakeServer, clock: Clock) -> TokenCache:
    return TokenCache(client=server, clock=clock, monotonic=clock)  # type: ignore[arg-type]


def test_the_form_is_segments_client_credentials_grant() -> None:
    server, clock = FakeServer(), Clock()
    assert cache_with(server, clock).token(credentials(), "eu", 5).token == "token-1"
    form = server.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["scope"] == "tracking_api:write"
    assert server.claims()["aud"] == "https://oauth2.eu1.segmentapis.com"


def test_a_token_is_reused_until_half_its_lifetime_then_renewed() -> None:
    server, clock = FakeServer(), Clock()
    tokens = cache_with(server, clock)
    assert tokens.token(credentials(), "us", 5).token == "token-1"
    clock.now += 49
    assert tokens.token(credentials(), "us", 5).token == "token-1"
    clock.now += 2  # past 50 of 100 s
    assert tokens.token(credentials(), "us", 5).token == "token-2"
    assert server.issued == 2 and tokens.take_stats().requests == 2


def test_each_assertion_has_a_new_jti() -> None:
    server, clock = FakeServer(), Clock()
    tokens = cache_with(server, clock)
    for _ in range(3):
        tokens.token(credentials(), "us", 5)
        clock.now += 60
    assert len({server.claims(i)["jti"] for i in range(3)}) == 3


def test_tokens_are_per_tenant_region_and_credentials() -> None:
    server, clock = FakeServer(), Clock()
    tokens = cache_with(server, clock)
    seen = {
        tokens.token(credentials("acme"), "us", 5).token,
        tokens.token(credentials("other"), "us", 5).token,  # same app: still not acme's token
        tokens.token(credentials("acme"), "eu", 5).token,
        tokens.token(credentials("acme", key_id="key-2"), "us", 5).token,  # a rotated key
    }
    assert len(seen) == 4


def test_invalidate_drops_only_the_refused_token() -> None:
    server, clock = FakeServer(), Clock()
    tokens = cache_with(server, clock)
    first = tokens.token(credentials(), "us", 5).token
    tokens.invalidate(credentials(), "us", "some-older-token")  # a concurrent refresh already replaced it
    assert tokens.token(credentials(), "us", 5).token == first
    tokens.invalidate(credentials(), "us", str(first))
    assert tokens.token(credentials(), "us", 5).token == "token-2"


def test_clock_skew_from_date_is_corrected_and_retried_at_once() -> None:
    clock = Clock()
    ahead = clock.now + 600  # the token server's clock is 10 minutes ahead
    server = FakeServer(answers=[TokenAnswer(400, error="invalid_request Token is expired", server_time=ahead)])
    tokens = cache_with(server, clock)
    result = tokens.token(credentials(), "us", 5)
    assert result.token == "token-1"
    first, second = server.claims(0), server.claims(1)
    assert first["exp"] < ahead <= second["iat"] + 10 and second["exp"] - ahead < 60


def test_a_429_is_honoured_before_asking_again() -> None:
    server, clock = FakeServer(answers=[TokenAnswer(429, error="slow down", retry_after=30)]), Clock()
    tokens = cache_with(server, clock)
    result = tokens.token(credentials(), "us", 5)
    assert (result.token, result.status, result.retry_after) == (None, 429, 30)
    clock.now += 10
    again = tokens.token(credentials(), "us", 5)
    assert again.status == 429 and again.retry_after == pytest.approx(20) and len(server.forms) == 1
    clock.now += 21
    assert tokens.token(credentials(), "us", 5).token == "token-1"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (TokenAnswer(None, error="timeout"), None),
        (TokenAnswer(503, error="down"), 503),
        (TokenAnswer(502, error="garbled 200"), 502),
        (TokenAnswer(400, error="invalid_client unknown app"), 401),  # never a 400: that would bisect the batch
        (TokenAnswer(401, error="invalid_client"), 401),
        (TokenAnswer(403), 401),
    ],
)
def test_failures_map_to_statuses_delivery_classifies(answer: TokenAnswer, status: int | None) -> None:
    tokens = cache_with(FakeServer(answers=[answer]), Clock())
    result = tokens.token(credentials(), "us", 5)
    assert result.token is None and result.status == status and result.error
    assert keys()[0] not in result.error


def test_a_renewal_failure_keeps_the_current_token_while_it_lasts() -> None:
    server, clock = FakeServer(), Clock()
    tokens = cache_with(server, clock)
    tokens.token(credentials(), "us", 5)
    server.answers = [TokenAnswer(503)]
    clock.now += 60  # renewal due with 40 s of life left: too little to lean on
    assert STALE_TOKEN_MARGIN_SECONDS > 40
    assert tokens.token(credentials(), "us", 5).status == 503
    long_lived = FakeServer(answers=[TokenAnswer(200, access_token="long", expires_in=1000)])
    tokens = cache_with(long_lived, clock)
    tokens.token(credentials(), "us", 5)
    long_lived.answers = [TokenAnswer(None, error="timeout")]
    clock.now += 600  # renewal due, 400 s left
    assert tokens.token(credentials(), "us", 5).token == "long"


def test_an_unreadable_private_key_is_refused_for_the_tenant_without_quoting_it() -> None:
    bad = OAuthCredentials("acme", "app", "key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    result = cache_with(FakeServer(), Clock()).token(bad, "us", 5)
    assert result.status == 401 and "AAAA" not in (result.error or "")


# -- the request: Bearer, writeKey in the body, size exact --------------------------------------
def oauth_tenant(write_key: str, client_id: str | None = "app-1") -> TenantConfig:
    return TenantConfig.model_validate(
        {"write_key": write_key, "oauth": {"client_id": client_id, "key_id": "key-1", "private_key": keys()[0]}}
    )


def test_a_pending_oauth_block_keeps_basic_auth() -> None:
    assert Target.for_tenant("acme", oauth_tenant("WK", client_id=None)).oauth is None
    assert Target.for_tenant("acme", oauth_tenant("WK")).oauth is not None


@settings(max_examples=60, deadline=None)
@given(
    write_key=st.text(min_size=1, max_size=80),
    pads=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=40),
)
def test_the_oauth_body_carries_the_write_key_and_is_exactly_the_packed_size(write_key: str, pads: list[int]) -> None:
    target = Target.for_tenant("acme", oauth_tenant(write_key))
    items = []
    for i, pad in enumerate(pads):
        encoded = json.dumps({"type": "track", "messageId": f"m{i}", "p": "é" * pad}, ensure_ascii=False)
        items.append((i, encoded, len(encoded.encode())))
    batches = pack_batches(items, max_bytes=8000, envelope_extra=len(target.body_members))
    client = SegmentClient(compress=False)
    for batch in batches:
        request = client.prepare(target, batch, "2026-11-23T00:00:00.000Z")
        assert len(request.body) == batch.size and (batch.size <= 8000 or len(batch) == 1)
        payload = json.loads(request.body)
        assert payload["writeKey"] == write_key and payload["sentAt"] == "2026-11-23T00:00:00.000Z"
        assert "Authorization" not in request.headers  # the Bearer token is added when sending
        for half in batch.split() if len(batch) > 1 else ():
            assert len(client.prepare(target, half, "2026-11-23T00:00:00.000Z").body) == half.size
    assert MAX_BATCH_REQUEST_BYTES > 8000


def test_a_batch_packed_for_another_envelope_is_refused() -> None:
    oauth = Target.for_tenant("acme", oauth_tenant("WK" * 16))
    [batch] = pack_batches([(0, '{"type":"track"}', 16)])  # packed without the writeKey member
    with pytest.raises(ValueError, match="envelope"):
        SegmentClient().prepare(oauth, batch, "2026-11-23T00:00:00.000Z")
