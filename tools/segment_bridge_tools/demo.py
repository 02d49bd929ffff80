"""`make run`: start the local stack, push the sample webhooks in events/ through it once, show what
Segment received, then keep serving with a ready-to-paste curl command until Ctrl-C.

While it runs, the terminal tails every webhook, conformance decision, Segment request and dead
letter as it happens (`debugger.Tail`), and the debugger page shows the same in a browser; the
functions' JSON logs and EMF metrics go to a log file (`--log-file`) unless `--verbose`.

`--real-segment --write-key KEY [--region eu]` sends to Segment's regional endpoint instead of the
local sink (everything else stays local).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.text import Text

from .debugger import Tail
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
    # Spec near-misses on purpose: the tail and the debugger show what the conformance layer fixed.
    body = (
        '{"type":"track","userId":"user-42","event":"order_completed","properties":{"orderId":"o-42","total":"9.90"}}'
    )
    return (
        f"BODY={shlex.quote(body)}; TS=$(date +%s); "
        f'SIG=$(printf \'%s.%s\' "$TS" "$BODY" | openssl dgst -sha256 '
        f"-hmac {shlex.quote(stack.config.signing_secret)} | sed 's/^.* //'); "
        f"curl -sS -X POST {stack.webhook_url('spec')} -H 'Content-Type: application/json' "
        f'-H "X-Signature: t=$TS,v1=$SIG" -d "$BODY"'
    )


def send_oauth_demo(stack: LocalStack) -> str:
    """The spec sample to the OAuth tenant: delivered with `Bearer` tokens from the sink's token server."""
    from segment_bridge.ingest.signatures import sign_timestamped

    tenant = stack.config.oauth_tenant
    body = json.dumps({"type": "track", "userId": DEMO_USER_ID, "event": "Report Exported"}).encode()
    response = requests.post(
        stack.webhook_url("spec", tenant),
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Signature": sign_timestamped(stack.config.signing_secret, body),
        },
        timeout=30,
    )
    return (
        f"- OAuth demo: tenant {tenant}'s spec webhook -> {response.status_code}, accepted="
        f"{response.json().get('accepted', 0)} (an OAuth-only source: sent with Bearer tokens from the sink's "
        "token server)"
    )


def send_library_demo(stack: LocalStack) -> str:
    """analytics-python, unmodified, pointed at the bridge: `host` and the tenant's bridge key."""
    from segment.analytics import Client

    errors: list[str] = []
    client = Client(
        write_key=stack.bridge_key,
        host=stack.tracking_host,
        sync_mode=True,
        gzip=True,
        on_error=lambda error, _items: errors.append(str(error)),
    )
    client.identify(DEMO_USER_ID, {"email": DEMO_EMAIL})
    client.track(DEMO_USER_ID, "Order Completed", {"order_id": "demo-1", "total": 42.0})
    # sync_mode sent each call already (its shutdown() fails in sync mode: analytics-python 2.4 has no consumers)
    outcome = f"failed: {errors[0]}" if errors else "accepted (identify, track)"
    return f"- Segment library: analytics-python with host={stack.tracking_host} and a bridge key -> {outcome}"


def library_snippet(stack: LocalStack) -> str:
    return (
        "  # or any Segment library, pointed at the bridge:\n"
        f'  python -c \'from segment.analytics import Client; c = Client(write_key="{stack.bridge_key}", '
        f'host="{stack.tracking_host}", sync_mode=True); c.track("user-1", "Order Completed")\''
    )


#: Where `make run` puts the functions' JSON logs and EMF metrics (the terminal shows the tail).
DEFAULT_LOG_FILE = ROOT / ".local" / "make-run.log"


@contextlib.contextmanager
def function_output(log_file: Path, verbose: bool) -> Iterator[None]:
    """Send the Lambda functions' structured logs and metrics to `log_file` (or, verbose, leave them here).

    Powertools writes logs through its logger's stream handler and metrics with `print`, so both
    the handler's stream and `sys.stdout` are pointed at the file; the tail writes to the terminal
    it was given before.
    """
    from segment_bridge.observability import logger

    logger.setLevel("INFO")  # the file is for reading later: keep the functions' info lines
    if verbose:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logger.registered_handler
    with log_file.open("a", encoding="utf-8", buffering=1) as out:
        previous = handler.setStream(out) if isinstance(handler, logging.StreamHandler) else None
        try:
            with contextlib.redirect_stdout(out):
                yield
        finally:
            if previous is not None:
                handler.setStream(previous)


def debugger_port_for(port: int, wanted: int | None) -> int:
    """The debugger's port: as asked, else the webhook port + 1 when that is free, else any free one."""
    if wanted is not None:
        return wanted
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port + 1))
        except OSError:
            return 0
    return port + 1


@click.command()
@click.option("--port", default=8080, show_default=True, help="Port of the local webhook API (0: any free port).")
@click.option("--real-segment", is_flag=True, help="Deliver to Segment's real endpoint instead of the local sink.")
@click.option("--write-key", envvar="SEGMENT_WRITE_KEY", help="Your Segment writeKey (with --real-segment).")
@click.option("--region", type=click.Choice(["us", "eu"]), default="us", show_default=True)
@click.option("--once", is_flag=True, help="Exit after the demo instead of serving until Ctrl-C.")
@click.option(
    "--debugger-port", type=int, default=None, help="Port of the debugger page [default: --port + 1 if free; 0: any]."
)
@click.option("--verbose", is_flag=True, help="Show the functions' JSON logs and metrics here, not in the log file.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_LOG_FILE,
    show_default=True,
    help="Where the functions' JSON logs and metrics go.",
)
def main(
    port: int,
    real_segment: bool,
    write_key: str | None,
    region: str,
    once: bool,
    debugger_port: int | None,
    verbose: bool,
    log_file: Path,
) -> None:
    """Run segment-bridge locally, send the sample webhooks through it, and tail what happens."""
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
        debugger=True,
        debugger_port=debugger_port_for(port, debugger_port),
        # The functions' metrics as in Lambda (EMF lines), into the log file with their logs.
        extra_env={"POWERTOOLS_METRICS_DISABLED": "false", "POWERTOOLS_LOG_LEVEL": "INFO"},
    )
    if write_key:
        config.write_key = write_key
    # The terminal, taken before stdout goes to the log file; long lines wrap where the terminal does.
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    with function_output(log_file, verbose), LocalStack(config) as stack:
        assert stack.journal is not None
        target = f"Segment {region.upper()} (real)" if real_segment else f"local Segment sink at {stack.sink.url}"  # type: ignore[union-attr]
        console.print(Text("segment-bridge is running", style="bold"))
        console.print(f"  webhooks   {stack.base_url}/v1/webhooks/{{source}}/{stack.config.tenant}")
        console.print(Text.assemble("  debugger   ", (stack.debugger_url, "bold cyan"), "   (open it in a browser)"))
        console.print(f"  AWS stand-in (moto) {stack.queue_url.split('/')[2]} · delivering to {target}")
        logs = "shown here (--verbose)" if verbose else f"{log_file} (--verbose shows them here)"
        console.print(f"  function logs and metrics: {logs}\n")
        console.print(Text("Live: webhooks, conformance decisions, Segment requests, dead letters", style="bold"))
        stack.journal.subscribe(Tail(console, stack.journal.detail))
        # The identity loop: Segment's identify/group for the samples' recipient arrive before the tools' events.
        send_segment_calls(stack)
        tally = ResolutionTally()
        for source, body, headers in sample_bodies():
            signed = signed_request(stack, source, body, headers)
            if signed is None:
                console.print(f"- {source}: skipped (no demo signing settings for this source)")
                continue
            response = requests.post(stack.webhook_url(source), data=signed[1], headers=signed[0], timeout=30)
            tally.record(source, response.json())
        if stack.sink is not None and stack.config.oauth_tenant:
            console.print(Text(send_oauth_demo(stack)))  # the tail shows its webhook and its Bearer request
        console.print(Text(send_library_demo(stack)))  # the tail shows it as a `library` call
        drained = stack.wait_until_drained(timeout=30)
        time.sleep(0.2)  # let the last sink notice print before the summary
        if stack.sink is not None:
            messages = stack.sink.messages()
            console.print(Text(f"\nSegment received {len(messages)} messages from the samples:", style="bold"))
            for message in messages:
                console.print(Text(describe(message)))
            if messages:
                console.print(Text("\nFirst message as Segment received it:", style="bold"))
                console.print_json(data=messages[0])
        console.print(Text(f"\nIdentity loop: {DEMO_EMAIL} is {DEMO_USER_ID} in {DEMO_GROUP_ID}; {tally.summary()}"))
        if not drained:
            console.print(Text("warning: the queue did not drain within 30 s", style="yellow"))
        if once:
            return
        console.print(Text("\nTry it yourself (Ctrl-C to stop):", style="bold"))
        console.print(Text.assemble('  click "Send test event" at ', (stack.debugger_url, "bold cyan"), ", or:"))
        console.print(Text(curl_command(stack)), soft_wrap=True)
        console.print(Text(library_snippet(stack)), soft_wrap=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            console.print("\nstopping")


if __name__ == "__main__":  # pragma: no cover
    main()
