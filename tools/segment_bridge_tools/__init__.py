"""Operator and developer tooling: the `segment-bridge` CLI and the local stack (`make run`)."""
