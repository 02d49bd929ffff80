"""`segment-bridge tenants ...` against moto: what it writes is what the Lambdas can read."""

from __future__ import annotations

import json

import boto3
from click.testing import CliRunner
from moto import mock_aws

from segment_bridge.tenants import SecretsManagerTenants
from segment_bridge_tools.cli import main

KEY = "wk_live_0123456789abcdefSECRET"


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@mock_aws
def test_put_show_list_delete_round_trip() -> None:
    created = run(
        "tenants",
        "put",
        "acme",
        "--write-key",
        KEY,
        "--region",
        "eu",
        "--source",
        'spec={"signing_secret": "sign-me-please"}',
    )
    assert created.exit_code == 0, created.output
    assert "created segment-bridge/tenants/acme" in created.output

    config = SecretsManagerTenants("segment-bridge").get("acme")
    assert config.region == "eu" and config.write_key.get_secret_value() == KEY

    shown = run("tenants", "show", "acme")
    assert shown.exit_code == 0
    assert KEY not in shown.output and "sign-me-please" not in shown.output
    masked = json.loads(shown.output)
    assert masked["write_key"].endswith("CRET") and masked["sources"]["spec"]["signing_secret"] == "****"

    updated = run("tenants", "put", "acme", "--region", "us")
    assert "updated" in updated.output
    assert SecretsManagerTenants("segment-bridge").get("acme").write_key.get_secret_value() == KEY  # kept

    run("tenants", "put", "beta", "--write-key", KEY)
    assert run("tenants", "list").output.split() == ["acme", "beta"]

    deleted = run("tenants", "delete", "acme", "--force", "--yes")
    assert deleted.exit_code == 0
    assert run("tenants", "list").output.split() == ["beta"]


@mock_aws
def test_invalid_documents_and_ids_are_refused_before_writing() -> None:
    bad_region = CliRunner().invoke(main, ["tenants", "put", "acme", "--write-key", KEY, "--region", "mars"])
    assert bad_region.exit_code != 0
    no_key = CliRunner().invoke(main, ["tenants", "put", "acme", "--region", "us"])
    assert no_key.exit_code != 0 and "write_key" in no_key.output
    bad_id = CliRunner().invoke(main, ["tenants", "put", "../etc", "--write-key", KEY])
    assert bad_id.exit_code != 0 and "tenant id must be" in bad_id.output
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == []


@mock_aws
def test_show_unknown_tenant_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["tenants", "show", "ghost"])
    assert result.exit_code != 0 and "no tenant 'ghost'" in result.output
