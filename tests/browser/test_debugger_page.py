"""The local debugger in a real browser: headless Chromium drives the page the way a partner would.

The stack runs with planted secrets in the tenant's settings. The test loads the page, then (without
reloading it) sends a webhook over HTTP with Spec near-misses, clicks "Send test event", and sends
an event Segment refuses; it checks what the page shows against what the bridge answered and what
the Segment sink recorded, and that no planted secret appears in the page or its JSON feeds.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from segment_bridge.ingest.signatures import sign_timestamped
from segment_bridge_tools.demo import demo_source_settings
from segment_bridge_tools.faults import REJECT_MARKER, FaultPlan
from segment_bridge_tools.local_stack import LocalStack, StackConfig, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TENANT = "browser"
WRITE_KEY = "wk-PLANTED-browser-0123456789abcdef-LAST"
SIGNING_SECRET = "spec-signing-PLANTED-secret-4242"
DESTINATION_KEY = "dest-api-key-PLANTED-0123456789"
STRIPE_SECRET = "whsec_PLANTED_stripe_endpoint_secret"
POSTMARK_PASSWORD = "postmark-PLANTED-password-77"
WAIT = 20.0


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    port = free_port()
    sources = demo_source_settings(f"http://127.0.0.1:{port}", TENANT)
    sources["stripe"]["endpoint_secret"] = STRIPE_SECRET
    sources["postmark"]["password"] = POSTMARK_PASSWORD
    config = StackConfig(
        tenant=TENANT,
        write_key=WRITE_KEY,
        signing_secret=SIGNING_SECRET,
        destination_api_key=DESTINATION_KEY,
        source_settings=sources,
        identity_policy="anonymous",
        ingest_port=port,
        batching_window_seconds=0.2,
        visibility_timeout_seconds=1,
        max_receive_count=2,
        sink_responder=FaultPlan(),  # no faults; a message carrying REJECT_MARKER gets Segment's 400
        debugger=True,
    )
    with LocalStack(config) as running:
        yield running


def forms(secret: str) -> dict[str, str]:
    return {
        "raw": secret,
        "base64": base64.b64encode(secret.encode()).decode(),
        "basic": base64.b64encode(f"{secret}:".encode()).decode(),
        "quoted": quote(secret, safe=""),
    }


def assert_no_secret(text: str, where: str, signatures: list[str]) -> None:
    for secret in (SIGNING_SECRET, DESTINATION_KEY, STRIPE_SECRET, POSTMARK_PASSWORD):
        for form, value in forms(secret).items():
            assert value not in text, f"{form} form of a planted secret in {where}"
    # A writeKey may show its last four characters, nothing more.
    assert WRITE_KEY[:-4] not in text and WRITE_KEY[-8:] not in text, f"writeKey in {where}"
    for form, value in forms(WRITE_KEY).items():
        assert value not in text, f"{form} form of the writeKey in {where}"
    for signature in signatures:
        assert signature not in text, f"a request signature in {where}"


def wait_until(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # the page is re-rendering: the element went stale, look again
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def entry_with(driver: Any, kind: str, text: str) -> Any:
    """The first entry of the list `kind` whose row shows `text`."""
    from selenium.webdriver.common.by import By

    for item in driver.find_elements(By.CSS_SELECTOR, f"li.entry.{kind}"):
        if text in item.find_element(By.CSS_SELECTOR, ".row").text:
            return item
    return None


def post_spec(stack: LocalStack, message: dict[str, Any]) -> tuple[requests.Response, str]:
    raw = json.dumps(message).encode()
    signature = sign_timestamped(SIGNING_SECRET, raw)
    response = requests.post(
        stack.webhook_url("spec"),
        data=raw,
        headers={"Content-Type": "application/json", "X-Signature": signature},
        timeout=10,
    )
    return response, signature


def test_the_page_shows_what_segment_received_live_and_no_secret(
    stack: LocalStack, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(stack.debugger_url)
    wait_until(lambda: TENANT in browser.find_element(By.ID, "stack-info").text, "the stack info")

    # 1. A webhook over HTTP, with near-misses the conformance layer fixes; the page is not reloaded.
    response, signature = post_spec(
        stack,
        {
            "type": "track",
            "userId": "user-7",
            "event": "order_completed",
            "properties": {"orderId": "o-1", "total": "12.50"},
        },
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    fixes = [f["fix"] for f in answer["conformance"] if f["action"] == "fixed"]
    assert fixes, answer
    (message_id,) = answer["messageIds"]
    assert stack.wait_until_drained(timeout=WAIT)
    carried = next(r for r in stack.sink.snapshot() if any(m["messageId"] == message_id for m in r.messages))
    received = next(m for m in carried.messages if m["messageId"] == message_id)

    item = wait_until(lambda: entry_with(browser, "webhooks", received["event"]), "the webhook's row")
    item.find_element(By.CSS_SELECTOR, ".row").click()
    detail = wait_until(
        lambda: (d := item.find_element(By.CSS_SELECTOR, ".detail")).is_displayed() and "Fix:" in d.text and d,
        "the webhook's detail",
    )
    text = detail.text
    assert received["event"] in text and message_id in text
    for fix in fixes:
        assert f"Fix: {fix}" in text
    statuses = [cell.text.split("\n")[0] for cell in detail.find_elements(By.CSS_SELECTOR, "td.request-status")]
    assert statuses == [str(carried.status)]
    # "As Segment received it": the Raw view is the message exactly as the sink parsed it.
    card = detail.find_element(By.CSS_SELECTOR, ".message-card")
    card.find_element(By.XPATH, ".//button[text()='Raw']").click()
    raw_view = card.find_element(By.CSS_SELECTOR, "pre.raw-message")
    assert json.loads(raw_view.get_attribute("textContent")) == received
    card.find_element(By.XPATH, ".//button[text()='Pretty']").click()
    pretty = card.find_element(By.CSS_SELECTOR, ".pretty").text
    for key, value in received["properties"].items():
        assert f"properties.{key}\n{value}" in pretty, pretty
    assert "[object" not in browser.find_element(By.TAG_NAME, "body").text

    # 2. "Send test event": the page posts a signed sample; the new entry opens by itself.
    Select(browser.find_element(By.ID, "send-source")).select_by_value("sendgrid")
    browser.find_element(By.ID, "send-test").click()
    wait_until(lambda: "sendgrid → 202" in browser.find_element(By.ID, "send-result").text, "the send result")
    sendgrid = wait_until(lambda: entry_with(browser, "webhooks", "/v1/webhooks/sendgrid/"), "the sample's row")
    assert stack.wait_until_drained(timeout=WAIT)
    sample = requests.get(f"{stack.debugger_url}/api/webhooks/{sendgrid.get_attribute('data-id')}", timeout=10).json()
    sample_ids = set(sample["response"]["messageIds"])
    delivered = [
        m for r in stack.sink.snapshot() if r.status == 200 for m in r.messages if m["messageId"] in sample_ids
    ]
    assert sample_ids and len(delivered) == len(sample_ids)
    wait_until(
        lambda: all(m["event"] in sendgrid.find_element(By.CSS_SELECTOR, ".detail").text for m in delivered),
        "the sample's messages as Segment received them",
    )

    # 3. A message Segment refuses: the DLQ tab shows it with the reason.
    poison, poison_signature = post_spec(
        stack, {"type": "track", "userId": "user-7", "event": "Report Exported", "properties": {REJECT_MARKER: True}}
    )
    assert poison.status_code == 202
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="dead-letters"]').click()
    dead = wait_until(lambda: entry_with(browser, "dead-letters", TENANT), "the dead letter")
    assert "rejected" in dead.text  # the sink's 400 message, as the forwarder recorded it

    # 4. Filters: by source and by event name.
    browser.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="webhooks"]').click()
    Select(browser.find_element(By.ID, "filter-source")).select_by_value("sendgrid")
    shown = [e for e in browser.find_elements(By.CSS_SELECTOR, "li.entry.webhooks") if e.is_displayed()]
    assert shown and all("/sendgrid/" in e.text for e in shown), [e.text for e in shown]
    Select(browser.find_element(By.ID, "filter-source")).select_by_value("")

    # No planted secret, signature or key anywhere: the rendered page, and every JSON it reads.
    signatures = [signature, poison_signature]
    assert_no_secret(browser.page_source, "the page", signatures)
    base = stack.debugger_url + "/api"
    feed = requests.get(f"{base}/feed", timeout=10)
    assert_no_secret(feed.text, "the feed", signatures)
    data = feed.json()
    for kind, entries in (
        ("webhooks", data["webhooks"]),
        ("requests", data["requests"]),
        ("dead-letters", data["deadLetters"]),
    ):
        for entry in entries:
            assert_no_secret(
                requests.get(f"{base}/{kind}/{entry['id']}", timeout=10).text, f"{kind} {entry['id']}", signatures
            )
    assert "LAST" in feed.text  # the writeKey's last four characters are what identifies it

    # The screenshot for the README: the near-miss webhook expanded, the sample folded.
    entry_with(browser, "webhooks", "/v1/webhooks/sendgrid/").find_element(By.CSS_SELECTOR, ".row").click()
    wait_until(
        lambda: (
            not entry_with(browser, "webhooks", "/v1/webhooks/sendgrid/")
            .find_element(By.CSS_SELECTOR, ".detail")
            .is_displayed()
        ),
        "the sample folded",
    )
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    target = Path(os.environ.get("DEBUGGER_SCREENSHOT") or tmp_path / "debugger.png")
    assert browser.save_screenshot(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000
