"""Benchmark 2: what ingest costs per event, through the real ingest handler.

In a fresh worker process (SQS and Secrets Manager on a moto server in another process):
- a 1,000-event SendGrid webhook (signed with the demo ECDSA key, ~0.45 MB), repeated: process
  CPU time per webhook through the handler with SQS on moto (the handler's own CPU: moto's work
  is in its own process), and again with a null queue adapter (no SQS round trip or botocore
  serialization: verify + parse + map + lint + normalize + pack only);
- a baseline in the same process and the same rounds: `json.loads` + `json.dumps` of the same body,
  the least any Python service does with it;
- a 1-message `spec` webhook, repeated: handler wall time (p50/p99) with SQS on moto, against a
  bare boto3 `SendMessage` of a body of the same size to the same moto server.
All variants are interleaved round by round, so the machine's noise hits them alike. SQS API
calls are counted at botocore (every API call the process makes), not taken from the handler.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import sys
import time
from typing import Any

from .common import (
    LAMBDA_ENV,
    Profile,
    Section,
    Timer,
    add_handler_paths,
    aws_env,
    fmt,
    median,
    percentile,
    run_worker,
    write_result,
)

MODULE = "bench.ingest"
#: The 20,000 events/s per core target is judged on a core of fixed speed, not on whichever speed
#: this shared host has during the run: its json baseline (json.loads + json.dumps of the webhook)
#: measured 148,950-164,220 events/s per core in quiet runs on 2026-12-01 (median ~154,000), and
#: 77,000-96,000 in slow spells. At the reference speed below the target is the handler costing at
#: most 150,000 / 20,000 = 7.5x the json baseline per event, a ratio taken within one run.
REFERENCE_JSON_EVENTS_PER_CORE = 150_000
TARGET_EVENTS_PER_CORE = 20_000
TENANT = "bench-ingest"
SPEC_SECRET = "whsec_bench_spec_signing_secret_0123456789"
WEBHOOK_EVENTS = 1000

#: Only event types the bridge forwards (the costly path); SendGrid's own mix has more `processed`.
SENDGRID_KINDS = [
    ("delivered", 35),
    ("open", 30),
    ("click", 15),
    ("bounce", 6),
    ("unsubscribe", 5),
    ("group_unsubscribe", 5),
    ("spamreport", 4),
]


def sendgrid_events(count: int, seed: int = 61) -> list[dict[str, Any]]:
    """SendGrid Event Webhook events shaped like SendGrid's documented examples, ~450 B each."""
    rng = random.Random(seed)
    kinds = [k for k, _ in SENDGRID_KINDS]
    weights = [w for _, w in SENDGRID_KINDS]
    now = int(time.time())
    events = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        user = rng.randrange(10**6)
        event: dict[str, Any] = {
            "email": f"person{user}@example.com",
            "timestamp": now - rng.randrange(3600),
            "smtp-id": f"<{rng.getrandbits(48):012x}.{rng.getrandbits(16):04x}@ismtpd-555>",
            "event": kind,
            "category": ["newsletter", f"spring-{rng.randrange(20)}"],
            "sg_event_id": base64.urlsafe_b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode().rstrip("="),
            "sg_message_id": f"{rng.getrandbits(64):016x}.filterdrecv-{rng.randrange(100)}-{rng.getrandbits(32):08x}.0",
            "user_id": f"user-{user:07d}",
            "marketing_campaign_id": 12345 + rng.randrange(50),
            "marketing_campaign_name": "Spring newsletter",
        }
        if kind in ("open", "click", "unsubscribe", "group_unsubscribe", "spamreport"):
            event["useragent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            event["ip"] = f"198.51.100.{rng.randrange(1, 255)}"
        if kind == "click":
            event["url"] = f"https://www.example.com/spring/offer?utm_source=newsletter&item={rng.randrange(999)}"
        if kind == "open":
            event["sg_machine_open"] = rng.random() < 0.3
        if kind == "bounce":
            event.update(
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
                status="5.1.1",
                type="bounce",
                bounce_classification="Invalid Address",
            )
        if kind == "group_unsubscribe":
            event["asm_group_id"] = 42
        events.append(event)
    return events


def spec_message() -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "user-0000042",
        "event": "Order Completed",
        "messageId": "bench-single-0001",
        "timestamp": "2026-01-05T09:00:00.000Z",
        "properties": {
            "order_id": "ord-1234567",
            "total": 129.95,
            "revenue": 119.95,
            "currency": "USD",
            "products": [
                {
                    "product_id": f"sku-{i}",
                    "name": f"Product {i}",
                    "price": 39.95 + i,
                    "quantity": 1,
                    "category": "Outdoor",
                }
                for i in range(6)
            ],
        },
        "context": {"ip": "203.0.113.7", "userAgent": "curl/8.5"},
    }


# -- worker ---------------------------------------------------------------------------------------
class NullQueue:
    """Counts the SendMessageBatch calls the real adapter would make, sends nothing."""

    def send_bodies(self, bodies: list[str], attributes: dict[str, str]) -> int:
        from segment_bridge.queue_format import group_for_send

        return len(group_for_send(bodies))


def _count_api_calls() -> dict[str, int]:
    """Count every AWS API call this process makes, by service.operation (botocore level)."""
    from botocore.client import BaseClient

    counts: dict[str, int] = {}
    original = BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        key = f"{self.meta.service_model.service_name}.{operation_name}"
        counts[key] = counts.get(key, 0) + 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    return counts


def _sendgrid_request(url_base: str) -> tuple[str, bytes, dict[str, str], str]:
    """(source, body, headers, note): SendGrid signed with the demo key, or the spec fallback."""
    body_events = sendgrid_events(WEBHOOK_EVENTS)
    try:
        from segment_bridge.ingest.sources import get_source
        from segment_bridge_tools.signing import demo_source_settings, signed_headers

        if get_source("sendgrid") is None:
            raise ImportError("no sendgrid source")
        body = json.dumps(body_events, separators=(",", ":")).encode() + b"\r\n"  # SendGrid bodies end in CRLF
        path = f"/v1/webhooks/sendgrid/{TENANT}"
        headers = signed_headers("sendgrid", body, demo_source_settings()["sendgrid"], url_base + path)
        return "sendgrid", body, headers, "SendGrid Event Webhook, ECDSA-signed with the demo key"
    except ImportError:
        from segment_bridge.ingest.signatures import sign_timestamped

        # Fallback: the same events as Spec track calls of the same size, through the spec source.
        batch = [
            {
                "type": "track",
                "userId": e["user_id"],
                "event": "Email Delivered",
                "messageId": e["sg_event_id"],
                "properties": {k: v for k, v in e.items() if k not in ("user_id", "event")},
            }
            for e in body_events
        ]
        body = json.dumps({"batch": batch}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Signature": sign_timestamped(SPEC_SECRET, body)}
        return (
            "spec",
            body,
            headers,
            "FALLBACK: no SendGrid source/signer found; a spec webhook of SendGrid-sized events",
        )


def _tenant_document() -> dict[str, Any]:
    sources: dict[str, Any] = {"spec": {"signing_secret": SPEC_SECRET}}
    try:
        from segment_bridge_tools.signing import demo_source_settings

        sources["sendgrid"] = demo_source_settings()["sendgrid"]
    except ImportError:
        pass
    return {"write_key": "wk_bench_ingest_0123456789abcdef", "region": "us", "sources": sources}


def ingest_worker(args: argparse.Namespace) -> dict[str, Any]:
    import os

    import boto3

    add_handler_paths()
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="bench-ingest")["QueueUrl"]
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name=f"segment-bridge/tenants/{TENANT}", SecretString=json.dumps(_tenant_document()))
    os.environ["QUEUE_URL"] = queue_url
    import ingest_handler

    from segment_bridge.ingest.signatures import sign_timestamped
    from segment_bridge_tools.lambda_events import LocalLambdaContext, api_gateway_event

    source, big_body, big_headers, note = _sendgrid_request("https://localhost/Prod")
    big_event = api_gateway_event("POST", f"/v1/webhooks/{source}/{TENANT}", big_body, big_headers)
    single_body = json.dumps(spec_message(), separators=(",", ":")).encode()
    single_event = api_gateway_event(
        "POST",
        f"/v1/webhooks/spec/{TENANT}",
        single_body,
        {"Content-Type": "application/json", "X-Signature": sign_timestamped(SPEC_SECRET, single_body)},
    )
    bare_body = "x" * len(single_body)

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        response = ingest_handler.lambda_handler(event, LocalLambdaContext(timeout_seconds=20))
        if response.get("statusCode") != 202:
            raise RuntimeError(f"ingest answered {response.get('statusCode')}: {str(response.get('body'))[:500]}")
        return json.loads(response["body"])

    # Warm-up (not measured): secrets cached, connections open, every code path imported.
    first = invoke(big_event)
    invoke(single_event)
    ingestor = ingest_handler.get_ingestor()
    real_queue = ingestor.queue
    null_queue = NullQueue()

    calls = _count_api_calls()
    totals: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "wall": []} for k in ("moto", "null", "json")}
    sqs_calls = {"moto": 0}
    single: list[float] = []
    single_cpu = 0.0
    bare: list[float] = []
    gc.collect()
    for rep in range(args.reps):
        ingestor.queue = real_queue
        before = dict(calls)
        with Profile(args.profile if rep == 0 else None, "ingest-sendgrid-moto"), Timer() as t:
            invoke(big_event)
        totals["moto"]["cpu"].append(t.cpu)
        totals["moto"]["wall"].append(t.wall)
        sqs_calls["moto"] += sum(v - before.get(k, 0) for k, v in calls.items() if k.startswith("sqs."))

        ingestor.queue = null_queue
        with Profile(args.profile if rep == 0 else None, "ingest-sendgrid-null"), Timer() as t:
            invoke(big_event)
        totals["null"]["cpu"].append(t.cpu)
        totals["null"]["wall"].append(t.wall)

        with Timer() as t:
            json.dumps(json.loads(big_body))
        totals["json"]["cpu"].append(t.cpu)
        totals["json"]["wall"].append(t.wall)
    ingestor.queue = real_queue

    before_single = dict(calls)
    for _ in range(args.single_reps):
        with Timer() as t:
            invoke(single_event)
        single.append(t.wall)
        single_cpu += t.cpu
        start = time.perf_counter()
        sqs.send_message(QueueUrl=queue_url, MessageBody=bare_body)
        bare.append(time.perf_counter() - start)
    single_sqs_calls = (
        sum(v - before_single.get(k, 0) for k, v in calls.items() if k.startswith("sqs.")) - args.single_reps
    )

    return {
        "source": source,
        "note": note,
        "events": WEBHOOK_EVENTS,
        "accepted": first.get("accepted"),
        "rejected": len(first.get("rejected", [])),
        "skipped": len(first.get("skipped", [])),
        "body_bytes": len(big_body),
        "reps": args.reps,
        "totals": totals,
        "sqs_calls_per_webhook": sqs_calls["moto"] / args.reps,
        "single_reps": args.single_reps,
        "single_p50": median(single),
        "single_p99": percentile(single, 99),
        "single_cpu": single_cpu / args.single_reps,
        "bare_p50": median(bare),
        "bare_p99": percentile(bare, 99),
        "single_sqs_calls_per_webhook": single_sqs_calls / args.single_reps,
        "single_body_bytes": len(single_body),
        "api_calls": calls,
    }


# -- the benchmark --------------------------------------------------------------------------------
def run(ctx: Any) -> Section:
    reps, single_reps = (2, 10) if ctx.smoke else (5, 50) if ctx.quick else (15, 200)
    ctx.log(
        f"ingest: {reps} x a {WEBHOOK_EVENTS:,}-event webhook (moto SQS / null queue / json baseline), "
        f"{single_reps} x a 1-message spec webhook"
    )
    env = {**aws_env(ctx.moto.url), **LAMBDA_ENV}
    r = run_worker(
        MODULE,
        [
            "ingest",
            "--reps",
            str(reps),
            "--single-reps",
            str(single_reps),
            *(["--profile", ctx.profile_dir] if ctx.profile_dir else []),
        ],
        env=env,
    )
    # Median CPU per round: robust to a noisy neighbour stealing a round.
    cpu = {k: median(v["cpu"]) for k, v in r["totals"].items()}
    per_core_moto = r["events"] / cpu["moto"]
    per_core_null = r["events"] / cpu["null"]
    per_core_json = r["events"] / cpu["json"]
    section = Section(
        f"2. Ingest cost: a {r['events']:,}-event {'SendGrid' if r['source'] == 'sendgrid' else 'spec'} "
        "webhook and a 1-message spec webhook through the ingest handler"
    )
    section.add(
        "Events accepted / rejected / skipped per webhook",
        f"{r['accepted']:,} / {r['rejected']} / {r['skipped']} of {r['events']:,}",
    )
    at_reference = REFERENCE_JSON_EVENTS_PER_CORE / per_core_json  # this run's core -> the reference core
    target = f">= {TARGET_EVENTS_PER_CORE:,}"
    section.add(
        "Events/s per core at the reference core speed, whole handler, SQS on moto (handler process CPU)",
        f"{per_core_moto * at_reference:,.0f}",
        target,
        per_core_moto * at_reference >= TARGET_EVENTS_PER_CORE,
    )
    section.add(
        "Events/s per core at the reference core speed, verify + parse + map + lint + normalize + pack (null queue)",
        f"{per_core_null * at_reference:,.0f}",
        target,
        per_core_null * at_reference >= TARGET_EVENTS_PER_CORE,
    )
    section.add(
        "Same-run baseline: json.loads + json.dumps of the same body, events/s per core "
        f"(reference core: {REFERENCE_JSON_EVENTS_PER_CORE:,})",
        f"{per_core_json:,.0f}",
    )
    section.add(
        "Events/s per core on this run's core (orientation): with SQS / null queue",
        f"{per_core_moto:,.0f} / {per_core_null:,.0f}",
    )
    section.add(
        "Handler CPU per event as a multiple of the json baseline: with SQS / null queue",
        f"{per_core_json / per_core_moto:.1f}x / {per_core_json / per_core_null:.1f}x",
    )
    wall = {k: median(v["wall"]) for k, v in r["totals"].items()}
    section.add(
        f"Wall time per {r['events']:,}-event webhook: with SQS on moto / null queue / json baseline (orientation)",
        f"{wall['moto'] * 1000:.0f} / {wall['null'] * 1000:.0f} / {wall['json'] * 1000:.0f} ms",
    )
    sqs_per_k = 1000 * r["sqs_calls_per_webhook"] / r["events"]
    section.add("SQS API calls per 1,000 events (counted at botocore)", fmt(sqs_per_k), "<= 2", sqs_per_k <= 2)
    section.add(
        "1-message spec webhook: handler wall time p50 / p99 (SQS on moto)",
        f"{r['single_p50'] * 1000:.2f} ms / {r['single_p99'] * 1000:.2f} ms",
    )
    section.add(
        "1-message webhook p50 / p99 as a multiple of a bare SendMessage to the same moto",
        f"{r['single_p50'] / r['bare_p50']:.2f}x / {r['single_p99'] / r['bare_p99']:.2f}x",
    )
    section.add("1-message webhook: handler CPU, as events/s per core", f"{1 / r['single_cpu']:,.0f}")
    section.add("1-message webhook: SQS API calls per webhook", fmt(r["single_sqs_calls_per_webhook"]))
    section.notes += [
        f"Webhook: {r['note']}; {r['body_bytes']:,} bytes, {r['events']:,} events of forwarded types (delivered, "
        "open, click, bounce, unsubscribe, spam report), each with a `user_id` custom argument. Tenant: userId "
        "required, no identity loop (no destination key), the conformance reviewer on, as `get_ingestor()` builds it.",
        f"{r['reps']} rounds, each: the webhook with SQS on moto, the webhook with a null queue adapter swapped into "
        "the handler's Ingestor (counts the SendMessageBatch calls it would make, sends nothing), and the json "
        "baseline. Events/s per core = events / median process CPU seconds per round (the moto server runs in its "
        "own process, so its work is not counted; boto3's request signing and serialization are).",
        f"The target is judged at a reference core speed: a core whose json baseline runs at "
        f"{REFERENCE_JSON_EVENTS_PER_CORE:,} events/s (this 2-core machine's quiet speed on 2026-12-01). The speed of "
        "this shared host moves by up to 2x between runs (json baseline 77,000-164,000 events/s per core), which "
        "moved the raw events/s across the target while the handler's multiple of the baseline held; the raw "
        "figures are shown for orientation.",
        f"1-message webhook: {r['single_reps']} calls ({r['single_body_bytes']:,}-byte track with 6 products), each "
        f"followed by a bare boto3 SendMessage of a body of the same size to the same moto server; absolute "
        f"figures: bare SendMessage p50 {r['bare_p50'] * 1000:.2f} ms, p99 {r['bare_p99'] * 1000:.2f} ms.",
    ]
    section.data = {
        "result": r,
        "per_core_moto": per_core_moto,
        "per_core_null": per_core_null,
        "per_core_json": per_core_json,
        "sqs_per_1000": sqs_per_k,
    }
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=MODULE)
    parser.add_argument("worker")
    parser.add_argument("mode", choices=["ingest"])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--single-reps", type=int, default=300)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    write_result(args.out, ingest_worker(args))


if __name__ == "__main__":
    main(sys.argv[1:])
