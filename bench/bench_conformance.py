"""Cost of Spec conformance per message, on the ingest hot path and in `segment-bridge lint`.

    .venv/bin/python bench/bench_conformance.py [--quick]   (or `python -m bench --only conformance`)

Measures microseconds per message for each check and, as a same-run baseline that makes the
figures comparable across machines, the cost of `json.dumps` of the same message (ingest
serializes every message once anyway). "cold" is a first-seen event name (the name matcher's
cache missed: synonym and spelling search); "warm" is the steady state.
"""

from __future__ import annotations

import copy
import json
import sys
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "shared"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.common import Section, fmt  # noqa: E402
from segment_bridge.conformance.checks import check_message  # noqa: E402
from segment_bridge.conformance.lint import lint_message  # noqa: E402
from segment_bridge.conformance.review import ConformanceReviewer  # noqa: E402
from segment_bridge.events import MappedEvent  # noqa: E402
from segment_bridge.spec.event_names import match_event_name  # noqa: E402
from segment_bridge.tenants import TenantConfig  # noqa: E402

CONTEXT = {
    "integration": {"name": "acme-tool", "version": "1.0.0"},
    "ip": "203.0.113.7",
    "traits": {"email": "ada@example.com"},
    "userAgent": "Mozilla/5.0",
}

MESSAGES: dict[str, dict[str, Any]] = {
    "Order Completed, 3 products": {
        "type": "track",
        "userId": "user-1",
        "event": "Order Completed",
        "messageId": "m-1",
        "timestamp": "2025-11-07T10:00:00.000Z",
        "context": CONTEXT,
        "properties": {
            "order_id": "50314b8e9bcf000000000000",
            "total": 27.5,
            "revenue": 25.0,
            "shipping": 3.0,
            "tax": 2.0,
            "discount": 2.5,
            "coupon": "hasbros",
            "currency": "USD",
            "products": [
                {
                    "product_id": f"p{i}",
                    "sku": f"45790-32{i}",
                    "name": "Monopoly",
                    "price": 19.0,
                    "quantity": 1,
                    "category": "Games",
                    "url": "https://example.com/p",
                    "image_url": "https://example.com/p.jpg",
                }
                for i in range(3)
            ],
        },
    },
    "custom track, 8 properties": {
        "type": "track",
        "userId": "user-1",
        "event": "Report Exported",
        "messageId": "m-2",
        "context": CONTEXT,
        "properties": {
            "report_id": "r-1",
            "format": "pdf",
            "page_count": 12,
            "dashboard_id": "d-9",
            "filters_applied": True,
            "export_ms": 812,
            "workspace_id": "w-1",
            "plan": "pro",
        },
    },
    "Email Opened (an email source)": {
        "type": "track",
        "userId": "user-1",
        "event": "Email Opened",
        "messageId": "m-3",
        "context": CONTEXT,
        "properties": {
            "email_id": "e-1",
            "email_subject": "Welcome",
            "campaign_id": "c-1",
            "campaign_name": "Onboarding",
        },
    },
    "identify, 8 traits": {
        "type": "identify",
        "userId": "user-1",
        "messageId": "m-4",
        "context": CONTEXT,
        "traits": {
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "plan": "pro",
            "createdAt": "2024-01-02T03:04:05Z",
            "company": {"name": "Acme", "id": "acme"},
            "address": {"city": "London", "country": "UK"},
            "logins": 12,
        },
    },
}

TENANT = TenantConfig.model_validate({"write_key": "wk"})
REVIEWER = ConformanceReviewer()


def per_call_us(function: Callable[[], Any], number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def review_clean(message: dict[str, Any]) -> Callable[[], Any]:
    mapped = MappedEvent(message=message)
    return lambda: REVIEWER.review(mapped, source="spec", tenant_id="acme", tenant=TENANT)


def cold_match(name: str, number: int) -> float:
    """Name matching with the cache cleared before each call: the first time a name is seen."""

    def once() -> None:
        match_event_name.cache_clear()
        match_event_name(name)

    return per_call_us(once, number)


#: Calls timed per figure, by run size of `python -m bench` (smoke: only that it runs).
SIZES = {"smoke": 200, "quick": 2_000, "full": 20_000}
NAMES = ("Order Completed", "order_completed", "Purchase", "Order Complted", "Report Exported")


def section(size: str, log: Any = None) -> Section:
    number = SIZES[size]
    section = Section(
        "6. Spec conformance cost per message, against json.dumps of the same message (bench/bench_conformance.py)"
    )
    for label, message in MESSAGES.items():
        assert not check_message(message), check_message(message)
        dumps = per_call_us(partial(json.dumps, message, separators=(",", ":")), number)
        review = per_call_us(review_clean(copy.deepcopy(message)), number)
        lint = per_call_us(partial(lint_message, message), max(number // 4, 50))
        section.add(
            f"{label}: ingest review / lint, multiple of json.dumps ({fmt(dumps)} µs)",
            f"{review / dumps:.2f}x / {lint / dumps:.2f}x",
        )
    for name in NAMES:
        section.add(
            f"Event-name match, first time {name!r} is seen (then one dict lookup)",
            f"{cold_match(name, max(number // 10, 20)):.2f} µs",
        )
    return section


def main() -> None:
    from bench.report import console

    print(
        console(
            [section("quick" if "--quick" in sys.argv else "full")],
            {"date": "", "nproc": "", "python": sys.version.split()[0], "load": "", "load_end": "", "elapsed": ""},
        )
    )
