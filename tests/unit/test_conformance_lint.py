"""`lint_message`, the `lint` and `catalog` commands, and the built-in sources' output linting clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from segment_bridge.conformance.checks import check_message
from segment_bridge.conformance.lint import lint_message
from segment_bridge.ingest.sources import SOURCES
from segment_bridge_tools.cli import main
from tests.conftest import FIXTURES
from tests.sources_support import run, sample_body

INTEGRATION = {"name": "acme-tool", "version": "1.0.0"}


def final(**overrides: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "properties": {"total": 9.5},
        "context": {"integration": INTEGRATION},
    }
    message.update(overrides)
    return message


def codes(message: Any, **kwargs: Any) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in lint_message(message, **kwargs)]


# -- lint_message ------------------------------------------------------------------------------


def test_a_final_conforming_message_is_clean() -> None:
    assert lint_message(final()) == []


@pytest.mark.parametrize(
    "message, expected",
    [
        ("text", [("spec.invalid", "error")]),
        ({"event": "Order Completed", "context": {"integration": INTEGRATION}}, [("spec.required", "error")]),
        (final(event=None), [("spec.required", "error")]),
        (final(type="group"), [("spec.required", "error")]),
        (final(type="alias", userId=None, previousId="p"), [("spec.required", "error")]),
        (final(userId=None), [("spec.required", "error")]),
        (final(userId=None, anonymousId="a"), [("partner.user_id", "error")]),
        (final(context={}), [("partner.integration", "error")]),
        (final(context={"integration": {"name": "Acme Tool", "version": "1.0.0"}}), [("partner.integration", "error")]),
        (final(context={"integration": {"name": "acme-tool", "version": "one"}}), [("partner.integration", "error")]),
        (final(writeKey="wk"), [("partner.write_key", "error")]),
        (final(timestamp="yesterday"), [("spec.invalid", "error")]),
        (final(event="Purchase"), [("spec.event_name", "error")]),
    ],
)
def test_lint_findings(message: Any, expected: list[tuple[str, str]]) -> None:
    assert codes(message) == expected


def test_anonymous_only_messages_can_be_allowed_as_a_warning() -> None:
    assert codes(final(userId=None, anonymousId="a"), allow_anonymous=True) == [("partner.user_id", "warning")]


# -- every built-in source lints clean ---------------------------------------------------------


def fixture_bodies() -> list[tuple[str, str, bytes]]:
    bodies = [("mandrill", "sample_body", sample_body("mandrill")), ("twilio", "sample_body", sample_body("twilio"))]
    for path in sorted((FIXTURES / "webhooks").glob("*.json")):
        source = path.name.split("-", 1)[0]
        if source in SOURCES and source != "mandrill":
            bodies.append((source, path.name, path.read_bytes()))
    return bodies


@pytest.mark.parametrize("source, name, body", fixture_bodies(), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("unmapped", ["skip", "passthrough"])
def test_every_built_in_source_output_lints_clean(source: str, name: str, body: bytes, unmapped: str) -> None:
    result, messages = run(source, body, settings={"unmapped_events": unmapped}, policy="anonymous")
    assert messages or result.skipped or result.rejected
    for message in messages:
        findings = lint_message(message, allow_anonymous=True)
        # The samples are real tool payloads without the customer's userId: that warning is expected.
        assert [f for f in findings if f.code != "partner.user_id"] == [], (name, message.get("event"), findings)


def test_built_in_sources_give_the_ingest_reviewer_nothing_to_do() -> None:
    for source, name, body in fixture_bodies():
        _, messages = run(source, body, settings={"unmapped_events": "passthrough"}, policy="anonymous")
        for message in messages:
            assert check_message(message) == [], (name, message.get("event"))


# -- the commands ------------------------------------------------------------------------------


def invoke(*args: str, input: str | bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


@pytest.mark.parametrize(
    "content",
    [
        json.dumps(final()),
        json.dumps([final(), final()]),
        json.dumps({"batch": [final()]}),
        json.dumps(final()) + "\n\n" + json.dumps(final()) + "\n",
    ],
)
def test_lint_reads_objects_arrays_batches_and_json_lines(content: str) -> None:
    result = invoke("lint", "-", input=content)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "0 error(s), 0 warning(s)" in result.stderr


def test_lint_prints_each_finding_with_its_fix_and_fails_on_errors(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(final()) + "\n" + json.dumps(final(event="Purchase")) + "\n{oops\n")
    result = invoke("lint", str(path))
    assert result.exit_code == 1
    assert f"{path}:2: error spec.event_name event: " in result.stdout
    assert '    fix: rename the event to "Order Completed"' in result.stdout
    assert f"{path}:3: error spec.invalid: not JSON" in result.stdout
    assert "3 message(s): 2 error(s), 0 warning(s)" in result.stderr


def test_lint_warnings_pass_unless_strict() -> None:
    content = json.dumps(final(event="report_exported"))
    assert invoke("lint", "-", input=content).exit_code == 0
    assert invoke("lint", "--strict", "-", input=content).exit_code == 1


def test_lint_allow_keeps_names_that_are_custom_on_purpose() -> None:
    content = json.dumps(
        [final(event="Item Added"), final(event="Order Completed", properties={"transaction_id": "t"})]
    )
    flagged = invoke("lint", "--json", "-", input=content)
    assert [json.loads(line)["code"] for line in flagged.stdout.splitlines()] == [
        "spec.event_name",
        "spec.property_name",
    ]
    assert flagged.exit_code == 1
    allowed = invoke("lint", "--allow", "Item Added", "--allow-property", "transaction_id", "-", input=content)
    assert allowed.exit_code == 0 and allowed.stdout == "", allowed.stdout
    assert invoke("lint", "--allow", "", "-", input=content).exit_code == 2


def test_lint_json_output_is_one_object_per_finding() -> None:
    result = invoke("lint", "--json", "-", input=json.dumps([final(event="Purchase"), final(writeKey="x")]))
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["location"], x["code"]) for x in lines] == [
        ("<stdin>#0", "spec.event_name"),
        ("<stdin>#1", "partner.write_key"),
    ]
    assert result.exit_code == 1


def test_lint_source_checks_what_the_bridge_would_send() -> None:
    body = json.dumps(
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "Purchase"},
                {"type": "track", "event": "Order Completed"},
            ]
        }
    )
    result = invoke("lint", "--source", "spec", "-", input=body)
    assert result.exit_code == 1
    assert "error spec.event_name event" in result.stdout
    assert "<stdin>#1: error source.rejected: userId is required" in result.stdout


def test_lint_source_reports_skipped_events_and_passes_on_clean_output() -> None:
    body = (FIXTURES / "webhooks" / "stripe-event-object.docs.json").read_bytes()
    result = invoke("lint", "--source", "stripe", "--allow-anonymous", "-", input=body)
    assert result.exit_code == 0 and "skipped:" in result.stderr


def test_lint_refuses_empty_input() -> None:
    assert invoke("lint", "-", input="").exit_code == 1


def test_catalog_lists_events_by_category() -> None:
    result = invoke("catalog", "--category", "ecommerce")
    assert result.exit_code == 0
    assert result.stdout.startswith("Ecommerce v2  (https://segment.com/docs/connections/spec/ecommerce/v2/)")
    assert "  Order Completed\n" in result.stdout and "total: number" in result.stdout
    assert "Objects\n  filter: {type: string, value: string}" in result.stdout
    assert "Email Opened" not in result.stdout


def test_catalog_json_is_self_contained() -> None:
    document = json.loads(invoke("catalog", "--json", "--reserved").stdout)
    assert len(document["categories"]) == 8
    order = next(e for c in document["categories"] for e in c["events"] if e["name"] == "Order Completed")
    assert order["properties"]["total"] == "number" and order["properties"]["products"][0]["quantity"] == "integer"
    assert "Purchase" in order["synonyms"]
    assert document["reserved"]["identify_traits"]["address"]["postalCode"] == "string"
    # What the name matcher reads besides the names: the vocabulary and the property synonyms.
    ecommerce = next(c for c in document["categories"] if c["name"] == "Ecommerce v2")
    assert ecommerce["words"]["item"] == "product" and document["vocabulary"]["words"]["begin"] == "start"
    assert {"field": "order_id", "names": ["transaction_id"]}.items() <= document["property_synonyms"][0].items()


def test_catalog_rejects_an_unknown_category() -> None:
    result = invoke("catalog", "--category", "gaming")
    assert result.exit_code == 2 and "Live Chat" in result.stderr
