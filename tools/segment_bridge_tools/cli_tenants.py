"""`segment-bridge tenants put|show|list|delete|oauth-keygen|check|key`: manage tenant secrets in Secrets Manager.

Secrets are written through boto3 (so `AWS_ENDPOINT_URL` points the CLI at moto locally) and
validated with the same `TenantConfig` model the Lambdas use, so a bad secret is refused here
rather than discovered by the forwarder. `show` masks the writeKey and every signing secret.
`put`, `show`, `delete`, `oauth-keygen`, `check` and `key` are the admin API's own implementation
(`segment_bridge.admin.TenantAdmin`), so the CLI and the partner's settings page cannot disagree.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from segment_bridge.admin import DEFAULT_KEY_BITS, AdminResult, SecretsManagerStore, TenantAdmin
from segment_bridge.errors import BridgeError
from segment_bridge.tenants import TENANT_ID_RULE, is_valid_tenant_id, secret_name


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


def _admin(prefix: str) -> TenantAdmin:
    import os

    servers = {"us": os.environ.get("SEGMENT_OAUTH_URL_US", ""), "eu": os.environ.get("SEGMENT_OAUTH_URL_EU", "")}
    return TenantAdmin(
        SecretsManagerStore(_client()),
        prefix=prefix,
        public_api_url=os.environ.get("PUBLIC_API_URL", ""),
        oauth_servers=servers,
    )


def _done(result: AdminResult) -> AdminResult:
    """The admin result, or the CLI's error with the same words the API answers."""
    if result.status >= 400:
        raise click.ClickException(str(result.body.get("message", f"failed with {result.status}")))
    return result


def _run(call: Any) -> AdminResult:
    try:
        return _done(call())
    except BridgeError as exc:
        raise click.ClickException(exc.message) from None


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
@click.option("--oauth-client-id", help="The customer's Segment OAuth app id (after `tenants oauth-keygen`).")
@click.option("--oauth-key-id", help="The id Segment gave the uploaded public key.")
@prefix_option
def put(
    tenant: str,
    write_key: str | None,
    region: str | None,
    source_settings: tuple[str, ...],
    missing_user_id: str | None,
    destination_api_key: str | None,
    from_file: Any,
    oauth_client_id: str | None,
    oauth_key_id: str | None,
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
    if oauth_client_id or oauth_key_id:
        oauth = document["oauth"] = document.get("oauth") or {}  # a stored document says null when it has none
        if not isinstance(oauth, dict):
            raise click.BadParameter("the document's oauth block is not an object", param_hint="--oauth-client-id")
        oauth.update({k: v for k, v in (("client_id", oauth_client_id), ("key_id", oauth_key_id)) if v})
    # The admin API's validation and write: the writeKey's shape and the RSA key are checked too.
    result = _run(lambda: _admin(prefix).put(tenant, document))
    exists = not result.body.get("created")
    click.echo(f"{'updated' if exists else 'created'} {name}")


@tenants.command("show")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@prefix_option
def show(tenant: str, prefix: str) -> None:
    """Print TENANT's settings with the writeKey and signing secrets masked."""
    view = _run(lambda: _admin(prefix).get(tenant)).body
    click.echo(json.dumps(view["config"], indent=2, sort_keys=True))


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
    _run(lambda: _admin(prefix).delete(tenant, force=force))
    click.echo(f"deleted {secret_name(prefix, tenant)}", file=sys.stdout)


@tenants.command("oauth-keygen")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default=str(DEFAULT_KEY_BITS), show_default=True)
@click.option("--replace", is_flag=True, help="Make a new key even if the tenant has one (clears key_id).")
@prefix_option
def oauth_keygen(tenant: str, bits: str, replace: bool, prefix: str) -> None:
    """Make TENANT's OAuth key pair: keep the private key in its secret, print the public PEM and the
    steps the customer takes in their Segment workspace."""
    body = _run(lambda: _admin(prefix).make_oauth_key(tenant, bits=int(bits), replace=replace)).body
    state = "new" if body["created"] else "existing (use --replace for a new one)"
    click.echo(f"{state} {body['keyBits']}-bit RSA key for {tenant}; the public key to upload in Segment:\n")
    click.echo(body["publicKey"])
    click.echo("What the customer does in their Segment workspace:")
    for number, step in enumerate(body["steps"], 1):
        click.echo(f"  {number}. {step}")


@tenants.command("check")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@prefix_option
def check(tenant: str, prefix: str) -> None:
    """Check TENANT's connection: an OAuth token round trip, or what can be checked of a writeKey."""
    body = _run(lambda: _admin(prefix).check(tenant)).body
    click.echo(json.dumps(body, indent=2))
    if not body.get("ok"):
        raise SystemExit(1)


@tenants.group("key")
def key() -> None:
    """Bridge keys: what Segment's libraries send as their writeKey to the bridge's /v1/batch, /v1/track...

    A tenant holds at most two, so a partner rotates without downtime: `key add`, deploy the new key,
    `key revoke` the old one.
    """


@key.command("add")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@prefix_option
def key_add(tenant: str, prefix: str) -> None:
    """Make a bridge key for TENANT and print it (once: only its hash is stored)."""
    body = _run(lambda: _admin(prefix).add_bridge_key(tenant)).body
    click.echo(body["key"])
    click.echo(
        f"key {body['id']} for {tenant}: use it as the library's writeKey, with host set to the bridge "
        f"(it is not shown again; {len(body['keys'])} of 2 keys in use)",
        err=True,
    )


@key.command("revoke")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@click.argument("key_id")
@prefix_option
def key_revoke(tenant: str, key_id: str, prefix: str) -> None:
    """Revoke TENANT's bridge key KEY_ID (as `key list` shows it)."""
    body = _run(lambda: _admin(prefix).revoke_bridge_key(tenant, key_id)).body
    click.echo(f"revoked {body['revoked']} for {tenant}; {len(body['keys'])} key(s) left")


@key.command("list")
@click.argument("tenant", callback=lambda _c, _p, v: _check_tenant(v))
@prefix_option
def key_list(tenant: str, prefix: str) -> None:
    """TENANT's bridge keys: id and creation time (the keys themselves are never stored)."""
    view = _run(lambda: _admin(prefix).get(tenant)).body
    for entry in view["config"]["bridge_keys"]:
        click.echo(f"{entry['id']}  {entry['created_at']}")
