"""4. Scale arithmetic: what the measured batch fill and CPU costs mean for a deployment.

Nothing is measured here; it combines the forwarding and ingest results with the partner cap
(50 requests/s), Lambda's CPU allocation (proportional to memory, one full vCPU at 1,769 MB) and the
template's defaults. CPU costs are this machine's cores, not Lambda's arm64 ones: the CPU-derived
figures are estimates to within a small factor, the request arithmetic is exact.
"""

from __future__ import annotations

import math

from .common import Section

PARTNER_CAP = 50  # requests/s, whole deployment (Segment's partner guidance)
FULL_VCPU_MB = 1769  # Lambda: one vCPU at 1,769 MB, proportional below


def _template_defaults() -> tuple[int, int, int]:
    """(forwarder memory MB, ingest memory MB, ForwardMaximumConcurrency default), read from template.yaml."""
    from cfnlint.decode import cfn_yaml

    from .common import ROOT

    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    resources, default_memory = template["Resources"], template["Globals"]["Function"].get("MemorySize", 128)

    def memory(function: str) -> int:
        return int(resources[function]["Properties"].get("MemorySize", default_memory))

    concurrency = int(template["Parameters"]["ForwardMaximumConcurrency"]["Default"])
    return memory("ForwardFunction"), memory("IngestFunction"), concurrency


TEMPLATE_MEMORY_MB, INGEST_MEMORY_MB, TEMPLATE_CONCURRENCY = _template_defaults()
#: Assumed round trip of one ~0.4 MB gzip'd batch to Segment's API from AWS, for the per-tenant
#: sequential-send bound. Not measured (loopback is ~ms); change it here to redo the arithmetic.
ASSUMED_SEGMENT_SECONDS = 0.15


def in_flight() -> int:
    """Requests one tenant has on the wire per instance (forwarding.TENANT_IN_FLIGHT)."""
    from segment_bridge.forward.forwarder import TENANT_IN_FLIGHT

    return TENANT_IN_FLIGHT


def paced_cap() -> float:
    """The fleet's actual pace: the limiter keeps some slack under the cap (ratelimit.RATE_HEADROOM)."""
    try:
        from segment_bridge.forward.ratelimit import paced_rate

        return paced_rate(PARTNER_CAP)
    except ImportError:
        return float(PARTNER_CAP)


def run(forward: Section, ingest: Section | None) -> Section:
    f = forward.data
    pace = paced_cap()
    per_request = f["messages_per_request"]
    fill = f["fill_percent"]
    mean_bytes = f["mean_message_bytes"]
    cpu_per_message = f["cpu_per_1000"] / 1000
    cpu_per_request = cpu_per_message * per_request
    max_rate = pace * per_request
    full_rate = pace * 475_000 / (mean_bytes + 1)
    # Forwarder: the fleet must sustain `pace` requests/s of CPU work.
    fleet_vcpu = pace * cpu_per_request
    per_instance_vcpu = fleet_vcpu / TEMPLATE_CONCURRENCY
    memory_needed = FULL_VCPU_MB * per_instance_vcpu
    template_vcpu = TEMPLATE_MEMORY_MB / FULL_VCPU_MB
    # One tenant keeps TENANT_IN_FLIGHT requests on the wire per instance (forwarding.py).
    seconds_per_request = ASSUMED_SEGMENT_SECONDS + cpu_per_request / min(1.0, template_vcpu)
    hot_tenant_rate = in_flight() / seconds_per_request
    hot_tenant_instances = math.ceil(pace / hot_tenant_rate)
    peak_mb, before_mb = f["memory"]["peak_mb"], f["memory"]["rss_before_mb"]

    section = Section("4. Scale arithmetic (from the figures above; estimates where marked)")
    section.add(
        "Messages per Segment request (measured, mean message size)",
        f"{per_request:,.0f} ({fill:.0f} % of 500 KB, {mean_bytes:,.0f} B each)",
    )
    section.add(
        f"Most messages/s the deployment can deliver: {pace:g} req/s (the limiter's pace under the 50/s cap) "
        "x messages per request",
        f"{max_rate:,.0f} /s",
    )
    section.add("Ceiling with every batch full (475 KB)", f"{full_rate:,.0f} /s")
    section.add(
        "Forwarder CPU at that rate (this machine's cores; estimate)",
        f"{fleet_vcpu:.2f} vCPU in all ({cpu_per_request * 1000:.1f} ms CPU per request)",
    )
    section.add(
        f"Forwarder memory for that CPU with {TEMPLATE_CONCURRENCY} instances (estimate)",
        f">= {memory_needed:,.0f} MB each (template: {TEMPLATE_MEMORY_MB} MB = {template_vcpu:.2f} vCPU)",
    )
    section.add("Forwarder memory use (measured peak RSS, full 6 MB batch)", f"{peak_mb:.0f} MB")
    section.add(
        f"Instances to keep {pace:g} req/s when one tenant has all the traffic (assumes "
        f"{ASSUMED_SEGMENT_SECONDS * 1000:.0f} ms per request to Segment)",
        f"{hot_tenant_instances}",
    )
    lines_ingest = ""
    if ingest is not None:
        per_core = ingest.data["per_core_moto"]
        ingest_vcpu = max_rate / per_core
        ingest_instance_vcpu = INGEST_MEMORY_MB / FULL_VCPU_MB
        instances = math.ceil(ingest_vcpu / ingest_instance_vcpu)
        section.add(
            "Ingest CPU at that rate (1,000-event webhooks; estimate)",
            f"{ingest_vcpu:.1f} vCPU = ~{instances} concurrent instances at {INGEST_MEMORY_MB} MB",
        )
        lines_ingest = (
            f"- **Ingest** costs {1e6 / per_core:,.0f} µs of CPU per event here ({per_core:,.0f} events/s per core "
            f"with SQS), so {max_rate:,.0f} events/s needs about {ingest_vcpu:.1f} vCPU: ~{instances} concurrent "
            f"ingest instances at {INGEST_MEMORY_MB} MB ({ingest_instance_vcpu:.2f} vCPU each), well inside Lambda's "
            "default 1,000 concurrent executions; API Gateway's default 10,000 requests/s is not a limit for "
            "batched webhooks. SQS: about 1 SendMessageBatch call per 1,000 events.\n"
        )
    section.data["markdown"] = (
        "### How the numbers combine\n\n"
        f"- **Delivery ceiling.** Segment asks partners for at most {PARTNER_CAP} requests/s in total; the forwarders' "
        f"limiters pace the fleet at {pace:g}/s (headroom for jitter). Each request carried {per_request:,.0f} "
        f"messages on average ({fill:.0f} % of the 500 KB limit, with {mean_bytes:,.0f}-byte messages, three tenants "
        f"and 6 MB invocations), so the deployment can deliver at most "
        f"{pace:g} × {per_request:,.0f} ≈ **{max_rate:,.0f} messages/s** sustained, about "
        f"{max_rate * 3600 / 1e6:,.0f} million an hour. With every batch full it would be {full_rate:,.0f}/s; fill "
        "drops when an invocation's share of a tenant ends in a part-full request (more tenants, smaller "
        "invocations), and rises with bigger batching windows.\n"
        f"- **Forwarder CPU.** Measured {cpu_per_request * 1000:.1f} ms of CPU per request (split the SQS records, "
        f"join the batch, gzip, send; gzip is the largest part). At {pace:g} requests/s that is "
        f"{fleet_vcpu:.2f} vCPU for the whole fleet, {per_instance_vcpu:.2f} vCPU per instance with the template's "
        f"{TEMPLATE_CONCURRENCY} instances, i.e. at least {memory_needed:,.0f} MB each (Lambda gives one vCPU per "
        f"1,769 MB; the template's {TEMPLATE_MEMORY_MB} MB gives {template_vcpu:.2f}). Memory itself is not the "
        f"constraint: one full 6 MB invocation peaked at {peak_mb:.0f} MB RSS, {peak_mb - before_mb:.0f} MB above the "
        "process before it.\n"
        f"- **Per-tenant latency bound.** Within an instance a tenant keeps {in_flight()} requests on the wire, so one "
        f"tenant gets at most {in_flight()} / (Segment round trip + CPU per request) requests/s per instance. With an "
        f"assumed {ASSUMED_SEGMENT_SECONDS * 1000:.0f} ms round trip and the CPU above at {TEMPLATE_MEMORY_MB} MB that "
        f"is {hot_tenant_rate:.1f} requests/s, so a single hot tenant needs about {hot_tenant_instances} "
        f"instances (ForwardMaximumConcurrency) to use the whole {pace:g}/s; several busy tenants share an instance's "
        "4 tenant threads. Raising ForwardMaximumConcurrency keeps the fleet under the cap: each instance gets 1/N.\n"
        + lines_ingest
        + _verdict(memory_needed, hot_tenant_instances, pace)
    )
    section.notes.append(
        "CPU-derived figures use this benchmark machine's cores, which are busy and not Lambda's arm64 cores: read "
        "them as within a factor of about 2. The request arithmetic (cap × fill) is exact for the measured traffic."
    )
    section.data.update(
        max_rate=max_rate, fleet_vcpu=fleet_vcpu, memory_needed=memory_needed, hot_tenant_instances=hot_tenant_instances
    )
    return section


def _verdict(memory_needed: float, hot_tenant_instances: int, pace: float) -> str:
    if memory_needed <= TEMPLATE_MEMORY_MB:
        cpu = (
            f"- **Verdict.** The template's {TEMPLATE_MEMORY_MB} MB x {TEMPLATE_CONCURRENCY} forwarders have the CPU "
            f"for the full {pace:g} requests/s. "
        )
    else:
        cpu = (
            f"- **Verdict.** At {TEMPLATE_MEMORY_MB} MB x {TEMPLATE_CONCURRENCY} the forwarders would be CPU-bound "
            f"below {pace:g} requests/s: for the full rate give them >= {memory_needed:,.0f} MB, or raise "
            f"ForwardMaximumConcurrency (CPU per instance falls as 1/N). "
        )
    return cpu + (
        f"A single dominant tenant needs ForwardMaximumConcurrency of about {hot_tenant_instances} to use "
        f"the whole cap, because each instance keeps {in_flight()} of a tenant's requests on the wire.\n"
    )
