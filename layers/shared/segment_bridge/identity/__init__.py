"""The identity loop: the bridge as a Segment destination learns email / phone / anonymousId -> userId,
so tool events carry the customer's own userId.

`keys` (pure: normalization, table keys, write ordering), `resolution` (the ingest side),
`destination` (Segment's calls), `store` (the DynamoDB adapter of `ports`).
"""

from .destination import DestinationRequest, DestinationResult, DestinationService
from .keys import IdentityMatch, Stamp, WriteOutcome, lookup_key, user_key
from .ports import IdentityLookup, IdentityWriter
from .resolution import Resolution, TableIdentityResolver
from .store import DynamoDBIdentityStore

__all__ = [
    "DestinationRequest",
    "DestinationResult",
    "DestinationService",
    "DynamoDBIdentityStore",
    "IdentityLookup",
    "IdentityMatch",
    "IdentityWriter",
    "Resolution",
    "Stamp",
    "TableIdentityResolver",
    "WriteOutcome",
    "lookup_key",
    "user_key",
]
