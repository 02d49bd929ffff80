"""Segment's Email spec, shared by the email tools (SendGrid, Mailgun, Postmark, Mandrill).

Spec: segment-docs `src/connections/spec/email.md`. Event names are exact (note "Email Marked as
Spam" and the prefix-less "Unsubscribed"); properties are the Spec's snake_case ones, in
`PROPERTY_ORDER`. Each adapter's `PropertyTable` says where its tool keeps them (and its own
documented extras, after them); its `EventTable` maps the tool's event types to these names.
"""

from __future__ import annotations

EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_LINK_CLICKED = "Email Link Clicked"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_MARKED_AS_SPAM = "Email Marked as Spam"
UNSUBSCRIBED = "Unsubscribed"

#: Custom names for the email events the Spec has no counterpart for, shared so every tool
#: passes the same thing through under the same name.
EMAIL_SENT = "Email Sent"
EMAIL_DEFERRED = "Email Deferred"
#: The tool did not even try (suppression list, policy): not a bounce from a receiving server.
EMAIL_DROPPED = "Email Dropped"
#: A temporary failure (soft bounce, block); the address is not known to be undeliverable.
EMAIL_SOFT_BOUNCED = "Email Soft Bounced"
RESUBSCRIBED = "Resubscribed"

#: The Email spec's properties, in the order adapters' tables list them (extras come after).
PROPERTY_ORDER = ("email_id", "email_subject", "campaign_id", "campaign_name", "link_url", "list_id", "list_name")
