"""The local stack (what `make run` starts), shared by the end-to-end tests of one module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from segment_bridge_tools.local_stack import LocalStack, StackConfig


@pytest.fixture(autouse=True)
def aws_env() -> None:
    """The stack sets its own AWS environment (moto server endpoint); the unit-test one must not interfere."""


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(StackConfig(tenant="e2e", batching_window_seconds=0.2, visibility_timeout_seconds=1)) as running:
        yield running
