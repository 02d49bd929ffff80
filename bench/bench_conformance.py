"""Cost of Spec conformance per message, on the ingest hot path and in `segment-bridge lint`, and
the event-name matcher's fidelity.

    .venv/bin/python bench/bench_conformance.py [--quick]   (or `python -m bench --only conformance`)

Measures microseconds per message for each check and, as a same-run baseline that makes the
figures comparable across machines, the cost of `json.dumps` of the same message (ingest
serializes every message once anyway). "cold" is a first-seen event name (the name matcher's
cache missed: the word-by-word reading); "warm" is the steady state.

Fidelity (issue 14, `bench/fidelity.py`): the share of generated near-misses of every Spec event
the matcher names right, and the share of ordinary custom names it flags.

Libraries weighed against the matcher's own code: a lemmatizer (lemminflect) and a fuzzy matcher
(rapidfuzz), each timed in fresh interpreters (import = what a Lambda cold start would pay, against
`import boto3` there) and per call (against the bridge's stemmer and edit distance in this run).
"""

from __future__ import annotations

import copy
import json
import subprocess
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

from bench.common import PYTHON, Section, fmt  # noqa: E402
from bench.fidelity import MAX_FLAGGED_RATE, MIN_CAUGHT_RATE, measure  # noqa: E402
from segment_bridge.conformance.checks import check_message  # noqa: E402
from segment_bridge.conformance.lint import lint_message  # noqa: E402
from segment_bridge.conformance.review import ConformanceReviewer  # noqa: E402
from segment_bridge.events import MappedEvent  # noqa: E402
from segment_bridge.spec.catalog import CATALOG  # noqa: E402
from segment_bridge.spec.event_names import match_event_name  # noqa: E402
from segment_bridge.spec.naming import osa_distance  # noqa: E402
from segment_bridge.spec.words import stem  # noqa: E402
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
#: Fresh interpreters per import figure, by run size.
INTERPRETERS = {"smoke": 1, "quick": 3, "full": 7}
NAMES = (
    "Order Completed",
    "order_completed",
    "Purchase",
    "Product Add",
    "Cart Item Added",
    "Order Complted",
    "Report Exported",
)

#: What each library costs to bring in: (untimed setup, timed code): the import and the first call
#: (which loads its data). The matcher's own is what it adds to a cold start on top of the catalog,
#: which conformance loads anyway: its module, and its word index (built on the first near-miss).
IMPORTS = {
    "boto3": ("", "import boto3"),
    "the name matcher (its module + word index)": (
        "import segment_bridge.spec.catalog",
        "from segment_bridge.spec.event_names import INDEX, match_event_name\nmatch_event_name('Product Add')",
    ),
    "lemminflect (import + first lemma)": ("", "import lemminflect\nlemminflect.getLemma('adding', upos='VERB')"),
    "rapidfuzz (import of its OSA distance)": ("", "from rapidfuzz.distance import OSA\nOSA.distance('a', 'b')"),
}
_PROBE = """
import sys, time
sys.path[:0] = [{shared!r}]
{setup}
t = time.process_time()
{code}
print(time.process_time() - t)
"""


def import_ms(setup: str, code: str, times: int) -> float:
    """Fastest CPU time of `code` (after `setup`) in `times` fresh interpreters (a cold start each), in ms."""
    probe = _PROBE.format(shared=str(ROOT / "layers" / "shared"), setup=setup, code=code)
    samples = []
    for _ in range(times):
        done = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
        samples.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
    return min(samples)


def weigh_libraries(section: Section, size: str, number: int) -> None:
    times = INTERPRETERS[size]
    costs = {label: import_ms(setup, code, times) for label, (setup, code) in IMPORTS.items()}
    boto3 = costs.pop("boto3")
    for label, ms in costs.items():
        section.add(
            f"Cold start, CPU ms / x `import boto3`: {label}",
            f"{ms:.1f} ms / {ms / boto3:.2f}x",
        )

    import lemminflect
    from rapidfuzz.distance import OSA

    words = ("adding", "completed", "products", "cancelled", "tapped", "searches")
    ours = per_call_us(lambda: [stem(w, CATALOG.vocabulary.irregular) for w in words], number)
    theirs = per_call_us(lambda: [lemminflect.getLemma(w, upos="VERB") for w in words], number)
    section.add(
        f"Per call: lemminflect lemma / the bridge's stem, {len(words)} words",
        f"{theirs / ours:.3f}x ({fmt(ours)} µs ours)",
    )
    pairs = (("complted", "completed"), ("prodcut", "product"), ("aplication", "application"), ("chart", "cart"))
    ours = per_call_us(lambda: [osa_distance(a, b, 2) for a, b in pairs], number)
    theirs = per_call_us(lambda: [OSA.distance(a, b, score_cutoff=2) for a, b in pairs], number)
    section.add(
        f"Per call: rapidfuzz OSA / the bridge's OSA, {len(pairs)} pairs",
        f"{theirs / ours:.3f}x ({fmt(ours)} µs ours)",
    )
    section.notes.append(
        "The matcher's word index is built on the first name that needs it (not at import). "
        "Why the bridge uses neither library at run time: the matcher caches one verdict per distinct name, "
        "so a stem or an edit distance is computed once per name per container (a few dozen per webhook "
        "source at most), while a library's import is paid by every cold start of the ingest function. "
        "Tests use both as oracles (tests/unit/test_event_name_matcher.py, test_conformance_names.py)."
    )


def fidelity(section: Section) -> None:
    result = measure()
    simple, harder = result.by_half["simple"], result.by_half["harder"]
    section.add(
        f"Near-misses of every Spec event named right (generated from the catalog: {result.total:,} names)",
        f"{result.caught:,} / {result.total:,} = {result.caught_rate:.1%} "
        f"(simpler half {simple[0]}/{simple[1]}, tense/order/synonyms {harder[0]}/{harder[1]})",
        f">= {MIN_CAUGHT_RATE:.0%}",
        result.caught_rate >= MIN_CAUGHT_RATE,
    )
    section.add(
        f"Ordinary custom event names flagged as Spec near-misses ({result.custom_total} names)",
        f"{len(result.flagged)} / {result.custom_total} = {result.flagged_rate:.1%}",
        f"<= {MAX_FLAGGED_RATE:.0%}",
        result.flagged_rate <= MAX_FLAGGED_RATE,
    )


def section(size: str, log: Any = None) -> Section:
    number = SIZES[size]
    section = Section(
        "6. Spec conformance cost per message, against json.dumps of the same message, and the name matcher's "
        "fidelity (bench/bench_conformance.py)"
    )
    fidelity(section)
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
    weigh_libraries(section, size, number)
    return section


def main() -> None:
    from bench.report import console

    print(
        console(
            [section("quick" if "--quick" in sys.argv else "full")],
            {"date": "", "nproc": "", "python": sys.version.split()[0], "load": "", "load_end": "", "elapsed": ""},
        )
    )
