"""Fixtures of the hardening suite, and the count of generated inputs printed after the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import reset_caches

from .support import FUZZ_EXAMPLES, FUZZ_MAX_BODY_BYTES, STATS, WORK, Harness, install_tenants

#: One profile for every property in this suite: bounded by FUZZ_EXAMPLES, no per-example deadline
#: (the invariants check time themselves), and function-scoped fixtures are fine because every
#: example leaves the moto state as it found it (the harness drains the queue after each call).
settings.register_profile(
    "hardening",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
    print_blob=True,
)
HARDENING = settings.get_profile("hardening")


@pytest.fixture
def harness(aws: dict[str, str], identity_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """The ingest handler on moto, tenants `acme` and `other` with every source and the identity
    loop on (events without a userId are looked up in the identity table), a 64 KiB body limit."""
    monkeypatch.setenv("MAX_BODY_BYTES", str(FUZZ_MAX_BODY_BYTES))
    install_tenants()
    yield Harness(aws["queue_url"])
    reset_caches()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if WORK:
        terminalreporter.write_sep("-", "work per unsigned request (the same for a real, an unknown and a bare tenant)")
        for probe, counts in WORK.items():
            detail = ", ".join(f"{name} {value:,}" for name, value in sorted(counts.items())) or "nothing"
            terminalreporter.write_line(f"{probe}: {detail}")
    if not STATS:
        return
    total = sum(STATS.values())
    detail = ", ".join(f"{kind}: {count}" for kind, count in sorted(STATS.items()))
    terminalreporter.write_sep("-", "hardening")
    terminalreporter.write_line(
        f"generated inputs sent through the real handlers: {total} ({detail}); FUZZ_EXAMPLES={FUZZ_EXAMPLES}"
    )
