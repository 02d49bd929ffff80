"""Connecting a customer: the tenant document written, shown, deleted, given an OAuth key, checked.

One implementation for both doors: the admin API (`functions/admin`, IAM-authorized, what the
partner's settings page calls) and the `segment-bridge tenants` CLI. Every answer is an
`AdminResult` (status and JSON body); a request refused as a whole (unknown tenant, Secrets Manager
down) is a `BridgeError`. Documents are validated with the `TenantConfig` model the Lambdas read,
plus what only a writer can check (the writeKey's shape, the RSA key itself); error texts name the
field and never quote a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..aws import error_code
from ..errors import Conflict, MalformedRequest, NotFound, ServiceUnavailable
from ..forward import OAuthCredentials, TokenCache
from ..limits import SECRETS_MANAGER_MAX_SECRET_BYTES
from ..observability import logger
from ..tenants import MAX_BRIDGE_KEYS, TENANT_ID_RULE, TenantConfig, is_valid_tenant_id, new_bridge_key, secret_name
from .keys import DEFAULT_KEY_BITS, generate_key_pair, inspect_private_key
from .ports import SecretState, SecretStore, TokenProbe

#: What a writeKey may look like. Segment's are 32 letters and digits (its maintainers, segment-facts.md
#: 1.3); the edge answers 200 to any well-formed key and 400 only to empty or very short ones, so this is
#: the one check possible before the customer's Source Debugger. Kept a little wider than today's form
#: (16-128 of letters, digits, `-`, `_`) so a future key format is not locked out.
WRITE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
#: The shape of every writeKey Segment issues today: shown as a warning by the check when it differs.
SEGMENT_WRITE_KEY_SHAPE = re.compile(r"^[A-Za-z0-9]{32}$")
#: Secrets Manager's recovery window: 7 days by default (the CLI's too), 7-30 allowed.
DEFAULT_RECOVERY_DAYS = 7
RECOVERY_DAYS_RANGE = (7, 30)
#: What `TenantConfig.masked()` and pydantic print for a secret: refused as a value, so a GET pasted back
#: into a PUT cannot overwrite a real secret with its mask.
MASKS = frozenset({"****", "**********"})
#: The token round trip of a check must answer within this (the admin function's timeout is longer).
CHECK_TIMEOUT_SECONDS = 8.0

#: What the customer does in their Segment workspace with the public key (segment-facts.md 1.3.1).
OAUTH_STEPS = (
    "In Segment, open Settings > Workspace settings > Access Management > OAuth application and click "
    "Create OAuth app (Workspace Owner; Business tier).",
    "Paste the public key below (PEM), give it a name, choose a token expiration period (1 to 30 days) "
    "and the scope tracking_api:write, then click Create.",
    "Copy the app's Application ID and the Key ID Segment shows for the uploaded key.",
    "Open Connections > Sources, select the source whose writeKey this tenant uses, go to Settings > "
    "OAuth app, click Connect OAuth app and pick the new app.",
    "Paste the Application ID and Key ID back into the partner's settings (client_id and key_id; CLI: "
    "tenants put TENANT --oauth-client-id ... --oauth-key-id ...).",
    "Run the connection check (POST /v1/tenants/{tenant}/check, or tenants check TENANT); once it "
    "passes, the source's Enable OAuth toggle can be switched on.",
)


@dataclass(frozen=True)
class AdminResult:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def check_tenant_id(tenant: str) -> None:
    if not is_valid_tenant_id(tenant):
        raise MalformedRequest(TENANT_ID_RULE)


def invalid(message: str, errors: list[dict[str, str]]) -> AdminResult:
    """422: the document is JSON but not a valid tenant, with each wrong field."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return AdminResult(422, {"message": f"{message}: {detail}", "errors": errors})


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(map(str, e["loc"])) or "(document)", "message": e["msg"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]


def _masked_values(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, str) and value in MASKS:
        yield path or "(document)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _masked_values(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _masked_values(item, f"{path}.{index}")


class TenantAdmin:
    def __init__(
        self,
        store: SecretStore,
        *,
        prefix: str = "segment-bridge",
        public_api_url: str = "",
        token_probe: Callable[[], TokenProbe] | None = None,
        oauth_servers: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.public_api_url = public_api_url.rstrip("/")
        #: A fresh token client per check: the round trip is real, never answered from a cache.
        self.token_probe = token_probe or (lambda: TokenCache(oauth_servers))

    # -- PUT ------------------------------------------------------------------------------
    def put(self, tenant: str, document: Any) -> AdminResult:
        """Create or replace TENANT's document. An `oauth` block without `private_key` keeps the stored
        key (made by `oauth-key`: the caller never sees it). 201 created, 200 replaced, 422 invalid."""
        check_tenant_id(tenant)
        if not isinstance(document, dict):
            raise MalformedRequest("the body must be a JSON object: the tenant document")
        masked = list(_masked_values(document))
        if masked:
            message = "a masked value (as GET shows it) is not a secret; send the real value"
            return invalid("invalid tenant document", [{"field": f, "message": message} for f in masked])
        name = secret_name(self.prefix, tenant)
        state = self._describe(name)
        document = dict(document)
        oauth = document.get("oauth")
        if isinstance(oauth, dict) and "private_key" not in oauth:
            stored = self._stored_config(name, state)
            if stored is None or stored.oauth is None:
                message = (
                    "no OAuth key is stored for this tenant; make one first (POST /v1/tenants/{tenant}/oauth-key, "
                    "or `segment-bridge tenants oauth-keygen`)"
                )
                return invalid("invalid tenant document", [{"field": "oauth.private_key", "message": message}])
            document["oauth"] = {**oauth, "private_key": stored.oauth.private_key.get_secret_value()}
        if "bridge_keys" not in document:
            # Keys are made and revoked by their own calls (the key is shown once): a document that does
            # not mention them keeps the stored ones, so a settings page's PUT never cuts a partner off.
            stored = self._stored_config(name, state)
            if stored is not None and stored.bridge_keys:
                document["bridge_keys"] = [key.model_dump() for key in stored.bridge_keys]
        checked = self._validate(document)
        if isinstance(checked, AdminResult):
            return checked
        if len(checked.to_secret_json().encode("utf-8")) > SECRETS_MANAGER_MAX_SECRET_BYTES:
            message = f"the document is over Secrets Manager's {SECRETS_MANAGER_MAX_SECRET_BYTES} bytes per secret"
            return invalid("invalid tenant document", [{"field": "(document)", "message": message}])
        created = self._write(name, state, checked.to_secret_json(), tenant)
        logger.info("tenant saved", extra={"tenant": tenant, "new_tenant": created, "auth": _auth_mode(checked)})
        return AdminResult(201 if created else 200, {**self._view(tenant, checked), "created": created})

    def save(self, tenant: str, config: TenantConfig) -> bool:
        """Write an already validated document (the CLI builds it from options). True if created."""
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        return self._write(name, self._describe(name), config.to_secret_json(), tenant)

    def _validate(self, document: dict[str, Any]) -> TenantConfig | AdminResult:
        try:
            config = TenantConfig.model_validate(document)
        except ValidationError as exc:
            return invalid("invalid tenant document", validation_errors(exc))
        errors = []
        if not WRITE_KEY_PATTERN.fullmatch(config.write_key.get_secret_value()):
            errors.append(
                {
                    "field": "write_key",
                    "message": "not a Segment writeKey: 16-128 letters, digits, '-' or '_' (Segment's are 32 "
                    "letters and digits; copy it from the source's Settings > API Keys)",
                }
            )
        if config.oauth is not None:
            try:
                inspect_private_key(config.oauth.private_key.get_secret_value())
            except ValueError as exc:
                errors.append({"field": "oauth.private_key", "message": str(exc)})
        return invalid("invalid tenant document", errors) if errors else config

    def _write(self, name: str, state: SecretState, value: str, tenant: str) -> bool:
        try:
            if not state.exists:
                self.store.create(name, value, f"segment-bridge tenant {tenant}")
                return True
            if state.deletion_date is not None:
                self.store.restore(name)  # a tenant deleted within its recovery window comes back
            self.store.update(name, value)
            return False
        except Exception as exc:
            raise self._unavailable(exc) from None

    # -- GET ------------------------------------------------------------------------------
    def get(self, tenant: str) -> AdminResult:
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        config = self._stored_config(name, self._describe(name), require=True)
        assert config is not None
        return AdminResult(200, self._view(tenant, config))

    def _view(self, tenant: str, config: TenantConfig) -> dict[str, Any]:
        view: dict[str, Any] = {"tenant": tenant, "auth": _auth_mode(config), "config": config.masked()}
        view["webhooks"] = {source: self._url(f"/v1/webhooks/{source}/{tenant}") for source in sorted(config.sources)}
        if config.destination is not None:
            view["destinationUrl"] = self._url(f"/v1/segment/{tenant}")
        if config.bridge_keys:
            view["trackingApiHost"] = self.public_api_url
        if config.oauth is not None and not config.oauth.ready:
            missing = [n for n in ("client_id", "key_id") if not getattr(config.oauth, n)]
            view["oauthPending"] = f"sent with Basic auth until {' and '.join(missing)} are set (docs/oauth.md)"
        return view

    def _url(self, path: str) -> str:
        return f"{self.public_api_url}{path}"

    # -- DELETE ---------------------------------------------------------------------------
    def delete(self, tenant: str, *, force: bool = False, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> AdminResult:
        """Delete TENANT's secret: recoverable for `recovery_days` (7-30; a PUT restores it), or at once."""
        check_tenant_id(tenant)
        low, high = RECOVERY_DAYS_RANGE
        if not force and not low <= recovery_days <= high:
            raise MalformedRequest(f"recoveryDays must be {low} to {high}")
        name = secret_name(self.prefix, tenant)
        state = self._describe(name)
        if not state.exists:
            raise NotFound(f"no tenant {tenant!r}")
        if state.deletion_date is not None and not force:
            return AdminResult(200, _deleted(tenant, state.deletion_date, recoverable=True))
        try:
            when = self.store.delete(name, None if force else recovery_days)
        except Exception as exc:
            raise self._unavailable(exc) from None
        logger.info("tenant deleted", extra={"tenant": tenant, "force": force})
        return AdminResult(200, _deleted(tenant, when, recoverable=not force))

    # -- POST oauth-key -------------------------------------------------------------------
    def make_oauth_key(self, tenant: str, *, bits: int = DEFAULT_KEY_BITS, replace: bool = False) -> AdminResult:
        """A key pair for TENANT's OAuth app: the private key into its secret, the public PEM and the
        customer's steps out. A tenant that has a key gets its public key again (200) unless `replace`;
        `replace` makes a new key and clears `key_id` (the new public key gets a new id in Segment), so the
        tenant is sent with Basic auth until it is set again."""
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        state = self._describe(name)
        config = self._stored_config(name, state, require=True)
        assert config is not None
        current = config.oauth
        if current is not None and not replace:
            pair = inspect_private_key(current.private_key.get_secret_value())
            return AdminResult(200, self._key_answer(tenant, pair.public_pem, pair.bits, created=False))
        try:
            pair = generate_key_pair(bits)
        except ValueError as exc:
            raise MalformedRequest(str(exc)) from None
        oauth: dict[str, Any] = {"private_key": pair.private_pem}
        if current is not None:
            oauth.update(client_id=current.client_id, scope=current.scope)  # key_id named the old key
        document = json.loads(config.to_secret_json())
        document["oauth"] = oauth
        new_config = TenantConfig.model_validate(document)
        self._write(name, state, new_config.to_secret_json(), tenant)
        logger.info(
            "tenant OAuth key made", extra={"tenant": tenant, "bits": pair.bits, "replaced": current is not None}
        )
        return AdminResult(201, self._key_answer(tenant, pair.public_pem, pair.bits, created=True))

    @staticmethod
    def _key_answer(tenant: str, public_pem: str, bits: int, *, created: bool) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "created": created,
            "publicKey": public_pem,
            "keyBits": bits,
            "steps": [step.replace("{tenant}", tenant) for step in OAUTH_STEPS],
        }

    # -- bridge keys (Segment's libraries -> the bridge's Tracking API) ----------------------
    def add_bridge_key(self, tenant: str, *, now: Callable[[], datetime] | None = None) -> AdminResult:
        """A new bridge key for TENANT, returned once (only its hash is kept). 409 when the tenant already
        holds `MAX_BRIDGE_KEYS`: revoke the old one first (rotation: add, deploy the new key, revoke)."""
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        state = self._describe(name)
        config = self._stored_config(name, state, require=True)
        assert config is not None
        if len(config.bridge_keys) >= MAX_BRIDGE_KEYS:
            ids = ", ".join(key.id for key in config.bridge_keys)
            raise Conflict(f"tenant {tenant!r} already holds {MAX_BRIDGE_KEYS} bridge keys ({ids}); revoke one first")
        created_at = (now or _utc_now)().strftime("%Y-%m-%dT%H:%M:%SZ")
        key, stored = new_bridge_key(tenant, created_at)
        updated = config.model_copy(update={"bridge_keys": (*config.bridge_keys, stored)})
        self._write(name, state, updated.to_secret_json(), tenant)
        logger.info("tenant bridge key added", extra={"tenant": tenant, "key_id": stored.id})
        return AdminResult(201, {"tenant": tenant, "id": stored.id, "key": key, **self._key_list(updated)})

    def revoke_bridge_key(self, tenant: str, key_id: str) -> AdminResult:
        """Remove one of TENANT's bridge keys by id: calls with it are refused once instances reread the
        tenant (SECRETS_MAX_AGE_SECONDS, 300 s by default)."""
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        state = self._describe(name)
        config = self._stored_config(name, state, require=True)
        assert config is not None
        kept = tuple(key for key in config.bridge_keys if key.id != key_id)
        if len(kept) == len(config.bridge_keys):
            raise NotFound(f"tenant {tenant!r} has no bridge key {key_id[:16]!r}")
        updated = config.model_copy(update={"bridge_keys": kept})
        self._write(name, state, updated.to_secret_json(), tenant)
        logger.info("tenant bridge key revoked", extra={"tenant": tenant, "key_id": key_id})
        return AdminResult(200, {"tenant": tenant, "revoked": key_id, **self._key_list(updated)})

    @staticmethod
    def _key_list(config: TenantConfig) -> dict[str, Any]:
        return {"keys": [{"id": key.id, "created_at": key.created_at} for key in config.bridge_keys]}

    # -- POST check -----------------------------------------------------------------------
    def check(self, tenant: str) -> AdminResult:
        """What can be proven about TENANT's connection without sending customer data (docs/oauth.md).

        `ok` is the proof: the token round trip for OAuth. A writeKey of another shape than Segment's
        is reported under `checks` but fails nothing (only Segment knows which keys exist)."""
        check_tenant_id(tenant)
        name = secret_name(self.prefix, tenant)
        config = self._stored_config(name, self._describe(name), require=True)
        assert config is not None
        key = config.write_key.get_secret_value()
        checks = [
            {
                "check": "writeKey shape",
                "ok": bool(SEGMENT_WRITE_KEY_SHAPE.fullmatch(key)),
                "detail": f"{len(key)} characters"
                + ("" if SEGMENT_WRITE_KEY_SHAPE.fullmatch(key) else "; Segment's writeKeys are 32 letters and digits"),
            },
            {"check": "region", "ok": True, "detail": f"{config.region}: the writeKey's workspace must be there too"},
        ]
        body: dict[str, Any] = {"tenant": tenant, "auth": _auth_mode(config), "checks": checks}
        if config.oauth is None or not config.oauth.ready:
            if config.oauth is not None:
                missing = " and ".join(n for n in ("client_id", "key_id") if not getattr(config.oauth, n))
                checks.append({"check": "OAuth app", "ok": False, "detail": f"pending: {missing} not set"})
            body.update(
                ok=True,  # nothing here can fail: the shape is reported, a pending app only noted
                verdict="unverifiable",
                message="Segment accepts any well-formed writeKey with 200 and drops events for unknown keys "
                "later, so no request can prove this one: send a test event and look for it in the customer's "
                "Source Debugger. The checks below are what can be checked.",
            )
            return AdminResult(200, body)
        oauth = config.oauth
        assert oauth.client_id is not None and oauth.key_id is not None
        credentials = OAuthCredentials(
            tenant, oauth.client_id, oauth.key_id, oauth.private_key.get_secret_value(), oauth.scope
        )
        result = self.token_probe().token(credentials, config.region, CHECK_TIMEOUT_SECONDS)
        if result.token is not None:
            verdict, ok = "connected", True
            message = (
                f"Segment's {config.region.upper()} token server issued a token for app {oauth.client_id} with key "
                f"{oauth.key_id}: the app id, key and region are right (no customer data was sent). The writeKey "
                "itself can only be confirmed in the Source Debugger."
            )
        elif result.status == 401:
            verdict, ok = "refused", False
            message = f"{result.error}: check the app id, the key id and the region in Segment"
        else:
            verdict, ok = "unreachable", False
            message = f"the token server could not be asked ({result.error}); try again later"
        checks.append({"check": "OAuth token round trip", "ok": ok, "detail": verdict})
        body.update(ok=ok, verdict=verdict, message=message)
        return AdminResult(200, body)

    # -- internals ------------------------------------------------------------------------
    def _describe(self, name: str) -> SecretState:
        try:
            return self.store.describe(name)
        except Exception as exc:
            raise self._unavailable(exc) from None

    def _stored_config(self, name: str, state: SecretState, *, require: bool = False) -> TenantConfig | None:
        tenant = name.rpartition("/")[2]
        if not state.exists or state.deletion_date is not None:
            if not require:
                return None
            if state.deletion_date is not None:
                raise NotFound(
                    f"tenant {tenant!r} is deleted (recoverable until {state.deletion_date.isoformat()}); "
                    "PUT it again to restore it"
                )
            raise NotFound(f"no tenant {tenant!r}")
        try:
            raw = self.store.read(name)
        except Exception as exc:
            raise self._unavailable(exc) from None
        try:
            return TenantConfig.model_validate_json(raw)
        except ValidationError as exc:
            fields = ", ".join(e["field"] for e in validation_errors(exc))
            raise Conflict(f"tenant {tenant!r} has an invalid stored document ({fields}); PUT a valid one") from None

    @staticmethod
    def _unavailable(exc: Exception) -> ServiceUnavailable:
        logger.warning("tenant store unavailable", extra={"error": error_code(exc)})
        return ServiceUnavailable("Secrets Manager is unavailable; retry later")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _auth_mode(config: TenantConfig) -> str:
    if config.oauth is None:
        return "basic"
    return "oauth" if config.oauth.ready else "oauth-pending"


def _deleted(tenant: str, when: datetime | None, *, recoverable: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"tenant": tenant, "deleted": True, "recoverable": recoverable}
    if when is not None and recoverable:
        body["deletionDate"] = when.isoformat()
    return body
