"""Admin: connecting a customer, shared by the admin API (functions/admin) and the `tenants` CLI.

`service.TenantAdmin` writes, shows, deletes, keys and checks tenant documents; `keys` makes and
reads the RSA keys of Segment OAuth apps; `store` is the Secrets Manager adapter; `ports` declares
what the service needs. It sits above `forward` (the connection check makes a real token round trip
with `forward.TokenCache`) and is imported by no other pipeline.
"""

from .keys import DEFAULT_KEY_BITS, KeyPair, generate_key_pair, inspect_private_key
from .ports import SecretState, SecretStore, TokenProbe
from .service import (
    DEFAULT_RECOVERY_DAYS,
    OAUTH_STEPS,
    WRITE_KEY_PATTERN,
    AdminResult,
    TenantAdmin,
    check_tenant_id,
    invalid,
    validation_errors,
)
from .store import SecretsManagerStore

__all__ = [
    "DEFAULT_KEY_BITS",
    "DEFAULT_RECOVERY_DAYS",
    "OAUTH_STEPS",
    "WRITE_KEY_PATTERN",
    "AdminResult",
    "KeyPair",
    "SecretState",
    "SecretStore",
    "SecretsManagerStore",
    "TenantAdmin",
    "TokenProbe",
    "check_tenant_id",
    "generate_key_pair",
    "inspect_private_key",
    "invalid",
    "validation_errors",
]
