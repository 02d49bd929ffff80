"""Conformance checks beyond names: keys, types, traits, context, partner rules, repairs, the catalog."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from segment_bridge.conformance.checks import Finding, Repair, apply_repairs, check_message
from segment_bridge.spec.catalog import CATALOG, load_catalog
from segment_bridge.spec.naming import is_proper_case, is_snake_case

Message = dict[str, Any]


def track(event: str, **properties: Any) -> Message:
    return {"type": "track", "userId": "u1", "event": event, "properties": properties}


def codes(message: Message) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in check_message(message)]


def only(message: Message) -> Finding:
    (finding,) = check_message(message)
    return finding


def repaired(message: Message) -> tuple[Message, dict[str, Any]]:
    fixed = copy.deepcopy(message)
    record = apply_repairs(fixed, [f.repair for f in check_message(fixed) if f.repair])
    return fixed, record.as_context()


# -- the catalog -------------------------------------------------------------------------------


def test_catalog_has_every_category_of_the_reference_with_its_event_count() -> None:
    counts = {c.name: len(c.events) for c in CATALOG.categories}
    assert counts == {
        "Email": 6,
        "Ecommerce v2": 28,
        "Mobile lifecycle": 7,
        "Mobile campaign": 6,
        "Video": 17,
        "Live Chat": 4,
        "B2B SaaS": 10,
        "A/B testing": 1,
    }


def test_catalog_names_and_keys_follow_the_conventions_they_enforce() -> None:
    camel_in_spec = {"startupTime", "droppedFrames"}  # Video Quality Updated, as documented
    for event in CATALOG.events.values():
        assert is_proper_case(event.name)
        assert all(is_snake_case(k) or k in camel_in_spec for k in event.properties.fields), event.name


def test_catalog_key_properties_have_their_documented_types() -> None:
    order = CATALOG.event("Order Completed").properties.fields
    assert (order["total"].spec, order["revenue"].spec, order["products"].spec) == ("number", "number", "product[]")
    product = order["products"].options[0].shape.fields
    assert (product["price"].spec, product["quantity"].spec) == ("number", "integer")
    assert set(CATALOG.identify_traits.fields) >= {"firstName", "lastName", "createdAt", "email", "address", "company"}
    assert set(CATALOG.group_traits.fields) >= {"employees", "industry", "plan", "website"}
    assert CATALOG.context.fields["integration"].options[0].shape.fields.keys() == {"name", "version"}


def test_catalog_refuses_indistinguishable_keys_and_unknown_types() -> None:
    raw = json.loads(
        json.dumps(
            {
                "shapes": {},
                "categories": [],
                "required_fields": {},
                "reserved": {
                    name: {}
                    for name in (
                        "track_properties",
                        "page_properties",
                        "screen_properties",
                        "identify_traits",
                        "group_traits",
                        "context",
                    )
                },
            }
        )
    )
    load_catalog(raw)
    raw["reserved"]["context"] = {"userAgent": "string", "user_agent": "string"}
    with pytest.raises(ValueError, match="indistinguishable"):
        load_catalog(raw)
    raw["reserved"]["context"] = {"ip": "ipv4"}
    with pytest.raises(ValueError, match="unknown type"):
        load_catalog(raw)


# -- property keys and types -------------------------------------------------------------------


def test_a_conforming_semantic_event_has_no_findings() -> None:
    message = track(
        "Order Completed",
        order_id="o1",
        total=27.5,
        revenue=25,
        currency="USD",
        coupon=None,
        products=[{"product_id": "p1", "price": 19.0, "quantity": 1.0}],
    )
    assert check_message(message) == []


@pytest.mark.parametrize(
    "properties, path, fixed_value",
    [
        ({"total": "12.50"}, "properties.total", 12.5),
        ({"total": "12"}, "properties.total", 12),
        ({"order_id": 50314}, "properties.order_id", "50314"),
        ({"products": [{"quantity": "2"}]}, "properties.products[0].quantity", 2),
        ({"products": [{"price": "3.5"}]}, "properties.products[0].price", 3.5),
    ],
)
def test_lossless_type_conversions_are_offered_as_repairs(properties: Message, path: str, fixed_value: Any) -> None:
    finding = only(track("Order Completed", **properties))
    assert (finding.code, finding.severity, finding.path) == ("spec.property_type", "error", path)
    assert finding.repair.value == fixed_value


@pytest.mark.parametrize(
    "properties, path",
    [
        ({"total": "$12.50"}, "properties.total"),
        ({"total": True}, "properties.total"),
        ({"products": "p1,p2"}, "properties.products"),
        ({"products": [{"quantity": 2.5}]}, "properties.products[0].quantity"),
        ({"products": ["p1"]}, "properties.products[0]"),
    ],
)
def test_type_errors_without_a_safe_conversion_have_no_repair(properties: Message, path: str) -> None:
    finding = only(track("Order Completed", **properties))
    assert (finding.code, finding.path, finding.repair) == ("spec.property_type", path, None)
    assert "12.50" not in finding.message  # messages name types, never values


def test_findings_use_the_spec_event_schema_of_a_near_miss_name() -> None:
    assert codes(track("Purchase", total="abc")) == [
        ("spec.event_name", "event"),
        ("spec.property_type", "properties.total"),
    ]


def test_reserved_track_properties_are_checked_on_custom_events_but_value_is_not() -> None:
    assert codes(track("Report Exported", revenue="n/a", value="dark")) == [
        ("spec.property_type", "properties.revenue")
    ]


def test_other_forms_of_a_documented_property_are_spec_errors_renamed_in_place() -> None:
    message = track("Order Completed", orderId="o1", Total="12.5", plan_name="pro")
    assert codes(message) == [
        ("spec.property_name", "properties.orderId"),
        ("spec.property_name", "properties.Total"),
        ("spec.property_type", "properties.Total"),
    ]
    fixed, record = repaired(message)
    assert list(fixed["properties"].items()) == [("order_id", "o1"), ("total", 12.5), ("plan_name", "pro")]
    assert record == {
        "original_keys": {"properties.order_id": "orderId", "properties.total": "Total"},
        "original_values": {"properties.total": "12.5"},
    }


def test_both_forms_present_is_reported_without_a_repair() -> None:
    finding = only(track("Order Completed", orderId="o1", order_id="o1"))
    assert finding.repair is None and "both" in finding.message


def test_custom_property_keys_should_be_snake_case() -> None:
    message = track("Report Exported", reportType="pdf", page_count=2, **{"Export Format": "a4"})
    assert codes(message) == [
        ("style.property_name", "properties.reportType"),
        ("style.property_name", "properties.Export Format"),
    ]
    fixed, _ = repaired(message)
    assert list(fixed["properties"]) == ["report_type", "page_count", "export_format"]


def test_a_snake_case_clash_is_not_repaired() -> None:
    finding = only(track("Report Exported", reportType="pdf", report_type="pdf"))
    assert finding.repair is None and finding.fix.startswith("merge")


def test_custom_event_names_that_are_not_proper_case_get_a_style_repair() -> None:
    finding = only(track("report_exported"))
    assert (finding.code, finding.severity, finding.repair.value) == ("style.event_name", "warning", "Report Exported")


# -- traits, context, page ---------------------------------------------------------------------


def test_reserved_traits_in_another_form_are_style_and_types_are_spec() -> None:
    message = {
        "type": "identify",
        "userId": "u1",
        "traits": {
            "first_name": "Ada",
            "Email": "ada@example.com",
            "age": "36",
            "createdAt": 1700000000,
            "address": {"postal_code": "N1"},
            "company": {"employee_count": "12"},
            "favorite_color": "green",
        },
    }
    assert codes(message) == [
        ("style.trait_name", "traits.first_name"),
        ("style.trait_name", "traits.Email"),
        ("spec.property_type", "traits.age"),
        ("spec.property_type", "traits.createdAt"),
        ("style.trait_name", "traits.address.postal_code"),
        ("spec.property_type", "traits.company.employee_count"),
    ]


def test_group_traits_allow_employees_as_number_or_string() -> None:
    for employees in (120, "120"):
        assert check_message({"type": "group", "groupId": "g", "userId": "u", "traits": {"employees": employees}}) == []


def test_context_fields_in_another_form_are_spec_errors() -> None:
    message = track("Report Exported")
    message["context"] = {
        "user_agent": "Mozilla",
        "IP": "203.0.113.7",
        "device": {"advertising_id": "a"},
        "traits": {"first_name": "Ada"},
        "locale": "en-US",
        "my_tool_id": "t-1",
    }
    assert codes(message) == [
        ("spec.property_name", "context.user_agent"),
        ("spec.property_name", "context.IP"),
        ("spec.property_name", "context.device.advertising_id"),
        ("style.trait_name", "context.traits.first_name"),
    ]


def test_page_properties_are_checked_and_custom_ones_should_be_snake_case() -> None:
    message = {"type": "page", "userId": "u1", "name": "Home", "properties": {"URL": "https://x", "pageGroup": "a"}}
    assert codes(message) == [("spec.property_name", "properties.URL"), ("style.property_name", "properties.pageGroup")]


def test_categories_expect_their_documented_context() -> None:
    assert codes(track("Email Opened")) == [("spec.missing_context", "context.traits.email")]
    signed_in = track("Signed In")
    signed_in["context"] = {"groupId": "acct-1"}
    assert check_message(signed_in) == []


def test_malformed_parts_are_left_to_the_spec_model() -> None:
    assert check_message({"type": "track", "event": 3, "properties": "x", "context": []}) == []
    assert check_message({"type": "identify", "traits": ["a"]}) == []


# -- partner rules and repairs -----------------------------------------------------------------


def test_a_write_key_in_the_body_is_dropped_and_recorded_by_name_only() -> None:
    message = {**track("Signed Up"), "writeKey": "wk_live_secret"}
    message["context"] = {"groupId": "a"}
    finding = only(message)
    assert (finding.code, finding.repair.op) == ("partner.write_key", "drop")
    fixed, record = repaired(message)
    assert "writeKey" not in fixed and record == {"removed": ["writeKey"]}
    assert "wk_live_secret" not in json.dumps(record)


def test_repairs_record_the_original_event_name() -> None:
    fixed, record = repaired(track("Purchase", orderId="o1"))
    assert fixed["event"] == "Order Completed" and fixed["properties"] == {"order_id": "o1"}
    assert record == {"original_event": "Purchase", "original_keys": {"properties.order_id": "orderId"}}


def test_repairs_of_nested_keys_apply_deepest_first() -> None:
    message = {"type": "identify", "userId": "u", "traits": {"Address": {"postal_code": "N1"}}}
    fixed, record = repaired(message)
    assert fixed["traits"] == {"address": {"postalCode": "N1"}}
    assert record["original_keys"] == {"traits.address.postalCode": "postal_code", "traits.address": "Address"}


def test_oversized_names_and_keys_are_left_to_the_spec_model_or_checked_uncached() -> None:
    assert check_message(track("purchase " * 40)) == []  # over 200 characters: normalize refuses it
    long_key = "someCamelCaseKey" * 20
    assert codes(track("Report Exported", **{long_key: 1})) == [("style.property_name", f"properties.{long_key}")]


# -- property synonyms (issue 14) ----------------------------------------------------------------


def order(properties: dict[str, Any], event: str = "Order Completed") -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": event, "properties": properties}


@pytest.mark.parametrize(
    "event, key, documented",
    [
        ("Order Completed", "transaction_id", "order_id"),
        ("Order Completed", "transactionId", "order_id"),  # a synonym in another casing
        ("Order Completed", "id", "order_id"),
        ("Order Completed", "grand_total", "total"),
        ("Order Completed", "order_total", "total"),
        ("Order Completed", "currency_code", "currency"),
        ("Order Completed", "promo_code", "coupon"),
        ("Checkout Started", "transaction_id", "order_id"),
        ("Product Viewed", "id", "product_id"),
        ("Product Viewed", "item_id", "product_id"),
        ("Product Viewed", "product_name", "name"),
        ("Product Added", "qty", "quantity"),
        ("Product Added", "unit_price", "price"),
        ("Products Searched", "search_term", "query"),
        ("Email Link Clicked", "url", "link_url"),
        ("Video Playback Started", "duration", "total_length"),
    ],
)
def test_documented_synonyms_of_spec_properties_are_renamed_with_their_reason(
    event: str, key: str, documented: str
) -> None:
    value = 2 if documented in ("total", "quantity", "price", "total_length") else "x"
    (finding,) = [f for f in check_message(order({key: value}, event)) if f.path.startswith("properties")]
    assert (finding.code, finding.severity, finding.path) == ("spec.property_name", "error", f"properties.{key}")
    assert finding.repair == Repair("rename", ("properties", key), documented)
    assert f'another name for the documented field "{documented}" (' in finding.message
    assert "allow.properties" in finding.fix


def test_product_synonyms_apply_inside_products_and_the_order_id_one_at_the_top() -> None:
    findings = check_message(order({"id": "o-1", "products": [{"id": "p-1", "qty": 1}]}))
    assert [(f.path, f.repair.value if f.repair else None) for f in findings] == [
        ("properties.id", "order_id"),
        ("properties.products[0].id", "product_id"),
        ("properties.products[0].qty", "quantity"),
    ]


@pytest.mark.parametrize(
    "event, key",
    [
        # Decided not to be synonyms (docs/conformance.md, Property names): too ambiguous to rename.
        ("Order Completed", "price_total"),
        ("Order Completed", "total_price"),
        ("Order Completed", "amount"),
        ("Order Completed", "total_amount"),
        ("Order Completed", "order_number"),
        ("Product Viewed", "cost"),
        # Outside the events a synonym is scoped to.
        ("Checkout Started", "id"),
        ("Coupon Entered", "id"),
    ],
)
def test_names_that_are_not_synonyms_are_custom_properties(event: str, key: str) -> None:
    assert check_message(order({key: 1}, event)) == []


def test_custom_events_keep_their_own_property_names() -> None:
    # The reserved `currency` is checked on every event, but its synonyms only on Spec events.
    assert check_message(order({"currency_code": "USD", "transaction_id": "t"}, "Report Exported")) == []


def test_a_synonym_next_to_its_documented_key_is_another_property() -> None:
    assert check_message(order({"order_id": "o-1", "id": "row-7"})) == []
    # Of two synonyms of one field, the first is renamed and the second kept as it is.
    findings = check_message(order({"id": "o-1", "transaction_id": "t-1"}))
    assert [(f.path, f.repair) for f in findings] == [
        ("properties.id", Repair("rename", ("properties", "id"), "order_id"))
    ]


def test_two_casings_of_one_documented_key_are_not_both_renamed_onto_it() -> None:
    findings = check_message(order({"orderId": "a", "OrderID": "b"}))
    assert [f.repair is not None for f in findings] == [True, False]
    assert "another key is already renamed" in findings[1].message


def test_catalog_refuses_a_synonym_that_is_a_documented_key() -> None:
    from segment_bridge.spec.catalog import _read_catalog

    raw = _read_catalog()
    raw["property_synonyms"] = [{"field": "total", "names": ["subtotal"], "why": "no"}]
    with pytest.raises(ValueError, match="is a documented key"):
        load_catalog(raw)
