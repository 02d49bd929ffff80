"""RSA key pairs for a tenant's Segment OAuth app: made here, the private half kept in the tenant's
secret, the public half (PEM) handed to the customer to upload in their workspace."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..forward import load_private_key
from ..limits import OAUTH_MIN_RSA_BITS

#: The size `oauth-keygen` makes unless told (`--bits`, `{"bits": ...}`): what `openssl genrsa`, the
#: tool of Segment's own instructions, makes, and NIST SP 800-57's floor through 2030. It is made in
#: well under a second on a Lambda; 3072 or 4096 last longer at a few times the cost.
DEFAULT_KEY_BITS = 2048
#: The sizes made on request: 2048 up to 4096 (RSA key generation and signing time grow steeply with
#: the size; 4096 already takes about a second of a Lambda's CPU to generate).
KEY_SIZES = (2048, 3072, 4096)
#: RSA public exponent: the only one in general use (RFC 8017 recommends it).
PUBLIC_EXPONENT = 65537


@dataclass(frozen=True)
class KeyPair:
    private_pem: str = field(repr=False)
    public_pem: str
    bits: int


def generate_key_pair(bits: int = DEFAULT_KEY_BITS) -> KeyPair:
    """A new RSA key pair: PKCS#8 private PEM (unencrypted: Secrets Manager encrypts it at rest), SPKI public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if bits not in KEY_SIZES or bits < OAUTH_MIN_RSA_BITS:
        raise ValueError(f"key size must be one of {', '.join(map(str, KEY_SIZES))} bits")
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return KeyPair(private_pem, public_pem_of(key), bits)


def public_pem_of(key: object) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert isinstance(key, rsa.RSAPrivateKey)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def inspect_private_key(pem: str) -> KeyPair:
    """The key pair of a stored private key; ValueError (the key never quoted) if Segment could not use it."""
    key = load_private_key(pem)
    bits = int(key.key_size)
    if bits < OAUTH_MIN_RSA_BITS:
        raise ValueError(f"the OAuth private key has {bits} bits; at least {OAUTH_MIN_RSA_BITS} are needed")
    return KeyPair(pem, public_pem_of(key), bits)
