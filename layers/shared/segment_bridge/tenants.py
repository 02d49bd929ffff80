"""Tenants: who the customer is, where their Segment workspace lives, and how their tools sign.

One Secrets Manager secret per tenant, `{prefix}/tenants/{tenant}`, holding a JSON document that
`TenantConfig` validates. The writeKey and every signing secret are `SecretStr`, so a log line,
repr or exception that touches the model prints `**********`, never the value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .errors import TenantConfigError

#: Tenant ids become part of a secret name and of metric dimensions: a tight charset, no dots or
#: slashes (so no path games in `{prefix}/tenants/{tenant}`), bounded length.
TENANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

#: What a caller is told when a tenant id fails the pattern (the same words on every route and the CLI).
TENANT_ID_RULE = "tenant id must be 1-64 characters: letters, digits, '-' or '_'"

Region = Literal["us", "eu"]


def is_valid_tenant_id(tenant: str) -> bool:
    return bool(TENANT_ID_PATTERN.fullmatch(tenant))


#: What a tenant wants done with a family of conformance findings (checks: `segment_bridge.conformance`).
Action = Literal["fix", "warn", "reject"]


class ConformanceRules(BaseModel):
    """One action per family of checks (see `segment_bridge.conformance`)."""

    model_config = ConfigDict(extra="forbid")

    #: Near-miss Spec event names, other forms of documented keys, wrong types.
    spec: Action = "fix"
    #: Naming conventions: Proper Case events, snake_case properties, documented trait forms.
    style: Action = "warn"
    #: Partner rules the bridge can check before normalizing (a writeKey in the body).
    partner: Action = "fix"

    def action_for(self, family: str) -> Action:
        return getattr(self, family) if family in ConformanceRules.model_fields else "warn"


#: An allowlisted name: as sent, and no longer than the checks look at (longer names are the Spec model's).
AllowedName = Annotated[str, Field(min_length=1, max_length=200)]


class ConformanceAllowlist(BaseModel):
    """Names a partner sends on purpose although the checks read them as a Spec near-miss.

    Matched exactly as sent (Segment keeps "Item Added" and "item_added" apart too). An allowed
    event name is a custom event: it is never renamed, its properties are checked as a custom
    event's, and it still gets the style checks. An allowed property key is never renamed to the
    documented key it looks like ("transaction_id" stays). See docs/conformance.md.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: tuple[AllowedName, ...] = ()
    properties: tuple[AllowedName, ...] = ()

    @cached_property
    def event_names(self) -> frozenset[str]:
        """`events` for lookups (the checks ask once per track message)."""
        return frozenset(self.events)

    @cached_property
    def property_keys(self) -> frozenset[str]:
        return frozenset(self.properties)

    def __bool__(self) -> bool:
        return bool(self.events or self.properties)

    def union(self, other: ConformanceAllowlist | None) -> ConformanceAllowlist:
        if not other:
            return self
        return ConformanceAllowlist(
            events=tuple(dict.fromkeys(self.events + other.events)),
            properties=tuple(dict.fromkeys(self.properties + other.properties)),
        )


#: The allowlist of a tenant that has none (nearly all): shared, so checks test it at no cost.
NO_ALLOWLIST = ConformanceAllowlist()


class RuleOverrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: Action | None = None
    style: Action | None = None
    partner: Action | None = None
    #: Added to the tenant-wide allowlist for this source.
    allow: ConformanceAllowlist | None = None


class ConformancePolicy(ConformanceRules):
    """What a tenant wants done with conformance findings, per family of checks and per source.

    Stored in the tenant secret under `conformance` (see docs/conformance.md):

        {"spec": "fix", "style": "warn", "partner": "fix",
         "allow": {"events": ["Item Added"]},
         "sources": {"stripe": {"style": "fix"}, "spec": {"allow": {"properties": ["transaction_id"]}}}}

    - `fix`: apply the finding's safe repair and record the original in `context.conformance`; a
      finding with no safe repair is refused if it is an error and forwarded if it is a warning, so
      under `fix` nothing that breaks the Spec reaches Segment.
    - `warn`: forward the event unchanged; the finding is reported, logged and counted.
    - `reject`: refuse the event with the finding as the reason.
    """

    #: Per-source overrides of the tenant-wide rules, keyed by source name.
    sources: dict[str, RuleOverrides] = Field(default_factory=dict)
    #: Names that are custom on purpose, for every source (each source's `allow` adds to it).
    allow: ConformanceAllowlist = NO_ALLOWLIST

    def rules_for(self, source: str) -> ConformanceRules:
        rules = {name: getattr(self, name) for name in ConformanceRules.model_fields}
        override = self.sources.get(source)
        if override is not None:
            rules.update(override.model_dump(exclude_none=True, exclude={"allow"}))
        return ConformanceRules.model_construct(**rules)

    @cached_property
    def allowlists(self) -> dict[str, ConformanceAllowlist]:
        """source -> its allowlist, each merged once: the reviewer asks for every event."""
        return {}

    def allowlist_for(self, source: str) -> ConformanceAllowlist:
        found = self.allowlists.get(source)
        if found is None:
            override = self.sources.get(source)
            found = self.allowlists[source] = self.allow.union(override.allow if override else None)
        return found


class IdentityPolicy(BaseModel):
    """What to do with an event that has no customer userId (Segment's partner rule asks for one)."""

    model_config = ConfigDict(extra="forbid")

    #: `reject`: refuse the event with a reason. `anonymous`: forward it with a stable anonymousId
    #: (derived from the email/phone, or kept from the sender).
    missing_user_id: Literal["reject", "anonymous"] = "reject"


class DestinationSettings(BaseModel):
    """The tenant's side of the identity loop: Segment calls `POST /v1/segment/{tenant}` with this key.

    It is the key the customer types into the destination's settings in Segment, which Segment sends
    as `Authorization: Basic base64(apiKey:)`. A tenant without it has the loop switched off: the
    endpoint answers 401 and ingest does no identity lookups for it.
    """

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=16)

    @field_validator("api_key")
    @classmethod
    def _fits_basic_auth(cls, value: SecretStr) -> SecretStr:
        if ":" in value.get_secret_value():
            raise ValueError("must not contain ':' (HTTP Basic credentials end the key at the first colon)")
        return value


#: Segment's Tracking API scope: the only one a source's OAuth app needs (segment-facts.md 1.3.1).
OAUTH_DEFAULT_SCOPE = "tracking_api:write"
#: What an OAuth app id and a key id may hold. Segment documents neither format; both go into a JWT
#: (claims and header), so: printable ASCII without spaces or quotes, bounded.
OAUTH_ID_PATTERN = r"^[A-Za-z0-9._:~+/=-]{1,128}$"
#: A PEM private key, PKCS#8 (`BEGIN PRIVATE KEY`, what `oauth-keygen` writes) or PKCS#1 (`BEGIN RSA
#: PRIVATE KEY`, what `openssl genrsa` wrote for years). Checked textually here, so ingest, which also
#: reads tenant secrets, never imports the crypto library; the key itself (RSA, >= 2048 bits) is
#: checked by the admin API and CLI before it is stored, and by the forwarder when it signs.
PRIVATE_KEY_PEM_PATTERN = r"^\s*-----BEGIN (RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\s]+-----END (RSA )?PRIVATE KEY-----\s*$"


class OAuthSettings(BaseModel):
    """The tenant's Segment OAuth app: with it the forwarder sends `Bearer <token>`, not Basic auth.

    `private_key` is kept here (made by `tenants oauth-keygen` or `POST /v1/tenants/{tenant}/oauth-key`);
    the customer uploads the public half to their OAuth app in Segment and pastes back the app id
    (`client_id`) and the id Segment gave the key (`key_id`). Until both are set the block is
    *pending* and the tenant is still sent with Basic auth, so a key can be made before the customer
    has finished in their workspace without stopping delivery. See docs/oauth.md.
    """

    model_config = ConfigDict(extra="forbid")

    client_id: str | None = Field(default=None, pattern=OAUTH_ID_PATTERN)
    key_id: str | None = Field(default=None, pattern=OAUTH_ID_PATTERN)
    private_key: SecretStr
    scope: str = Field(default=OAUTH_DEFAULT_SCOPE, pattern=r"^[A-Za-z0-9_:.-]+( [A-Za-z0-9_:.-]+)*$", max_length=256)

    @field_validator("private_key")
    @classmethod
    def _is_a_pem_private_key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(PRIVATE_KEY_PEM_PATTERN, value.get_secret_value()):
            # The message never quotes the value (pydantic adds no input: see parse_tenant_secret).
            raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY----- ...)")
        return value

    @property
    def ready(self) -> bool:
        """Both ids are set: the tenant is sent with OAuth."""
        return bool(self.client_id and self.key_id)


# -- bridge keys: how Segment's own libraries authenticate to the bridge ------------------------------
#: A bridge key is `{tenant}.sbk_{secret}`: the tenant is read from the key itself (tenant ids hold no
#: dots), so the Tracking API routes need no lookup table from key to tenant. `sbk_` marks it for
#: secret scanners and for a reader who finds one in a config file.
BRIDGE_KEY_MARK = "sbk_"
#: Random bytes in a bridge key's secret (256 bits, as `secrets.token_urlsafe` recommends for keys).
BRIDGE_KEY_SECRET_BYTES = 32
#: Keys a tenant may hold at once: two, so a partner rotates without downtime (add, deploy, revoke).
MAX_BRIDGE_KEYS = 2
#: Longest credential read as a bridge key (`{64-char tenant}.sbk_{43 chars}` is 112); longer is refused
#: before it is hashed.
MAX_BRIDGE_KEY_CHARS = 160
_BRIDGE_KEY_SECRET = re.compile(r"^sbk_[A-Za-z0-9_-]{16,96}$")


class BridgeKey(BaseModel):
    """One bridge key as stored: its SHA-256, never the key. The key is shown once, when it is made.

    Hashing costs nothing at 256 bits of entropy (no key stretching is needed against guessing), and
    means a reader of the tenant secret, a log of it or a `show` cannot recover a usable key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Short public name used to revoke it: the first 8 hex digits of the hash.
    id: str = Field(pattern=r"^[0-9a-f]{8}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: str = Field(max_length=40)


def bridge_key_digest(secret: str) -> str:
    """The stored form of a bridge key's secret part (`sbk_...`)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_bridge_key(tenant: str, created_at: str) -> tuple[str, BridgeKey]:
    """A fresh key for `tenant`: the text to hand over once, and what the tenant document keeps."""
    if not is_valid_tenant_id(tenant):
        raise ValueError("invalid tenant id")
    secret = BRIDGE_KEY_MARK + secrets.token_urlsafe(BRIDGE_KEY_SECRET_BYTES)
    digest = bridge_key_digest(secret)
    return f"{tenant}.{secret}", BridgeKey(id=digest[:8], sha256=digest, created_at=created_at)


def split_bridge_key(credential: str) -> tuple[str, str] | None:
    """`(tenant, secret)` of a credential shaped like a bridge key; None for anything else.

    Only the shape is checked: whether the secret is right is `TenantConfig.bridge_key_matches`'s job.
    """
    if len(credential) > MAX_BRIDGE_KEY_CHARS:
        return None
    tenant, dot, secret = credential.partition(".")
    if not dot or not is_valid_tenant_id(tenant) or not _BRIDGE_KEY_SECRET.fullmatch(secret):
        return None
    return tenant, secret


_DECOY_KEY_DIGESTS = tuple(bridge_key_digest(f"decoy-{i}-" + secrets.token_urlsafe(32)) for i in range(MAX_BRIDGE_KEYS))


def bridge_key_matches(config: TenantConfig | None, secret: str) -> bool:
    """True if `secret` is one of the tenant's bridge keys, in the same work for every caller.

    One hash, then exactly `MAX_BRIDGE_KEYS` constant-time comparisons whatever the tenant holds (a
    tenant with fewer keys, or none, or no tenant at all, is compared against decoy digests), so
    neither the time nor the answer tells an unknown tenant from a wrong key.
    """
    given = bridge_key_digest(secret).encode("ascii")
    stored = [key.sha256 for key in config.bridge_keys] if config is not None else []
    candidates = (stored + list(_DECOY_KEY_DIGESTS))[:MAX_BRIDGE_KEYS]
    found = False
    for index, digest in enumerate(candidates):
        # `&` and `|` on bools, not `and`/`or`: no comparison is skipped once one has matched.
        found |= hmac.compare_digest(digest.encode("ascii"), given) & (index < len(stored))
    return found


class TenantConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    write_key: SecretStr = Field(min_length=1)
    region: Region = "us"
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy)
    #: Spec conformance: fix, warn or reject, per family of checks, with per-source overrides.
    conformance: ConformancePolicy = Field(default_factory=ConformancePolicy)
    destination: DestinationSettings | None = None
    #: Per-source settings, validated by each source's own settings model when that source is used.
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Segment OAuth 2.0 for this tenant's source (optional; without it, Basic auth with the writeKey).
    oauth: OAuthSettings | None = None
    #: Keys Segment's own libraries send to the bridge's Tracking API routes (`/v1/batch`...), as
    #: their writeKey; at most two, for rotation. None: those routes refuse this tenant.
    bridge_keys: tuple[BridgeKey, ...] = Field(default=(), max_length=MAX_BRIDGE_KEYS)

    @property
    def uses_oauth(self) -> bool:
        """Sent with an OAuth access token (the block is complete), rather than Basic auth."""
        return self.oauth is not None and self.oauth.ready

    def to_secret_json(self) -> str:
        data = self.model_dump(mode="python")
        data["write_key"] = self.write_key.get_secret_value()
        return json.dumps(_reveal(data), sort_keys=True)

    def __repr_args__(self) -> Any:
        # repr() and str() (an exception text, a log extra) mask the per-source secrets as masked()
        # does: `sources` is plain dicts, so pydantic would otherwise print signing secrets in clear.
        for name, value in super().__repr_args__():
            yield name, ({source: _mask_secrets(v) for source, v in value.items()} if name == "sources" else value)

    def masked(self) -> dict[str, Any]:
        """A view that is safe to print: the writeKey shows its last 4 chars, other secrets nothing."""
        key = self.write_key.get_secret_value()
        data = self.model_dump(mode="json")
        data["write_key"] = ("*" * max(len(key) - 4, 4)) + key[-4:] if len(key) > 8 else "****"
        data["sources"] = {name: _mask_secrets(values) for name, values in self.sources.items()}
        if self.oauth is not None:
            data["oauth"]["private_key"] = "****"
        data["bridge_keys"] = [{"id": key.id, "created_at": key.created_at} for key in self.bridge_keys]
        return data


_SECRET_FIELD = re.compile(r"(secret|key|token|password)", re.IGNORECASE)


def _mask_secrets(values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("****" if _SECRET_FIELD.search(k) else v) for k, v in values.items()}


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def parse_tenant_secret(tenant: str, raw: Any) -> TenantConfig:
    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
        return TenantConfig.model_validate(data)
    except (ValueError, ValidationError) as exc:
        # The pydantic error lists field names and types only (input values are hidden below), so it is
        # safe to log; it tells the operator exactly which field of which tenant is wrong.
        detail = exc.errors(include_input=False, include_url=False) if isinstance(exc, ValidationError) else "not JSON"
        raise TenantConfigError(f"tenant {tenant!r} secret is invalid: {detail}") from None


def secret_name(prefix: str, tenant: str) -> str:
    # Callers validate first (a bad id is their 400/401); this is the last line, so no caller can
    # ever build a name outside `{prefix}/tenants/` from a hostile id, even one that forgot to.
    if not is_valid_tenant_id(tenant):
        raise ValueError("invalid tenant id")
    return f"{prefix}/tenants/{tenant}"


class UnknownTenant(Exception):
    pass


class TenantDirectory(Protocol):
    """What the handlers need from tenant storage; tests can pass a dict-backed fake."""

    def get(self, tenant: str) -> TenantConfig: ...


class SecretsManagerTenants:
    """Tenant configs from Secrets Manager through Powertools parameters (cached per environment).

    A rotated writeKey or moved region is picked up when the cache entry expires (`max_age`,
    default 300 s, like Powertools' own default).

    Unknown tenants are cached too, for the same `max_age` (at most `MAX_UNKNOWN_CACHED` of them):
    otherwise a known tenant answers from the cache in microseconds while an unknown one costs a
    Secrets Manager round trip every time, and the difference tells a prober which tenants exist
    (and every probe would cost an API call). A tenant created after being probed is therefore
    seen up to `max_age` later by an instance that saw the probe.
    """

    MAX_UNKNOWN_CACHED = 4096

    def __init__(self, prefix: str, max_age: int = 300, client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._prefix = prefix
        self._max_age = max_age
        self._provider = SecretsProvider(boto3_client=client) if client is not None else SecretsProvider()
        #: tenant -> (the provider's cached value, its parsed config): compared by identity only.
        self._parsed: dict[str, tuple[object, TenantConfig]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()  # tenant -> monotonic time it may be asked again

    def get(self, tenant: str) -> TenantConfig:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if not is_valid_tenant_id(tenant):
            raise UnknownTenant(tenant)
        now = time.monotonic()
        if self._unknown.get(tenant, 0.0) > now:
            raise UnknownTenant(tenant)
        try:
            raw = self._provider.get(secret_name(self._prefix, tenant), max_age=self._max_age)
        except GetParameterError as exc:
            if "ResourceNotFoundException" in str(exc):
                self._remember_unknown(tenant, now)
                raise UnknownTenant(tenant) from None
            raise
        self._unknown.pop(tenant, None)
        cached = self._parsed.get(tenant)
        if cached and cached[0] is raw:  # same cached string object: skip re-validation
            return cached[1]
        config = parse_tenant_secret(tenant, raw)
        self._parsed[tenant] = (raw, config)
        return config

    def _remember_unknown(self, tenant: str, now: float) -> None:
        if self._max_age <= 0:
            return
        self._unknown[tenant] = now + self._max_age
        self._unknown.move_to_end(tenant)
        while len(self._unknown) > self.MAX_UNKNOWN_CACHED:
            self._unknown.popitem(last=False)


def find_tenant(directory: TenantDirectory, tenant: str) -> TenantConfig | None:
    """A request's tenant, or None if it does not exist; unusable or unreachable is a 503."""
    from .errors import ServiceUnavailable
    from .observability import logger

    try:
        return directory.get(tenant)
    except UnknownTenant:
        return None
    except TenantConfigError as exc:
        logger.error("tenant configuration invalid", extra={"tenant": tenant, "error": str(exc)})
        raise ServiceUnavailable("this tenant is misconfigured on our side; retry later") from None
    except Exception as exc:  # Secrets Manager unreachable, throttled...
        logger.warning("tenant lookup failed", extra={"tenant": tenant, "error": type(exc).__name__})
        raise ServiceUnavailable("tenant configuration is temporarily unavailable; retry later") from None


def load_tenant(directory: TenantDirectory, tenant: str, *, unauthorized_message: str | None = None) -> TenantConfig:
    """A request's tenant: unknown is a 401 (the caller's own error text), unusable or unreachable a 503.

    For a request that proves a credential, use `authenticate_tenant`: it also makes an unknown
    tenant cost what a bad credential costs.
    """
    from .errors import Unauthorized

    config = find_tenant(directory, tenant)
    if config is None:
        raise Unauthorized(unauthorized_message) if unauthorized_message else Unauthorized()
    return config


# -- authenticating a request's tenant at equal cost ------------------------------------------------
_DECOY_SECRET = secrets.token_urlsafe(32)


def decoy_secret() -> str:
    """A random secret of this process, known to nobody: what a credential is checked against when
    the tenant does not exist (or has no such credential), so the check does the same work."""
    return _DECOY_SECRET


@dataclass(frozen=True)
class RefusalFloor:
    """The least time a refused (401) request takes, counted from the start of its tenant lookup.

    A tenant in use is usually in this instance's cache (microseconds); an id never seen costs a
    Secrets Manager round trip, found or not (7.9 ms against 1.4 ms in the local stack), so without
    a floor the answer time of one probe tells whether an id is a tenant in use. Every 401 after a
    lookup waits until `seconds` have passed: both answers take the floor, unless the lookup itself
    took longer (a slow Secrets Manager answers late for a real tenant too). docs/security.md
    (round 2) weighs this against the alternatives; `UNAUTHORIZED_FLOOR_SECONDS` sets it.
    """

    seconds: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def hold(self, started: float) -> None:
        left = self.seconds - (self.clock() - started)
        if left > 0:
            self.sleep(left)


T = TypeVar("T")


def authenticate_tenant(
    directory: TenantDirectory,
    tenant: str,
    check: Callable[[TenantConfig | None], T],
    *,
    floor: RefusalFloor,
) -> T:
    """Look `tenant` up and run `check` on it, so an unknown tenant costs what a bad credential costs.

    The one mechanism every authenticator uses (ingest's signatures, the destination's API key, a
    new route's key). `check(config)` gets None for a tenant that does not exist and must then do
    the same work against a decoy (`decoy_secret()`, `Source.decoy_settings`) and raise
    `Unauthorized` with the same text it uses for a wrong credential; for a real tenant it checks
    the credential and returns what the caller needs. Any `Unauthorized` is held to `floor`.
    A misconfigured or unreachable directory is a 503 (`find_tenant`).

        def check(config: TenantConfig | None) -> TenantConfig:
            expected = config.bridge_key.get_secret_value() if config and config.bridge_key else decoy_secret()
            if not constant_time_equals(expected, given) or config is None or config.bridge_key is None:
                raise Unauthorized(SAME_TEXT_FOR_BOTH)
            return config

        tenant = authenticate_tenant(directory, tenant_id, check, floor=self.refusal_floor)
    """
    from .errors import Unauthorized

    started = floor.clock()
    try:
        config = find_tenant(directory, tenant)
        result = check(config)
        if config is None:  # a check must never admit a tenant that does not exist
            raise Unauthorized()
        return result
    except Unauthorized:
        floor.hold(started)
        raise


class StaticTenants:
    """In-memory directory for unit tests and the `normalize` dry run."""

    def __init__(self, tenants: dict[str, TenantConfig]) -> None:
        self._tenants = tenants

    def get(self, tenant: str) -> TenantConfig:
        try:
            return self._tenants[tenant]
        except KeyError:
            raise UnknownTenant(tenant) from None
