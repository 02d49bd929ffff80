"""Form-encoded webhooks signed over "public URL + sorted params" (Mandrill, Twilio).

Both tools sign the URL exactly as configured on their side. Behind a custom domain or a base
path mapping that is not what API Gateway reports, so the URL is a tenant setting; without it the
URL the request arrived on is used.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from ...errors import MalformedRequest, Unauthorized
from ...events import WebhookRequest
from ..signatures import check_url_params_signature, url_port_variants
from .base import SourceSettings


class UrlSignedSettings(SourceSettings):
    """Settings of a tool that signs its webhook URL: the URL exactly as configured on the tool's
    side (behind a custom domain or base path mapping); default: the URL the request arrived on."""

    url: str | None = None


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """All `application/x-www-form-urlencoded` params, URL-decoded, in order (repeats kept)."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest(f"body is not a valid form-encoded body: {exc}") from None


def signed_url(configured: str | None, request: WebhookRequest) -> str:
    """The URL the tool signed: the configured one, plus the request's query if it has none.

    A query the tool appended (e.g. `?user_id=...` on a Twilio StatusCallback) is re-encoded the
    standard way, which is how the tools write simple values.
    """
    url = configured or request.url
    if request.query and "?" not in url:
        url = f"{url}?{urlencode(dict(request.query))}"
    return url


def verify_url_signed(
    request: WebhookRequest, key: str, configured_url: str | None, header: str, *, port_variants: bool = False
) -> None:
    """Check `header` against base64 HMAC-SHA1 of the signed URL and every form param."""
    try:
        params = form_pairs(request.body)
    except MalformedRequest:
        raise Unauthorized() from None  # an unreadable body cannot carry a valid signature
    url = signed_url(configured_url, request)
    urls = url_port_variants(url) if port_variants else [url]
    check_url_params_signature(key, urls, params, request.header(header))
