"""Work done for an unsigned request, counted, per source (issue #13, defect 1).

For `twilio` and `mandrill` every form parameter was decoded, sorted and hashed before the signature
was compared, and `mailgun` parsed the whole JSON body first; and only for a real tenant with the
source configured. So one unsigned 2.7 MB body of 600,000 empty parameters cost a real tenant 6.7 s
and an unknown one 0.08 s: it burned CPU and told an outsider which tenants use which tool.

These tests count the work, not the time (time is noisy on a shared machine; counts are exact):
bytes and parameters hashed, bytes JSON-parsed, bytes and parameters form-decoded, credential
comparisons. For each source's worst unsigned request within its limits, sent to a real tenant
(bad signature), an unknown tenant and a tenant without that source, they assert that

- the three answers are the same status and body, and the work counted is the same (the unknown
  tenant is verified against decoy secrets), and
- the work is within the source's bound, derived from its `RequestLimits`.

The figures are printed at the end of the session (`WORK`), for docs/security.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from segment_bridge.ingest.sources import SOURCES
from segment_bridge.ingest.sources.mailgun import MAX_SIGNATURE_CANDIDATES, MAX_SIGNATURE_OBJECT_BYTES
from segment_bridge.tenants import RefusalFloor
from segment_bridge_tools.lambda_events import api_gateway_event
from tests.conftest import put_tenant, reset_caches, tenant_secret

from .support import HOST, STAGE, WORK, Harness, assert_invariants, basic, destination_key, install_tenants, signed

MAX_BODY = 4 * 1024 * 1024  # the deployment default (the fuzz harness lowers it; these tests do not)
#: A real tenant with this source, one that does not exist, one that exists without any source.
TARGETS = ("acme", "none", "bare")  # one length: Mandrill and Twilio sign the URL, which names the tenant


@pytest.fixture
def ingest(aws: dict[str, str], identity_table: str) -> Iterator[Harness]:
    install_tenants()
    put_tenant("bare", tenant_secret(write_key="wk_bare_write_key_0123456789", sources={}))
    reset_caches()
    yield Harness(aws["queue_url"])
    reset_caches()


class Meter:
    """Counts what the signature primitives and parsers are handed (spies on the real functions)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from segment_bridge import safe_json
        from segment_bridge.identity import destination
        from segment_bridge.ingest import signatures
        from segment_bridge.ingest.sources import form

        for name in SOURCES:  # load every source module, so their names can be patched
            SOURCES[name]
        from segment_bridge.ingest.sources import sendgrid

        self.counts: Counter[str] = Counter()
        count = self.counts

        def spy(module: Any, name: str, measure: Any) -> None:
            original = getattr(module, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                result = None
                try:
                    result = original(*args, **kwargs)
                    return result
                finally:  # counted when it raises too (a refused signature still did the work)
                    for key, value in measure(args, result).items():
                        count[key] += value

            monkeypatch.setattr(module, name, wrapper)

        spy(signatures, "hmac_digest", lambda a, _: {"bytes hashed": len(a[1]), "HMACs": 1})
        spy(signatures, "url_params_payload", lambda a, _: {"params hashed": len(set(a[1]))})
        spy(sendgrid, "check_ecdsa_signature", lambda a, _: {"bytes hashed": len(a[1]), "ECDSA checks": 1})
        spy(safe_json, "loads", lambda a, _: {"bytes JSON-parsed": len(a[0])})
        spy(form, "parse_qsl", lambda a, r: {"bytes form-decoded": len(a[0]), "params decoded": len(r or ())})
        spy(signatures, "constant_time_equals", lambda a, _: {"comparisons": 1})
        spy(destination, "constant_time_equals", lambda a, _: {"comparisons": 1})

    def measure(self, send: Any) -> tuple[Any, dict[str, int]]:
        self.counts.clear()
        call = send()
        return call, dict(self.counts)


@dataclass(frozen=True)
class Probe:
    source: str
    what: str
    body: bytes
    headers: dict[str, str]


def garbage(source: str) -> dict[str, str]:
    """A signature header of the right shape, with the wrong value."""
    media = {"Content-Type": sorted(SOURCES[source].media_types)[0]}
    return (
        media
        | {
            "spec": {"X-Signature": "t=1800000000,v1=" + "0" * 64},
            "stripe": {"Stripe-Signature": "t=1800000000," + ",".join(["v1=" + "0" * 64] * 8)},
            "sendgrid": {
                "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQD" + "A" * 88 + "==",
                "X-Twilio-Email-Event-Webhook-Timestamp": "1800000000",
            },
            "postmark": {"Authorization": basic("postmark-acme", "wrong-password")},
            "mandrill": {"X-Mandrill-Signature": "A" * 27 + "="},
            "twilio": {"X-Twilio-Signature": "A" * 27 + "="},
            "mailgun": {},
        }[source]
    )


def probes() -> list[Probe]:
    """Each source's most expensive unsigned requests: the probe's, and the largest its limits allow."""
    twilio, mailgun = SOURCES["twilio"].limits, SOURCES["mailgun"].limits
    assert twilio.max_params and twilio.max_body_bytes and mailgun.max_body_bytes
    empty_params = b"a=&" * 600_000  # the probe's 600,000 empty parameters (1.8 MB)
    # As many parameters as Twilio's limits allow, as long as they allow.
    value = b"v" * (twilio.max_body_bytes // twilio.max_params - 8)
    widest = b"&".join(b"p%02d=" % i + value for i in range(twilio.max_params))
    events = json.dumps([{"event": "open", "msg": {"_id": "x" * 20, "subject": "s" * 200}, "ts": 1}] * 20_000)
    huge_field = (b"mandrill_events=" + events.encode().replace(b'"', b"%22"))[: MAX_BODY - 64]
    decoys = b",".join([b'"signature":{"timestamp":"1800000000","token":"t","signature":"' + b"0" * 64 + b'"}'] * 9_000)
    mailgun_decoys = b'{"event-data":{' + decoys[: mailgun.max_body_bytes - 40] + b"}}"
    mailgun_big = b'{"event-data":{"x":"' + b"y" * (mailgun.max_body_bytes - 40) + b'"}}'
    json_body = b'{"batch":[' + b",".join([b'{"type":"track","userId":"u","event":"E"}'] * 90_000) + b"]}"
    assert len(json_body) < MAX_BODY and len(widest) <= twilio.max_body_bytes and len(huge_field) <= MAX_BODY
    return [
        Probe("twilio", "600,000 empty parameters", empty_params, garbage("twilio")),
        Probe("twilio", f"{twilio.max_params} parameters, {len(widest)} bytes", widest, garbage("twilio")),
        Probe("mandrill", "600,000 empty parameters", empty_params, garbage("mandrill")),
        Probe("mandrill", f"mandrill_events of {len(huge_field)} bytes", huge_field, garbage("mandrill")),
        Probe("mailgun", "1 MiB of decoy signature objects", mailgun_decoys, garbage("mailgun")),
        Probe("mailgun", "1 MiB event-data, no signature", mailgun_big, garbage("mailgun")),
        Probe("spec", "4 MiB batch", json_body, garbage("spec")),
        Probe("stripe", "4 MiB body, 8 signatures", json_body, garbage("stripe")),
        Probe("sendgrid", "4 MiB body", json_body, garbage("sendgrid")),
        Probe("postmark", "4 MiB body, wrong password", json_body, garbage("postmark")),
    ]


def bound(probe: Probe) -> dict[str, int]:
    """The most an unsigned request may cost this source, from its limits (the URL is < 100 bytes)."""
    limits = SOURCES[probe.source].limits
    body = min(len(probe.body), limits.max_body_bytes or MAX_BODY)
    url = 100
    if probe.source in ("twilio", "mandrill"):
        urls = 2 if probe.source == "twilio" else 1  # Twilio signs the URL with or without its port
        params = limits.max_params or 0
        return {
            "params hashed": urls * params,
            "bytes hashed": urls * (url + body),
            "bytes form-decoded": body,
            "params decoded": params,
            "bytes JSON-parsed": 0,
        }
    if probe.source == "mailgun":
        parsed = MAX_SIGNATURE_CANDIDATES * (MAX_SIGNATURE_OBJECT_BYTES + 2)
        return {"bytes JSON-parsed": parsed, "bytes hashed": parsed, "params hashed": 0, "bytes form-decoded": 0}
    if probe.source == "postmark":
        return {"bytes hashed": 0, "bytes JSON-parsed": 0, "params hashed": 0, "bytes form-decoded": 0}
    return {"bytes hashed": body + 32, "bytes JSON-parsed": 0, "params hashed": 0, "bytes form-decoded": 0}


@pytest.mark.parametrize("probe", probes(), ids=lambda p: f"{p.source}: {p.what}")
def test_an_unsigned_request_costs_the_same_bounded_work_for_every_tenant(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch, probe: Probe
) -> None:
    meter = Meter(monkeypatch)
    answers, work = [], []
    for tenant in TARGETS:
        path = f"/v1/webhooks/{probe.source}/{tenant}"
        event = api_gateway_event("POST", path, probe.body, probe.headers, stage=STAGE, domain=HOST)
        call, counted = meter.measure(lambda event=event: ingest.invoke(event, kind="bounded-work"))
        assert_invariants(call, max_seconds=30)
        answers.append((call.status, call.body))
        work.append(counted)
    assert answers[0][0] in (401, 413), answers[0]
    assert answers[0] == answers[1] == answers[2], answers  # one status, one body
    assert work[0] == work[1] == work[2], dict(zip(TARGETS, work, strict=True))  # one cost
    limit = bound(probe)
    over = {key: (work[0].get(key, 0), most) for key, most in limit.items() if work[0].get(key, 0) > most}
    assert not over, over
    WORK[f"{probe.source}: {probe.what} -> {answers[0][0]}"] = work[0]


def test_the_probes_form_body_is_refused_before_any_parameter_is_decoded(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's request: 600,000 empty parameters, ~2.7 MB. A 413 that says which limit, from a
    count of `&` (no parameter decoded or hashed), the same for every tenant."""
    meter = Meter(monkeypatch)
    body = b"&".join(b"p=" for _ in range(600_000)) + b"x" * 900_000
    for source in ("twilio", "mandrill"):
        event = api_gateway_event(
            "POST", f"/v1/webhooks/{source}/acme", body, garbage(source), stage=STAGE, domain=HOST
        )
        call, counted = meter.measure(lambda event=event: ingest.invoke(event, kind="bounded-work"))
        assert call.status == 413, call.text
        assert "form parameters" in call.body["message"] or "bytes" in call.body["message"]
        assert counted.get("params decoded", 0) == counted.get("params hashed", 0) == 0, counted


# -- the refusal floor: every 401 after a tenant lookup leaves at the same time ----------------------
def recording_floor(seconds: float) -> tuple[RefusalFloor, list[float]]:
    """The real floor, with its waits recorded instead of slept."""
    waits: list[float] = []
    return RefusalFloor(seconds, sleep=waits.append), waits


def test_every_401_is_held_to_the_floor_known_unknown_and_never_seen(ingest: Harness) -> None:
    """A cached real tenant with a bad signature, an id never seen (a Secrets Manager miss), the
    same id again (a cached miss), a tenant without the source: each answer leaves at the floor."""
    import ingest_handler

    floor, waits = recording_floor(0.25)
    ingest_handler.get_ingestor().refusal_floor = floor
    body = b'{"type":"track","userId":"u","event":"E"}'
    for tenant in ("acme", "acme", "never-seen-1", "never-seen-1", "bare"):
        event = api_gateway_event(
            "POST", f"/v1/webhooks/spec/{tenant}", body, garbage("spec"), stage=STAGE, domain=HOST
        )
        assert ingest.invoke(event, kind="bounded-work").status == 401
    # Each waited out the rest of the floor (lookup and check took less), so each left at 0.25 s.
    assert len(waits) == 5 and all(0 < wait <= 0.25 for wait in waits), waits
    # An accepted request never waits.
    headers, signed_body = signed("spec", "acme", body, "/v1/webhooks/spec/acme")
    event = api_gateway_event("POST", "/v1/webhooks/spec/acme", signed_body, headers, stage=STAGE, domain=HOST)
    assert ingest.invoke(event, kind="bounded-work").status == 202 and len(waits) == 5


def test_the_floor_really_waits_through_the_handler(ingest: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """UNAUTHORIZED_FLOOR_SECONDS reaches the handler, and the wait is real (a lower bound: no flake)."""
    import time

    monkeypatch.setenv("UNAUTHORIZED_FLOOR_SECONDS", "0.2")
    reset_caches()
    body = b'{"type":"track","userId":"u","event":"E"}'
    for tenant in ("acme", "never-seen-2"):
        event = api_gateway_event(
            "POST", f"/v1/webhooks/spec/{tenant}", body, garbage("spec"), stage=STAGE, domain=HOST
        )
        started = time.monotonic()
        assert ingest.invoke(event, kind="bounded-work").status == 401
        assert time.monotonic() - started >= 0.2


def test_the_destination_answers_unknown_tenant_missing_loop_and_wrong_key_alike(
    ingest: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same text, one constant-time comparison each (against a decoy when there is no key),
    and the same floor: the reusable `authenticate_tenant` mechanism, on the second authenticator."""
    import destination_handler

    meter = Meter(monkeypatch)
    floor, waits = recording_floor(0.25)
    destination_handler.get_service().refusal_floor = floor
    destination = Harness(ingest.queue_url, handler="destination_handler")
    body = json.dumps({"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}}).encode()
    answers, work = [], []
    for tenant, key in (
        ("acme", "wrong-key-0123456789"),
        ("none", destination_key("acme")),
        ("bare", destination_key("acme")),
    ):
        event = api_gateway_event(
            "POST",
            f"/v1/segment/{tenant}",
            body,
            {"Content-Type": "application/json", "Authorization": basic(key)},
            resource="/v1/segment/{tenant}",
            path_parameters={"tenant": tenant},
        )
        call, counted = meter.measure(lambda event=event: destination.invoke(event, kind="bounded-work"))
        answers.append((call.status, call.body))
        work.append(counted)
    assert answers[0][0] == 401 and answers[0] == answers[1] == answers[2], answers
    assert work[0] == work[1] == work[2] == {"comparisons": 1}, work
    assert len(waits) == 3 and all(0 < wait <= 0.25 for wait in waits), waits
