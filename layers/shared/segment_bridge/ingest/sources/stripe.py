"""`stripe`: one Stripe Event object per request.

`Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, v1 = hex HMAC-SHA256 of `"{t}.{raw body}"` with
the endpoint's `whsec_...` secret, within the replay window (Stripe's default is 300 s) -- the
same scheme as the `spec` source, so it is the same shared check.

Paid checkouts become Ecommerce v2 "Order Completed", refunds "Order Refunded", customers an
identify. Amounts arrive in the currency's minor unit and leave as decimal amounts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from ...events import MappedEvent, Rejected, Skipped, WebhookRequest
from ...safe_json import text
from ..signatures import check_timestamped_hmac
from .base import Source, SourceSettings, VerifyContext, load_one_object
from .mapping import (
    EventTable,
    ToolEvent,
    compact,
    currency_code,
    custom_user_id,
    dig,
    event_key,
    first_text,
    from_minor_units,
    from_unix,
)

SIGNATURE_HEADER = "stripe-signature"
ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"

EVENTS = EventTable(
    tool="stripe",
    noun="",  # other types pass through as their own name: "invoice.paid" -> "Invoice Paid"
    mapped={
        "checkout.session.completed": ORDER_COMPLETED,
        # Delayed payment methods (bank debits) complete the checkout unpaid and succeed later.
        "checkout.session.async_payment_succeeded": ORDER_COMPLETED,
        "charge.refunded": ORDER_REFUNDED,
    },
    unmapped={"checkout.session.completed/unpaid": "Checkout Session Completed"},
)
IDENTIFY_TYPES = frozenset({"customer.created", "customer.updated"})
#: Checkout `payment_status` values that mean the order is settled (a 100% discount needs no payment).
PAID = frozenset({"paid", "no_payment_required"})
#: Where each Stripe object keeps the payer's email and phone (customer, checkout session, charge).
EMAIL_PATHS = (
    ("email",),
    ("customer_details", "email"),
    ("customer_email",),
    ("billing_details", "email"),
    ("receipt_email",),
)
PHONE_PATHS = (("phone",), ("customer_details", "phone"), ("billing_details", "phone"))


class StripeSettings(SourceSettings):
    #: The endpoint's signing secret, `whsec_...`.
    endpoint_secret: SecretStr


class StripeSource(Source[StripeSettings]):
    name = "stripe"
    settings_model = StripeSettings

    def verify(self, request: WebhookRequest, settings: StripeSettings, ctx: VerifyContext) -> None:
        check_timestamped_hmac(
            settings.endpoint_secret.get_secret_value(),
            request.header(SIGNATURE_HEADER),
            request.body,
            ctx.tolerance_seconds,
            ctx.clock,
        )

    def parse(self, request: WebhookRequest) -> list[Any]:
        return load_one_object(request.body, "one Stripe Event object")

    def map_event(self, event: Any, settings: StripeSettings) -> MappedEvent | Skipped:
        if not isinstance(event, dict) or text(event.get("type")) is None:
            raise Rejected('a Stripe event must be an object with a "type"')
        obj = dig(event, "data", "object")
        kind = str(event["type"])
        if kind == "checkout.session.completed" and text(dig(obj, "payment_status")) not in PAID:
            kind += "/unpaid"
        tool_event = ToolEvent(
            tool=self.name,
            kind=kind,
            tool_id=text(event.get("id")),
            key=event_key(event.get("id")),
            timestamp=from_unix(event.get("created")),
            user_id=custom_user_id(dig(obj, "metadata"), settings),
            email=first_text(*(dig(obj, *path) for path in EMAIL_PATHS)),
            phone=first_text(*(dig(obj, *path) for path in PHONE_PATHS)),
        )
        if kind in IDENTIFY_TYPES:
            return tool_event.identify(_customer_traits(obj))
        properties = PROPERTIES.get(kind, _object_reference)(event, obj)
        return EVENTS.track(tool_event, properties, settings)


def _amount(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _order_completed(event: dict[str, Any], session: Any) -> dict[str, Any]:
    currency = text(dig(session, "currency"))
    total = _amount(dig(session, "amount_total"))
    tax = _amount(dig(session, "total_details", "amount_tax"))
    shipping = _amount(dig(session, "total_details", "amount_shipping"))
    # Spec: `revenue` excludes shipping and tax; `total` includes them.
    revenue = None if total is None else total - (tax or 0) - (shipping or 0)
    return {
        "checkout_id": text(dig(session, "id")),
        # The PaymentIntent links the order to its later refund; subscriptions checkouts have none.
        "order_id": first_text(dig(session, "payment_intent"), dig(session, "id")),
        "subtotal": from_minor_units(dig(session, "amount_subtotal"), currency),
        "total": from_minor_units(total, currency),
        "revenue": from_minor_units(revenue, currency),
        "tax": from_minor_units(tax, currency),
        "shipping": from_minor_units(shipping, currency),
        "discount": from_minor_units(dig(session, "total_details", "amount_discount"), currency),
        "currency": currency_code(currency),
    }


def _order_refunded(event: dict[str, Any], charge: Any) -> dict[str, Any]:
    currency = text(dig(charge, "currency"))
    refunded = _amount(dig(charge, "amount_refunded"))
    before = _amount(dig(event, "data", "previous_attributes", "amount_refunded"))
    # `amount_refunded` is cumulative; the event's own refund is what it added.
    amount = refunded - before if refunded is not None and before is not None else refunded
    return {
        "order_id": first_text(dig(charge, "payment_intent"), dig(charge, "id")),
        "total": from_minor_units(amount, currency),
        "currency": currency_code(currency),
    }


def _object_reference(event: dict[str, Any], obj: Any) -> dict[str, Any]:
    """Passed-through types carry which Stripe object they are about, not the object itself."""
    return {"object_type": text(dig(obj, "object")), "object_id": text(dig(obj, "id"))}


PROPERTIES: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "checkout.session.completed": _order_completed,
    "checkout.session.async_payment_succeeded": _order_completed,
    "charge.refunded": _order_refunded,
}


def _customer_traits(customer: Any) -> dict[str, Any]:
    address = dig(customer, "address")
    street = ", ".join(filter(None, (text(dig(address, "line1")), text(dig(address, "line2")))))
    return {
        "email": text(dig(customer, "email")),
        "name": text(dig(customer, "name")),
        "phone": text(dig(customer, "phone")),
        "address": compact(
            {
                "street": street,
                "city": text(dig(address, "city")),
                "state": text(dig(address, "state")),
                "postal_code": text(dig(address, "postal_code")),
                "country": text(dig(address, "country")),
            }
        ),
        "created_at": from_unix(dig(customer, "created")),
        "stripe_customer_id": text(dig(customer, "id")),
    }
