"""`segment-bridge tenants put|show|list|delete`: manage tenant secrets in Secrets Manager.

Secrets are written through boto3 (so `AWS_ENDPOINT_URL` points the CLI at moto locally) and
validated with the same `TenantConfig` model the Lambdas use, so a bad secret is refused here
rather than discovered by the forwarder. `show` masks the writeKey and every signing secret.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from segment_bridge.tenants import TENANT_ID_RULE, TenantConfig, is_valid_tenant_id, secret_name


def _client() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def _check_tenant(tenant: str) -> str:
    if not is_valid_tenant_id(tenant):
        raise click.BadParameter(TENANT_ID_RULE)
    return tenant


prefix_option = click.option(
    "--prefix",
    envvar="SECRETS_PREFIX",
    default="segment-bridge",
    show_default=True,
    help="Secrets prefix (template parameter SecretsPrefix).",
)


@click.group()
def tenants() -> None:
    """Create, inspect and remove tenants (one Secrets Manager secret each)."""


@tenants.command("put")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@click.option("--write-key", envvar="SEGMENT_WRITE_KEY", help="Segment writeKey (or SEGMENT_WRITE_KEY).")
@click.option("--region", type=click.Choice(["us", "eu"]), help="Segment region of the workspace.")
@click.option(
    "--source",
    "source_settings",
    multiple=True,
    metavar="NAME=JSON",
    help='Per-source settings, e.g. spec=\'{"signing_secret": "..."}\'. Repeatable.',
)
@click.option("--missing-user-id", type=click.Choice(["reject", "anonymous"]), help="Policy for events without userId.")
@click.option(
    "--destination-api-key",
    envvar="SEGMENT_DESTINATION_API_KEY",
    help="Key Segment sends to POST /v1/segment/{tenant} (identity loop); at least 16 characters.",
)
@click.option("--from-file", type=click.File("r"), help="Whole tenant document as JSON ('-' for stdin).")
@prefix_option
def put(
    tenant: str,
    write_key: str | None,
    region: str | None,
    source_settings: tuple[str, ...],
    missing_user_id: str | None,
    destination_api_key: str | None,
    from_file: Any,
    prefix: str,
) -> None:
    """Create or update TENANT. Options given replace those fields; others are kept."""
    client = _client()
    name = secret_name(prefix, tenant)
    document: dict[str, Any] = {}
    exists = True
    try:
        document = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    except client.exceptions.ResourceNotFoundException:
        exists = False
    if from_file is not None:
        document = json.load(from_file)
    if write_key:
        document["write_key"] = write_key
    if region:
        document["region"] = region
    if missing_user_id:
        document.setdefault("identity", {})["missing_user_id"] = missing_user_id
    if destination_api_key:
        document["destination"] = {"api_key": destination_api_key}
    for item in source_settings:
        source, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=JSON, got {item!r}", param_hint="--source")
        try:
            document.setdefault("sources", {})[source] = json.loads(raw)
        except ValueError as exc:
            raise click.BadParameter(f"{source}: not JSON ({exc})", param_hint="--source") from None
    try:
        config = TenantConfig.model_validate(document)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise click.ClickException(f"invalid tenant document: {fields}") from None
    if exists:
        client.put_secret_value(SecretId=name, SecretString=config.to_secret_json())
    else:
        client.create_secret(
            Name=name, SecretString=config.to_secret_json(), Description=f"segment-bridge tenant {tenant}"
        )
    click.echo(f"{'updated' if exists else 'created'} {name}")


@tenants.command("show")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@prefix_option
def show(tenant: str, prefix: str) -> None:
    """Print TENANT's settings with the writeKey and signing secrets masked."""
    client = _client()
    try:
        raw = client.get_secret_value(SecretId=secret_name(prefix, tenant))["SecretString"]
    except client.exceptions.ResourceNotFoundException:
        raise click.ClickException(f"no tenant {tenant!r} under prefix {prefix!r}") from None
    try:
        config = TenantConfig.model_validate_json(raw)
    except ValidationError as exc:
        raise click.ClickException(
            f"tenant secret is invalid: {exc.error_count()} error(s); fix it with `tenants put`"
        ) from None
    click.echo(json.dumps(config.masked(), indent=2, sort_keys=True))


@tenants.command("list")
@prefix_option
def list_(prefix: str) -> None:
    """List tenant ids under the prefix."""
    client = _client()
    base = f"{prefix}/tenants/"
    paginator = client.get_paginator("list_secrets")
    for page in paginator.paginate(Filters=[{"Key": "name", "Values": [base]}]):
        for entry in page.get("SecretList", []):
            if entry["Name"].startswith(base):
                click.echo(entry["Name"][len(base) :])


@tenants.command("delete")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@click.option("--force", is_flag=True, help="Delete immediately instead of after the 7-day recovery window.")
@click.confirmation_option(prompt="Delete this tenant's secret?")
@prefix_option
def delete(tenant: str, force: bool, prefix: str) -> None:
    """Delete TENANT's secret (recoverable for 7 days unless --force)."""
    client = _client()
    kwargs: dict[str, Any] = {"ForceDeleteWithoutRecovery": True} if force else {"RecoveryWindowInDays": 7}
    try:
        client.delete_secret(SecretId=secret_name(prefix, tenant), **kwargs)
    except client.exceptions.ResourceNotFoundException:
        raise click.ClickException(f"no tenant {tenant!r} under prefix {prefix!r}") from None
    click.echo(f"deleted {secret_name(prefix, tenant)}", file=sys.stdout)
