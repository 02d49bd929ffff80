"""`make run`: start the local stack, push the sample webhooks in events/ through it once, show what
Segment received, then keep serving with a ready-to-paste curl command until Ctrl-C.

`--real-segment --write-key KEY [--region eu]` sends to Segment's regional endpoint instead of the
local sink (everything else stays local).
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import click
import requests

from .identity_demo import DEMO_EMAIL, DEMO_GROUP_ID, DEMO_USER_ID, ResolutionTally, send_segment_calls
from .local_stack import ROOT, LocalStack, StackConfig, free_port
from .samples import load_samples

EVENTS_DIR = ROOT / "events"


def sample_bodies() -> list[tuple[str, bytes, dict[str, str]]]:
    """(source, raw body, headers that are not signatures) of each webhook sample in events/."""
    return [(s.source, s.body, s.headers) for s in load_samples(EVENTS_DIR)]


def signed_request(
    stack: LocalStack, source: str, body: bytes, headers: dict[str, str]
) -> tuple[dict[str, str], bytes] | None:
    """Fresh signature for a sample (the ones in events/ are stale by design); None if we can't sign it.

    Returns the headers and the body to send: Mailgun carries its signature inside the body.
    """
    from .signing import sign

    settings = (
        {"signing_secret": stack.config.signing_secret}
        if source == "spec"
        else stack.config.source_settings.get(source)
    )
    if settings is None:
        return None
    signed_headers, signed_body = sign(source, body, settings, stack.webhook_url(source))
    return {**headers, **signed_headers}, signed_body


def demo_source_settings(base_url: str, tenant: str) -> dict[str, dict[str, Any]]:
    """Every tool's demo secrets; Mandrill and Twilio sign the public URL, here the local one."""
    from .signing import demo_source_settings as settings

    configured = settings()
    for source in ("mandrill", "twilio"):
        configured[source]["url"] = f"{base_url}/v1/webhooks/{source}/{tenant}"
    return configured


def describe(message: dict[str, Any]) -> str:
    who = message.get("userId") or f"anon:{message.get('anonymousId', '?')}"
    what = message.get("event") or message.get("name") or message.get("groupId") or ""
    detail = message.get("properties") or message.get("traits") or {}
    preview = ", ".join(f"{k}={v!r}" for k, v in list(detail.items())[:4])
    return f"  {message['type']:<8} {what:<22} user={who:<14} {preview}"


def curl_command(stack: LocalStack) -> str:
    body = '{"type":"track","userId":"user-42","event":"Report Exported","properties":{"format":"csv"}}'
    return (
        f"BODY={shlex.quote(body)}; TS=$(date +%s); "
        f'SIG=$(printf \'%s.%s\' "$TS" "$BODY" | openssl dgst -sha256 '
        f"-hmac {shlex.quote(stack.config.signing_secret)} | sed 's/^.* //'); "
        f"curl -sS -X POST {stack.webhook_url('spec')} -H 'Content-Type: application/json' "
        f'-H "X-Signature: t=$TS,v1=$SIG" -d "$BODY"'
    )


@click.command()
@click.option("--port", default=8080, show_default=True, help="Port of the local webhook API (0: any free port).")
@click.option("--real-segment", is_flag=True, help="Deliver to Segment's real endpoint instead of the local sink.")
@click.option("--write-key", envvar="SEGMENT_WRITE_KEY", help="Your Segment writeKey (with --real-segment).")
@click.option("--region", type=click.Choice(["us", "eu"]), default="us", show_default=True)
@click.option("--once", is_flag=True, help="Exit after the demo instead of serving until Ctrl-C.")
def main(port: int, real_segment: bool, write_key: str | None, region: str, once: bool) -> None:
    """Run segment-bridge locally and send the sample webhooks through it."""
    if real_segment and not write_key:
        raise click.UsageError("--real-segment needs --write-key (or SEGMENT_WRITE_KEY)")
    if port == 0:
        port = free_port()  # the URL Mandrill and Twilio sign must be known before the stack starts
    # Demo policy: events whose recipient Segment has not identified still flow, with a stable
    # anonymousId derived from the address (the default for real tenants is `reject`).
    config = StackConfig(
        ingest_port=port,
        real_segment=real_segment,
        region=region,
        identity_policy="anonymous",
        source_settings=demo_source_settings(f"http://127.0.0.1:{port}", StackConfig.tenant),
    )
    if write_key:
        config.write_key = write_key
    with LocalStack(config) as stack:
        target = f"Segment {region.upper()} (real)" if real_segment else f"local Segment sink at {stack.sink.url}"  # type: ignore[union-attr]
        click.secho(
            f"segment-bridge is running: webhooks at {stack.base_url}/v1/webhooks/{{source}}/{stack.config.tenant}",
            bold=True,
        )
        click.echo(f"  AWS stand-in (moto): {stack.queue_url.split('/')[2]}   delivering to: {target}\n")
        # The identity loop: Segment's identify/group for the samples' recipient arrive before the tools' events.
        loop = send_segment_calls(stack)
        click.echo(
            f"- POST segment   -> {loop.status_code}  applied={loop.json().get('applied', 0)} "
            f"(Segment's identify + group: {DEMO_EMAIL} is {DEMO_USER_ID} in {DEMO_GROUP_ID})"
        )
        tally = ResolutionTally()
        for source, body, headers in sample_bodies():
            signed = signed_request(stack, source, body, headers)
            if signed is None:
                click.echo(f"- {source}: skipped (no demo signing settings for this source)")
                continue
            response = requests.post(stack.webhook_url(source), data=signed[1], headers=signed[0], timeout=30)
            result = response.json()
            tally.record(source, result)
            click.echo(
                f"- POST {source:<9} -> {response.status_code}  accepted={result.get('accepted', 0)} "
                f"skipped={len(result.get('skipped', []))} rejected={len(result.get('rejected', []))}"
            )
        drained = stack.wait_until_drained(timeout=30)
        click.echo("")
        if stack.sink is not None:
            requests_seen = stack.sink.snapshot()
            click.secho(f"The Segment sink received {len(requests_seen)} /v1/batch request(s):", bold=True)
            for request in requests_seen:
                click.echo(
                    f" POST /v1/batch  status={request.status}  messages={request.message_count}  "
                    f"bytes={request.body_bytes}  writeKey={request.summary()['write_key']}  sentAt={request.sent_at}"
                )
                for message in request.messages:
                    click.echo(describe(message))
            if requests_seen and requests_seen[0].messages:
                click.echo("\nFirst message as Segment received it:")
                click.echo(json.dumps(requests_seen[0].messages[0], indent=2))
        click.secho(f"\nIdentity loop: {tally.summary()}", bold=True)
        if not drained:
            click.secho("warning: the queue did not drain within 30 s", fg="yellow")
        if once:
            return
        click.secho("\nTry it yourself (Ctrl-C to stop):", bold=True)
        click.echo(curl_command(stack))
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            click.echo("\nstopping")


if __name__ == "__main__":  # pragma: no cover
    main()
