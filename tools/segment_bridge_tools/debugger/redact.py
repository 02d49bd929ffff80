"""What the debugger may show: every secret masked before anything is stored or served.

Three nets, each catching what the others cannot:

1. **By name.** Headers and body fields whose name says secret (`Authorization`, `*-Signature`,
   `token`, `signing_key`, ...: the same rule `segment-bridge dlq` masks by) are replaced whole.
   That covers every tool's signature, which is different on every request.
2. **By value, per request.** The values of the headers masked in (1) are also cut out of the body
   (a tool could repeat its signature there under another name).
3. **By value, known secrets.** Every secret-named value of every tenant document in the stack's
   Secrets Manager (writeKeys, signing secrets, destination keys, auth tokens) is cut out of all
   text, raw and in the forms it could travel in (base64, `key:` Basic credentials, URL-quoted).
   A writeKey keeps its last four characters, which is how Segment's own UI tells keys apart.

Values shorter than `MIN_SCRUB_LENGTH` are not searched for (net 3): cutting every "abc" out of
every body would make the page unreadable; such a secret is still masked where its name shows it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from ..cli_dlq import SECRET_NAME

MASK = "••••"
#: Shortest known secret searched for in free text (see the module docstring).
MIN_SCRUB_LENGTH = 6
#: Most bytes of a webhook body kept for display; larger bodies are cut (and say so).
MAX_SHOWN_BODY_BYTES = 64 * 1024
#: How long a list of known secrets is reused before Secrets Manager is read again.
KNOWN_SECRETS_MAX_AGE_SECONDS = 1.0
#: Headers that carry credentials without saying so in their name.
CREDENTIAL_HEADERS = {"cookie", "set-cookie", "proxy-authorization"}
#: Keys in a tenant document whose value is a writeKey (shown by its last four characters).
WRITE_KEY_NAMES = {"write_key", "writekey"}
#: Which fields of a tenant document hold secrets: broader than the rule for bodies (any "key",
#: as `TenantConfig.masked()` reads them: `webhook_key`, `signing_key`), since a tenant document
#: is all configuration. The models' `SecretStr` fields are collected too (`model_secrets`).
TENANT_SECRET_NAME = re.compile(r"(secret|key|token|password|passwd|credential|signature)", re.IGNORECASE)


def last_four(value: str | None) -> str | None:
    """A writeKey as the debugger shows it: its last four characters, nothing of its length."""
    if not value:
        return value
    return MASK + value[-4:] if len(value) >= 8 else MASK


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) or name.lower() in CREDENTIAL_HEADERS


def secret_forms(secret: str) -> list[str]:
    """The ways a secret can appear in text: raw, base64 (alone and as Basic `secret:`), URL-quoted, JSON-escaped."""
    raw = secret.encode()
    forms = {
        secret,
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw + b":").decode("ascii"),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    }
    return sorted((f for f in forms if len(f) >= MIN_SCRUB_LENGTH), key=len, reverse=True)


def secrets_in_document(document: Any, name: str = "") -> Iterable[tuple[str, str]]:
    """(key name, value) of every secret in a tenant document: by field name at any depth, and
    every `SecretStr` of the tenant model and of its sources' settings models."""
    yield from _by_name(document)
    yield from model_secrets(document)


def _by_name(document: Any) -> Iterable[tuple[str, str]]:
    if isinstance(document, dict):
        for key, value in document.items():
            if isinstance(value, str) and (TENANT_SECRET_NAME.search(str(key)) or SECRET_NAME.search(str(key))):
                yield str(key), value
            else:
                yield from _by_name(value)
    elif isinstance(document, list):
        for value in document:
            yield from _by_name(value)


def model_secrets(document: Any) -> Iterable[tuple[str, str]]:
    """The `SecretStr` values the package's own models find in a tenant document (invalid parts skipped)."""
    from pydantic import BaseModel, SecretStr, ValidationError

    from segment_bridge.ingest.sources import SOURCES
    from segment_bridge.tenants import TenantConfig

    if not isinstance(document, dict):
        return
    models: list[BaseModel] = []
    with contextlib.suppress(ValidationError):  # a broken document still has its secrets found by name
        models.append(TenantConfig.model_validate(document))
    for source_name, raw in (
        (document.get("sources") or {}).items() if isinstance(document.get("sources"), dict) else ()
    ):
        source = SOURCES.get(source_name)
        if source is not None:
            try:
                models.append(source.settings_model.model_validate(raw))
            except ValidationError:
                continue

    def walk(value: Any, name: str) -> Iterable[tuple[str, str]]:
        if isinstance(value, SecretStr):
            yield name, value.get_secret_value()
        elif isinstance(value, BaseModel):
            for field_name in type(value).model_fields:
                yield from walk(getattr(value, field_name), field_name)
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, str(key))

    for model in models:
        yield from walk(model, "")


class KnownSecrets:
    """The secrets to cut out of text, read from a provider at most once per `max_age` seconds.

    `provider` returns tenant documents (parsed JSON); a failing provider keeps the last list, so a
    hiccup of the AWS stand-in never makes the page show what it hid a second ago.
    """

    def __init__(
        self,
        provider: Callable[[], Iterable[Any]],
        max_age: float = KNOWN_SECRETS_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._replacements: list[tuple[str, str]] = []
        self._read_at: float | None = None

    def replacements(self) -> list[tuple[str, str]]:
        """(text to find, what to show instead), longest first so a longer form is cut before its parts."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._max_age:
                try:
                    documents = list(self._provider())
                except Exception:  # keep the previous list (see the class docstring)
                    documents = None
                if documents is not None:
                    self._replacements = _replacements(documents)
                self._read_at = now
            return self._replacements


def _replacements(documents: Iterable[Any]) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for document in documents:
        for key, secret in secrets_in_document(document):
            if len(secret) < MIN_SCRUB_LENGTH:
                continue
            shown = (last_four(secret) or MASK) if key.lower() in WRITE_KEY_NAMES else MASK
            for form in secret_forms(secret):
                found.setdefault(form, shown)
    return sorted(found.items(), key=lambda item: len(item[0]), reverse=True)


class Redactor:
    """Masks headers, bodies and any JSON value with the three nets of the module docstring."""

    def __init__(self, known: KnownSecrets | None = None) -> None:
        self.known = known

    # -- free text and JSON values ------------------------------------------------------------
    def scrub_text(self, text: str, extra: Iterable[str] = ()) -> str:
        for secret in sorted({s for s in extra if len(s) >= MIN_SCRUB_LENGTH}, key=len, reverse=True):
            text = text.replace(secret, MASK)
        if self.known is not None:
            for form, shown in self.known.replacements():
                if form in text:
                    text = text.replace(form, shown)
        return text

    def value(self, value: Any, extra: Iterable[str] = (), name: str = "") -> Any:
        """A copy of a JSON value: secret-named fields masked whole, every string scrubbed."""
        extra = tuple(extra)
        if name and is_secret_name(name):
            return MASK
        if isinstance(value, dict):
            return {self.scrub_text(str(k), extra): self.value(v, extra, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, extra) for v in value]
        if isinstance(value, str):
            return self.scrub_text(value, extra)
        return value

    def known_only(self, value: Any) -> Any:
        """A copy of a JSON value with only the known secrets cut out (net 3), every key kept.

        For Spec messages and the bridge's answers: they are shown as Segment received them, so a
        property that merely has a secret-sounding name stays as it was sent.
        """
        if isinstance(value, dict):
            return {self.scrub_text(str(k)): self.known_only(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.known_only(v) for v in value]
        if isinstance(value, str):
            return self.scrub_text(value)
        return value

    # -- HTTP pieces ---------------------------------------------------------------------------
    def headers(self, headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
        """Headers safe to show, and the secret values taken out (to cut from the body too)."""
        shown: dict[str, str] = {}
        taken: list[str] = []
        for name, value in headers.items():
            if is_secret_name(name):
                taken.append(value)
                scheme, _, credentials = value.partition(" ")
                if credentials:  # keep `Basic` / `Bearer`: it tells which scheme was used
                    taken.append(credentials)
                    shown[name] = f"{scheme} {MASK}"
                else:
                    shown[name] = MASK
            else:
                shown[name] = self.scrub_text(value)
        return shown, taken

    def body(self, raw: bytes, content_type: str, extra: Iterable[str] = ()) -> dict[str, Any]:
        """A body for display: `{"kind": json|form|text|empty, "content", "bytes", "truncated"}`."""
        extra = tuple(extra)
        shown: dict[str, Any] = {"bytes": len(raw), "truncated": len(raw) > MAX_SHOWN_BODY_BYTES}
        if not raw:
            return {**shown, "kind": "empty", "content": ""}
        media = content_type.split(";")[0].strip().lower()
        text = raw.decode("utf-8", errors="replace")
        if not shown["truncated"]:
            if media.endswith("json") or (media == "" and text.lstrip()[:1] in ("{", "[")):
                try:
                    return {**shown, "kind": "json", "content": self.value(json.loads(text), extra)}
                except ValueError:
                    pass
            if media == "application/x-www-form-urlencoded":
                pairs = parse_qsl(text, keep_blank_values=True)
                fields = [[self.scrub_text(k, extra), self.value(v, extra, k)] for k, v in pairs]
                return {**shown, "kind": "form", "content": fields}
        # Scrub first, then cut: a secret straddling the cut would otherwise survive in halves.
        return {**shown, "kind": "text", "content": self.scrub_text(text, extra)[:MAX_SHOWN_BODY_BYTES]}
