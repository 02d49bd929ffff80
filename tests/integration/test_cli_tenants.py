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


@mock_aws
def test_oauth_keygen_then_put_the_ids_sends_the_tenant_with_oauth() -> None:
    assert run("tenants", "put", "acme", "--write-key", KEY).exit_code == 0
    made = run("tenants", "oauth-keygen", "acme")
    assert made.exit_code == 0, made.output
    assert "-----BEGIN PUBLIC KEY-----" in made.output and "PRIVATE" not in made.output
    assert "Create OAuth app" in made.output and "--oauth-key-id" in made.output  # the customer's steps
    stored = SecretsManagerTenants("segment-bridge").get("acme")
    assert stored.oauth is not None and not stored.uses_oauth  # pending: still Basic auth

    put = run("tenants", "put", "acme", "--oauth-client-id", "app-1", "--oauth-key-id", "key-1")
    assert put.exit_code == 0, put.output
    stored = SecretsManagerTenants("segment-bridge").get("acme")
    assert stored.uses_oauth and stored.write_key.get_secret_value() == KEY
    shown = run("tenants", "show", "acme").output
    assert json.loads(shown)["oauth"] == {
        "client_id": "app-1",
        "key_id": "key-1",
        "private_key": "****",
        "scope": "tracking_api:write",
    }
    # The same public key again unless --replace; the check runs the real round trip (no server here).
    assert "existing" in run("tenants", "oauth-keygen", "acme").output


@mock_aws
def test_put_oauth_ids_without_a_key_says_to_make_one() -> None:
    run("tenants", "put", "acme", "--write-key", KEY)
    result = CliRunner().invoke(main, ["tenants", "put", "acme", "--oauth-client-id", "app-1"])
    assert result.exit_code != 0 and "oauth-keygen" in result.output


@mock_aws
def test_check_of_a_write_key_tenant_says_only_the_source_debugger_can_confirm_it() -> None:
    run("tenants", "put", "acme", "--write-key", "abcdefghijklmnopqrstuvwxyz012345")
    result = CliRunner().invoke(main, ["tenants", "check", "acme"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["verdict"] == "unverifiable" and "Source Debugger" in body["message"]


@mock_aws
def test_key_add_list_revoke_rotates_without_downtime() -> None:
    from segment_bridge.tenants import bridge_key_matches, split_bridge_key

    run("tenants", "put", "acme", "--write-key", KEY)
    first = run("tenants", "key", "add", "acme")
    assert first.exit_code == 0, first.output
    key_a = first.stdout.strip()
    assert key_a.startswith("acme.sbk_") and "not shown again" in first.stderr
    key_b = run("tenants", "key", "add", "acme").stdout.strip()
    assert "revoke one first" in run_failing("tenants", "key", "add", "acme")

    listed = run("tenants", "key", "list", "acme").output.split()
    ids = listed[0::2]
    assert len(ids) == 2 and key_a not in run("tenants", "show", "acme").output

    config = SecretsManagerTenants("segment-bridge", max_age=0).get("acme")
    secrets = [(split_bridge_key(k) or ("", ""))[1] for k in (key_a, key_b)]
    assert all(bridge_key_matches(config, s) for s in secrets)  # both work during the rotation

    revoked = run("tenants", "key", "revoke", "acme", ids[0])
    assert revoked.exit_code == 0 and "1 key(s) left" in revoked.output
    config = SecretsManagerTenants("segment-bridge", max_age=0).get("acme")
    assert not bridge_key_matches(config, secrets[0]) and bridge_key_matches(config, secrets[1])
    assert "no bridge key" in run_failing("tenants", "key", "revoke", "acme", ids[0])


def run_failing(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0
    return result.output
